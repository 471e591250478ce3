"""Sudden gains and sudden losses (Tang & DeRubeis 1999, J Consult Clin Psychol 67(6)).

The semantics are those of the R package suddengains 0.7.2 (Wiedemann et al. 2020; ``identify_sg``,
``identify_sl``, ``create_bysg``, ``create_byperson``, ``check_interval``), reproduced exactly by
``tests/unit/test_metrics_reference.py`` against ``tests/reference``. In short:

- Input is long: ``episode_id``, ``session_number`` (1, 2, …) and ``severity`` (distance from the
  healthy end, lower is better; see :func:`alliance.metrics.severity`). Session numbers are
  positions: a missing rating (NaN or an absent row) is a gap at that session, never a reason to
  shift later sessions.
- The interval n → n+1 is examined for n = 2 … L − 2, L the episode's last session number (the
  largest session number given for it, with or without a rating). These are exactly the intervals
  whose windows of up to three sessions before (n−2, n−1, n) and after (n+1, n+2, n+3) can hold two
  ratings each; suddengains examines columns 2→3 … (k−2)→(k−1) of k session columns, the same set.
- Gain criteria: (1) ``severity[n] - severity[n+1] >= cutoff``;
  (2) ``severity[n] - severity[n+1] >= pct * severity[n]``;
  (3) ``mean(pre) - mean(post) > t_crit * pooled SD`` (strict), t_crit the two-tailed critical
  value at ``alpha`` for ``n_pre + n_post - 2`` df (suddengains' adjusted value) or a fixed
  ``critical_value`` (suddengains' ``sg_crit3_adjust = FALSE``, typically 2.776).
- Missing values: criteria 1 and 2 are NA when severity[n] or severity[n+1] is missing; criterion 3
  is NA when either window holds fewer than two ratings (it is evaluated even if n or n+1 is
  missing). An interval with any applied criterion NA is not evaluable, hence not a gain; a
  criterion that is switched off is NA and ignored.
- Losses mirror all three criteria: worsening ``severity[n+1] - severity[n] >= cutoff`` (``cutoff``
  is given as a positive number, unlike suddengains' negative ``sg_crit1_cutoff``), worsening
  ``>= pct * severity[n]``, and ``mean(post) - mean(pre) > t_crit * pooled SD``. suddengains' own
  second loss criterion, ``severity[n] - severity[n+1] <= pct * severity[n]``, holds whenever the
  first does (it is vacuous); ``loss_pct_rule="suddengains"`` reproduces it for reference only.
- Per event: magnitude = ``severity[n] - severity[n+1]`` (negative for losses, as suddengains
  reports); total change = ``severity[tx_start] - severity[tx_end]`` (positive = improvement; NaN if
  either is missing); change proportion = magnitude / total change for gains and
  ``abs(magnitude)`` / total change for losses (suddengains' definitions); NaN where the total
  change is 0 (suddengains means NA there but only catches −Inf, so it would report +Inf).
  Reversal value = ``severity[n+1] + magnitude / 2``; a gain reverses when any rating from session
  n+2 to the end is above it (worse), a loss when any is below it.

On reversal: the project's rule (docs/methods.md §6, tests/reference/README.md) starts at session n+2.
suddengains 0.7.2's code, through a session-numbering offset in ``create_bysg``, effectively starts at n+3; on
the reference data the two give the same result for every gain and loss.

Sudden gains on short, noisy scales produce false positives: present them as candidate events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

Kind = Literal["gain", "loss"]
LossPctRule = Literal["mirrored", "suddengains"]

# Offsets of the reported scores around the pregain session n (suddengains' sg_*_2n … sg_*_n3).
SCORE_OFFSETS: tuple[int, ...] = (-2, -1, 0, 1, 2, 3)
SCORE_COLUMNS: tuple[str, ...] = (
    "severity_n_minus_2",
    "severity_n_minus_1",
    "severity_n",
    "severity_n_plus_1",
    "severity_n_plus_2",
    "severity_n_plus_3",
)
# Window of up to three ratings on each side of the interval (criterion 3).
WINDOW = 3


@dataclass(frozen=True)
class _Rule:
    """The criteria in force, validated once."""

    kind: Kind
    cutoff: float | None
    pct: float | None
    crit3: bool
    alpha: float
    critical_value: float | None
    loss_pct_rule: LossPctRule

    def __post_init__(self) -> None:
        if self.kind not in ("gain", "loss"):
            raise ValueError(f"kind must be 'gain' or 'loss', got {self.kind!r}")
        if self.cutoff is None and self.pct is None and not self.crit3:
            raise ValueError("apply at least one criterion: cutoff, pct or crit3")
        if self.cutoff is not None and self.cutoff < 0:
            raise ValueError("cutoff is a size of change and must not be negative (for losses too)")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha}")
        if self.loss_pct_rule not in ("mirrored", "suddengains"):
            raise ValueError(f"loss_pct_rule must be 'mirrored' or 'suddengains', got {self.loss_pct_rule!r}")


def _window_stats(window: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and sample variance over the last axis, ignoring NaN, without warnings."""
    present = ~np.isnan(window)
    count = present.sum(axis=-1)
    total = np.where(present, window, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        deviation = np.where(present, window - mean[..., None], 0.0)
        variance = (deviation**2).sum(axis=-1) / (count - 1)
    return count, mean, variance


def _evaluate(pre: np.ndarray, post: np.ndarray, rule: _Rule) -> dict[str, np.ndarray]:
    """All criteria for intervals given their windows (``pre[..., -1]`` is n, ``post[..., 0]`` n+1).

    Returns per-interval arrays: crit1/crit2/crit3 as float (1, 0 or NaN for NA), the critical
    value, window counts and means, the pooled SD, evaluable and event (bool).
    """
    at_n, at_next = pre[..., -1], post[..., 0]
    both = ~(np.isnan(at_n) | np.isnan(at_next))
    # Change in the direction looked for: a fall in severity for gains, a rise for losses.
    towards = at_n - at_next if rule.kind == "gain" else at_next - at_n
    nan = np.full(at_n.shape, np.nan)

    crit1 = nan.copy() if rule.cutoff is None else np.where(both, towards >= rule.cutoff, np.nan)
    if rule.pct is None:
        crit2 = nan.copy()
    elif rule.kind == "loss" and rule.loss_pct_rule == "suddengains":
        crit2 = np.where(both, at_n - at_next <= rule.pct * at_n, np.nan)
    else:
        crit2 = np.where(both, towards >= rule.pct * at_n, np.nan)

    n_pre, mean_pre, var_pre = _window_stats(pre)
    n_post, mean_post, var_post = _window_stats(post)
    enough = (n_pre >= 2) & (n_post >= 2)
    df = n_pre + n_post - 2
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled_sd = np.sqrt(((n_pre - 1) * var_pre + (n_post - 1) * var_post) / df)
    pooled_sd = np.where(enough, pooled_sd, np.nan)
    if rule.critical_value is not None:
        t_crit = np.where(enough, float(rule.critical_value), np.nan)
    else:
        t_crit = np.where(enough, stats.t.ppf(1 - rule.alpha / 2, np.where(enough, df, 1)), np.nan)
    shift = mean_pre - mean_post if rule.kind == "gain" else mean_post - mean_pre
    if rule.crit3:
        with np.errstate(invalid="ignore"):
            crit3 = np.where(enough, shift > t_crit * pooled_sd, np.nan)
    else:
        crit3 = nan.copy()
        t_crit = nan.copy()

    applied = [
        c
        for c, on in (
            (crit1, rule.cutoff is not None),
            (crit2, rule.pct is not None),
            (crit3, rule.crit3),
        )
        if on
    ]
    evaluable = np.logical_and.reduce([~np.isnan(c) for c in applied])
    event = evaluable & np.logical_and.reduce([c == 1 for c in applied])
    return {
        "crit1": crit1,
        "crit2": crit2,
        "crit3": crit3,
        "critical_value": t_crit,
        "n_pre": n_pre,
        "n_post": n_post,
        "mean_pre": np.where(n_pre > 0, mean_pre, np.nan),
        "mean_post": np.where(n_post > 0, mean_post, np.nan),
        "pooled_sd": pooled_sd,
        "evaluable": evaluable,
        "event": event,
    }


def _nullable(flags: np.ndarray) -> pd.arrays.BooleanArray:
    missing = np.isnan(flags)
    return pd.arrays.BooleanArray(np.where(missing, False, flags == 1), missing)


@dataclass(frozen=True)
class _Grid:
    """Severity by episode (rows) and session (columns 0 … N+1; 0 and N+1 always NaN padding)."""

    episode_ids: pd.Index
    values: np.ndarray
    last_session: np.ndarray

    @property
    def max_session(self) -> int:
        return self.values.shape[1] - 2


def _grid(ratings: pd.DataFrame) -> _Grid:
    required = {"episode_id", "session_number", "severity"}
    missing = required - set(ratings.columns)
    if missing:
        raise ValueError(f"ratings lack column(s) {sorted(missing)}")
    session_float = pd.to_numeric(ratings["session_number"]).to_numpy(dtype=float, na_value=np.nan)
    if np.any(~np.isfinite(session_float) | (session_float != np.round(session_float)) | (session_float < 1)):
        raise ValueError("session_number must be whole numbers from 1")
    session = session_float.astype(np.int64)
    if ratings.duplicated(["episode_id", "session_number"]).any():
        raise ValueError("more than one rating for an episode and session number")
    codes, episode_ids = pd.factorize(ratings["episode_id"], sort=True)
    n_sessions = int(session.max()) if len(ratings) else 0
    values = np.full((len(episode_ids), n_sessions + 2), np.nan)
    values[codes, session] = pd.to_numeric(ratings["severity"]).to_numpy(dtype=float, na_value=np.nan)
    last = np.zeros(len(episode_ids), dtype=np.int64)
    np.maximum.at(last, codes, session)
    return _Grid(pd.Index(episode_ids, name="episode_id"), values, last)


def _interval_arrays(grid: _Grid, rule: _Rule) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Evaluate every interval n → n+1, n = 2 … N−2, for all episodes at once (rows × intervals)."""
    pregain = np.arange(2, grid.max_session - 1)  # may be empty
    # A loop over the three fixed window offsets only; each step covers all episodes and intervals.
    pre = np.stack([grid.values[:, pregain - 2 + k] for k in range(WINDOW)], axis=-1)
    post = np.stack([grid.values[:, pregain + 1 + k] for k in range(WINDOW)], axis=-1)
    result = _evaluate(pre, post, rule)
    # Intervals beyond an episode's last session are not intervals of that episode.
    inside = pregain[None, :] <= (grid.last_session[:, None] - 2)
    return pregain, inside, result


def interval_criteria(
    ratings: pd.DataFrame,
    *,
    kind: Kind = "gain",
    cutoff: float | None,
    pct: float | None = 0.25,
    crit3: bool = True,
    alpha: float = 0.05,
    critical_value: float | None = None,
    loss_pct_rule: LossPctRule = "mirrored",
) -> pd.DataFrame:
    """Every examined interval with each criterion, for sudden gains or losses.

    ``ratings`` is long (``episode_id``, ``session_number``, ``severity``; see the module docstring
    for the rules). ``cutoff`` (criterion 1, the size of change, positive for losses too), ``pct``
    (criterion 2) and ``crit3`` switch the criteria on; ``None``/``False`` switches one off.
    ``critical_value`` replaces the adjusted t critical value at ``alpha`` by a fixed one for
    criterion 3.

    Returns one row per episode and examined interval, sorted by episode and session:
    ``episode_id``, ``session`` (pregain session n), ``kind``, ``severity_n``,
    ``severity_n_plus_1``, ``crit1``, ``crit2``, ``crit3`` (nullable booleans: NA where not
    evaluable or switched off, as in suddengains' ``crit123_details``), ``n_pre``, ``n_post``,
    ``mean_pre``, ``mean_post``, ``pooled_sd``, ``critical_value`` (criterion 3's window
    statistics), ``evaluable`` (every applied criterion could be evaluated) and ``event`` (evaluable
    and every applied criterion met).
    """
    rule = _Rule(kind, cutoff, pct, crit3, alpha, critical_value, loss_pct_rule)
    grid = _grid(ratings)
    pregain, inside, result = _interval_arrays(grid, rule)
    rows, cols = np.nonzero(inside)
    session = pregain[cols]
    out = pd.DataFrame(
        {
            "episode_id": grid.episode_ids[rows],
            "session": session,
            "kind": kind,
            "severity_n": grid.values[rows, session],
            "severity_n_plus_1": grid.values[rows, session + 1],
            "crit1": _nullable(result["crit1"][rows, cols]),
            "crit2": _nullable(result["crit2"][rows, cols]),
            "crit3": _nullable(result["crit3"][rows, cols]),
            "n_pre": result["n_pre"][rows, cols],
            "n_post": result["n_post"][rows, cols],
            "mean_pre": result["mean_pre"][rows, cols],
            "mean_post": result["mean_post"][rows, cols],
            "pooled_sd": result["pooled_sd"][rows, cols],
            "critical_value": result["critical_value"][rows, cols],
            "evaluable": result["evaluable"][rows, cols],
            "event": result["event"][rows, cols],
        }
    )
    return out


EVENT_COLUMNS: tuple[str, ...] = (
    "episode_id",
    "kind",
    "session",
    *SCORE_COLUMNS,
    "magnitude",
    "tx_change",
    "change_proportion",
    "reversal_value",
    "reversal",
    "events_in_episode",
)


def _events_of_kind(grid: _Grid, rule: _Rule, tx_start: int, tx_end: int | None) -> pd.DataFrame:
    pregain, inside, result = _interval_arrays(grid, rule)
    rows, cols = np.nonzero(inside & result["event"])
    n = pregain[cols]
    values = grid.values
    width = values.shape[1]

    def at(session: np.ndarray) -> np.ndarray:
        # Sessions outside 0 … N+1 have no rating.
        ok = (session >= 0) & (session < width)
        return np.where(ok, values[rows, np.clip(session, 0, width - 1)], np.nan)

    scores = {name: at(n + offset) for name, offset in zip(SCORE_COLUMNS, SCORE_OFFSETS, strict=True)}
    magnitude = scores["severity_n"] - scores["severity_n_plus_1"]
    end = grid.last_session[rows] if tx_end is None else np.full(rows.shape, tx_end)
    tx_change = at(np.full(rows.shape, tx_start)) - at(end)
    size = magnitude if rule.kind == "gain" else np.abs(magnitude)
    with np.errstate(invalid="ignore", divide="ignore"):
        proportion = np.where(tx_change == 0, np.nan, size / tx_change)
    reversal_value = scores["severity_n_plus_1"] + magnitude / 2
    # Later ratings from session n+2 to the episode's last session (padding and gaps are NaN).
    later = np.arange(width)[None, :] >= (n + 2)[:, None]
    with np.errstate(invalid="ignore"):
        if rule.kind == "gain":
            beyond = values[rows] > reversal_value[:, None]
        else:
            beyond = values[rows] < reversal_value[:, None]
    reversal = (beyond & later).any(axis=1)

    out = pd.DataFrame(
        {
            "episode_id": grid.episode_ids[rows],
            "kind": rule.kind,
            "session": n,
            **scores,
            "magnitude": magnitude,
            "tx_change": tx_change,
            "change_proportion": proportion,
            "reversal_value": reversal_value,
            "reversal": reversal,
        }
    )
    out["events_in_episode"] = out.groupby("episode_id", sort=False)["session"].transform("size")
    return out


def sudden_changes(
    ratings: pd.DataFrame,
    *,
    cutoff: float | None,
    pct: float | None = 0.25,
    crit3: bool = True,
    alpha: float = 0.05,
    critical_value: float | None = None,
    kinds: Iterable[Kind] = ("gain", "loss"),
    tx_start_session: int = 1,
    tx_end_session: int | None = None,
    loss_pct_rule: LossPctRule = "mirrored",
) -> pd.DataFrame:
    """Sudden gains and/or losses, one row per event (suddengains' ``create_bysg``).

    Criteria as in :func:`interval_criteria`. The total change over treatment is ``severity`` at
    ``tx_start_session`` minus ``severity`` at ``tx_end_session`` (default: each episode's last
    session number), NaN where either rating is missing — like suddengains' ``tx_start``/``tx_end``
    variables.

    Columns: ``episode_id``, ``kind`` ('gain'/'loss'), ``session`` (pregain session n), the severity
    at sessions n−2 … n+3 (:data:`SCORE_COLUMNS`, NaN where missing), ``magnitude``, ``tx_change``,
    ``change_proportion``, ``reversal_value``, ``reversal`` (bool) and ``events_in_episode`` (events
    of the same kind in the episode). Sorted by episode, kind and session.
    """
    grid = _grid(ratings)
    frames = [
        _events_of_kind(
            grid,
            _Rule(kind, cutoff, pct, crit3, alpha, critical_value, loss_pct_rule),
            tx_start_session,
            tx_end_session,
        )
        for kind in kinds
    ]
    if not frames:
        return pd.DataFrame(columns=list(EVENT_COLUMNS))
    events = pd.concat(frames, ignore_index=True)
    return events.sort_values(["episode_id", "kind", "session"], kind="stable", ignore_index=True)


def events_by_episode(
    events: pd.DataFrame,
    *,
    kind: Kind = "gain",
    select: Literal["first", "last"] = "first",
    episode_ids: Iterable | None = None,
) -> pd.DataFrame:
    """One event per episode (suddengains' ``create_byperson``), from :func:`sudden_changes` output.

    ``select`` picks the first (lowest pregain session) or the last event of ``kind``. With
    ``episode_ids``, every listed episode gets a row — those without an event have ``has_event``
    False, ``events_in_episode`` 0 and NaN elsewhere; without it only episodes with an event are
    returned.
    """
    if select not in ("first", "last"):
        raise ValueError(f"select must be 'first' or 'last', got {select!r}")
    own = events[events["kind"] == kind].sort_values(["episode_id", "session"], kind="stable")
    chosen = own.drop_duplicates("episode_id", keep=select).set_index("episode_id")
    chosen.insert(0, "has_event", True)
    if episode_ids is not None:
        wanted = pd.Index(pd.unique(pd.Series(list(episode_ids))), name="episode_id").sort_values()
        chosen = chosen.reindex(wanted)
        chosen["has_event"] = chosen["has_event"].eq(True)
        chosen["kind"] = kind
        chosen["events_in_episode"] = chosen["events_in_episode"].fillna(0).astype(np.int64)
    return chosen.reset_index()


@dataclass(frozen=True)
class IntervalCheck:
    """The verdict on one interval, criterion by criterion (None = not evaluable or not applied)."""

    kind: Kind
    crit1: bool | None
    crit2: bool | None
    crit3: bool | None
    evaluable: bool
    event: bool
    critical_value: float | None
    n_pre: int
    n_post: int
    mean_pre: float | None
    mean_post: float | None
    pooled_sd: float | None


def check_interval(
    pre: ArrayLike,
    post: ArrayLike,
    *,
    kind: Kind = "gain",
    cutoff: float | None,
    pct: float | None = 0.25,
    crit3: bool = True,
    alpha: float = 0.05,
    critical_value: float | None = None,
    loss_pct_rule: LossPctRule = "mirrored",
) -> IntervalCheck:
    """Check one interval from its windows (suddengains' ``check_interval``).

    ``pre`` holds the up to three severities before the interval, ending with session n (e.g.
    sessions n−2, n−1, n); ``post`` the up to three after, starting with n+1. NaN marks a missing
    rating. Criteria and switches as in :func:`interval_criteria`.
    """
    rule = _Rule(kind, cutoff, pct, crit3, alpha, critical_value, loss_pct_rule)
    pre_v = np.asarray(pre, dtype=float).ravel()
    post_v = np.asarray(post, dtype=float).ravel()
    if not (1 <= pre_v.size <= WINDOW and 1 <= post_v.size <= WINDOW):
        raise ValueError(f"pre and post must each hold 1 to {WINDOW} values")
    # Pad to full windows on the far side of the interval, where padding stands for "no rating".
    pre_w = np.concatenate([np.full(WINDOW - pre_v.size, np.nan), pre_v])[None, :]
    post_w = np.concatenate([post_v, np.full(WINDOW - post_v.size, np.nan)])[None, :]
    result = _evaluate(pre_w, post_w, rule)

    def flag(name: str) -> bool | None:
        value = result[name][0]
        return None if np.isnan(value) else bool(value == 1)

    def number(name: str) -> float | None:
        value = float(result[name][0])
        return None if np.isnan(value) else value

    return IntervalCheck(
        kind=kind,
        crit1=flag("crit1"),
        crit2=flag("crit2"),
        crit3=flag("crit3"),
        evaluable=bool(result["evaluable"][0]),
        event=bool(result["event"][0]),
        critical_value=number("critical_value"),
        n_pre=int(result["n_pre"][0]),
        n_post=int(result["n_post"][0]),
        mean_pre=number("mean_pre"),
        mean_post=number("mean_post"),
        pooled_sd=number("pooled_sd"),
    )
