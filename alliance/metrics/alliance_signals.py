"""Alliance signals: below cut-off, dips, ruptures and repair, ceiling, late decline (docs/methods.md §7).

These are **our rules**, built on Stiles et al. (2004), Strauss et al. (2006) and Gumz et al. (2012,
BMC Med Res Methodol 12:10); the UI labels them as such and shows the settings in force
(:meth:`AllianceRules.describe`). Self-report alliance scales under-detect ruptures (observers see
many more), so an absence of events is not evidence of a smooth alliance.

Input is long: ``episode_id``, ``session_number`` (1, 2, …) and ``score`` (one alliance instrument,
higher = better alliance). Session numbers are positions: a missing rating (NaN or an absent row)
is a gap, never a reason to shift later sessions. The rupture, repair, dip and baseline rules are
about earlier and later **ratings**, so each episode's available ratings are put in rating order
(rating 1, 2, … skipping gaps); sessions are kept for reporting and for the late-decline slope.

Rules in force (k, windows and scores are :class:`AllianceRules` settings):

- **service SD** (:func:`service_change_scale`, the default): the sample SD (ddof = 1) of the
  differences between consecutive available ratings within an episode, pooled over all episodes,
  with the changes that belong to ruptures left out (found by the strict rule itself, iterated to a
  fixed point) and pairs of ratings both at the scale's top or bottom left out (censored). The
  plain SD of every change (:func:`service_change_sd`) grows with the number of ruptures in the
  service, so that a service with many ruptures would see fewer of them.
- **below_cutoff**: with a cut-off (SRS 36), each rating strictly below it. Without one (WAI-SR),
  from the 4th rating on, a rating at or below ``mean(first three ratings) − k · SD_ref``, SD_ref
  as for a rupture at that rating.
- **dip**: a rating strictly lower than the previous available rating. Shown quietly, never an
  alarm on its own.
- **rupture** at rating t with at least ``min_prior`` earlier ratings: baseline(t) = mean of the
  earlier ratings (at most the last ``baseline_window``); sd_client = their sample SD (ddof = 1);
  SD_ref = max(sd_client, service SD) — the stricter of intra- and inter-individual variability;
  rupture when ``score(t) ≤ baseline(t) − k · SD_ref`` (inclusive).
- **repair**: the first of the next ``repair_window`` ratings at or above
  ``baseline(t) − repair_k · SD_ref`` → 'repaired' at that rating's session. None of them, and all
  ``repair_window`` later ratings exist → 'unrepaired'; none of them and fewer later ratings exist
  → 'open' (the episode may still repair).
- **one rupture is counted once**: a rupture's *span* runs from the rating after it up to and
  including its repair rating, or to the end of its repair window (or of the episode, if sooner)
  when unrepaired or open. A rating inside the span of a rupture already counted does not start a
  new rupture, even if it is at or below its own threshold — it belongs to the same crisis.
  Ratings after the span can start a new rupture.
- **ceiling**: per episode with at least ``ceiling_min_ratings`` ratings, a share of at least
  ``ceiling_share`` of the ratings at or above ``ceiling_score`` (SRS 39: politeness rather than a
  perfect alliance). One row per episode, at its last rated session.
- **late_decline**: per episode with at least ``late_decline_n + 2`` ratings (so at least two
  earlier ratings give a client SD): the least-squares slope of score on session number over the
  last ``late_decline_n`` ratings is strictly steeper than ``−SD_ref`` per session, SD_ref =
  max(sample SD of all ratings before those last ones, service SD); with a cut-off, the early
  alliance (mean of the first three ratings) must also be at or above it ("high early alliance
  that falls", ACORN). Without a cut-off there is no "high", so the slope alone decides. One row
  per episode, at its last rated session.

Every comparison allows a tolerance of 1e-9 points, so that floating-point rounding (of a mean, or
of item scores summed to a total) never moves a score that sits exactly on a boundary to the
wrong side: inclusive rules stay inclusive, strict rules stay strict.

The work is vectorised over all episodes at once on flat arrays in (episode, rating) order; a
rating's earlier or later neighbours are fixed offsets into those arrays. Loops run only over the
small fixed offsets (baseline window, repair window, late-decline window) and, for the
one-rupture-at-a-time rule, over rounds whose number is the largest count of ruptures in one
episode. Memory is a few arrays the length of the ratings, with no padding to the longest episode.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "ALLIANCE_EVENT_COLUMNS",
    "EVENTS",
    "REPAIR_STATUSES",
    "AllianceRules",
    "ChangeScale",
    "alliance_events",
    "rupture_summary",
    "service_change_scale",
    "service_change_sd",
]

ClinicalSide = Literal["below"]
ServiceScale = Literal["robust", "plain"]
#: How the rules name the service SD, by the way it was estimated.
SCALE_WORDS = {
    "robust": "the service SD of session-to-session change outside ruptures",
    "plain": "the service SD of session-to-session change (every change, ruptures included)",
}
Event = Literal["below_cutoff", "dip", "rupture", "ceiling", "late_decline"]

EVENTS: tuple[str, ...] = ("below_cutoff", "dip", "rupture", "ceiling", "late_decline")
REPAIR_STATUSES: tuple[str, ...] = ("repaired", "unrepaired", "open")
ALLIANCE_EVENT_COLUMNS: tuple[str, ...] = (
    "episode_id",
    "event",
    "session_number",
    "score",
    "previous_score",
    "baseline",
    "sd_client",
    "sd_ref",
    "threshold",
    "k",
    "repair_status",
    "repair_session",
    "slope",
    "share",
    "detail",
    "rule",
)
SOURCES = "our rules, built on Stiles et al. 2004, Strauss et al. 2006, Gumz et al. 2012"

# Floating-point slack on every comparison (points); see the module docstring.
_TOLERANCE = 1e-9
# The WAI-SR baseline rule compares with the mean of the first three ratings (docs/methods.md §7).
_EARLY_RATINGS = 3


@dataclass(frozen=True)
class AllianceRules:
    """The settings of the alliance rules (docs/methods.md §7); the defaults are the project's choice.

    - ``k`` = 2.0: rupture threshold in SD_ref below the baseline. 2 is strict (Stiles-like), 1 is
      sensitive (Strauss-like); Gumz et al. 2012 show counts change strongly with it, so the UI
      shows the k in force.
    - ``baseline_window`` = 5: the baseline is the mean of at most the last five earlier ratings.
    - ``min_prior`` = 2: a rupture needs at least two earlier ratings (a client SD needs two).
    - ``repair_window`` = 3: a rupture is repaired within the next three ratings or not at all
      (Gumz et al. saw crises up to six sessions long; raise it for longer windows).
    - ``repair_k`` = 1.0: repaired means back within 1 SD_ref of the rupture's baseline.
    - ``ceiling_score`` = 39, ``ceiling_share`` = 0.80, ``ceiling_min_ratings`` = 3: at least 80 %
      of at least three ratings at 39 or above (SRS 0–40; set the score for other scales).
    - ``late_decline_n`` = 4: the slope is taken over the last four ratings.
    """

    k: float = 2.0
    baseline_window: int = 5
    min_prior: int = 2
    repair_window: int = 3
    repair_k: float = 1.0
    ceiling_score: float = 39.0
    ceiling_share: float = 0.80
    ceiling_min_ratings: int = 3
    late_decline_n: int = 4

    def __post_init__(self) -> None:
        if not self.k > 0:
            raise ValueError(f"k must be positive, got {self.k}")
        if self.min_prior < 2:
            raise ValueError(f"min_prior must be at least 2 (a client SD needs two), got {self.min_prior}")
        if self.baseline_window < self.min_prior:
            raise ValueError(
                f"baseline_window ({self.baseline_window}) must be at least min_prior ({self.min_prior})"
            )
        if self.repair_window < 1:
            raise ValueError(f"repair_window must be at least 1, got {self.repair_window}")
        if not 0 <= self.repair_k <= self.k:
            # Above k, a rating still at rupture level would count as a repair.
            raise ValueError(f"repair_k must lie in [0, k], got {self.repair_k} with k {self.k}")
        if not 0 < self.ceiling_share <= 1:
            raise ValueError(f"ceiling_share must lie in (0, 1], got {self.ceiling_share}")
        if self.ceiling_min_ratings < 1:
            raise ValueError(f"ceiling_min_ratings must be at least 1, got {self.ceiling_min_ratings}")
        if self.late_decline_n < 2:
            raise ValueError(f"late_decline_n must be at least 2, got {self.late_decline_n}")

    @property
    def strictness(self) -> str:
        """'strict' for k = 2, 'sensitive' for k = 1, 'custom' otherwise."""
        return {2.0: "strict", 1.0: "sensitive"}.get(float(self.k), "custom")

    def describe(
        self,
        event: Event | None = None,
        *,
        sd_service: float | None = None,
        cutoff: float | None = None,
        scale: ServiceScale = "robust",
    ) -> str:
        """The rule in plain words, for the UI and reports.

        Without ``event``: the rupture and repair rules (the headline, with the k in force). With
        ``event``: that event's rule; ``sd_service`` and ``cutoff`` fill in the numbers in force, and
        ``scale`` says how the service SD was estimated (:func:`service_change_scale`: 'robust', the
        changes outside ruptures; 'plain', every change).
        """
        if scale not in SCALE_WORDS:
            raise ValueError(f"scale must be one of {sorted(SCALE_WORDS)}, got {scale!r}")
        service = SCALE_WORDS[scale]
        if sd_service is not None:
            service += f" ({sd_service:.2f})"
        sd_ref = f"SD_ref = the larger of the client's SD of those ratings and {service}"
        rupture = (
            f"rupture (k = {self.k:g}, {self.strictness}): a rating ≥ {self.k:g} SD_ref below the "
            f"mean of up to {self.baseline_window} earlier ratings (at least {self.min_prior})"
        )
        repair = (
            f"repair: back within {self.repair_k:g} SD_ref of that baseline within "
            f"{self.repair_window} ratings"
        )
        if event is None:
            return f"{rupture}; {repair} ({SOURCES})"
        if event == "rupture":
            return (
                f"{rupture}; {sd_ref}; {repair}; a rating inside an unresolved rupture does not "
                f"start another ({SOURCES})"
            )
        if event == "below_cutoff":
            if cutoff is not None:
                return f"below cut-off: a rating below {cutoff:g} ({cutoff:g} itself is not)"
            return (
                f"below own baseline (no validated cut-off): from the 4th rating, ≥ {self.k:g} "
                f"SD_ref below the mean of the first 3 ratings; SD_ref as for ruptures "
                f"({SOURCES})"
            )
        if event == "dip":
            return "dip: lower than the previous rating (shown, not an alarm on its own)"
        if event == "ceiling":
            return (
                f"ceiling: {self.ceiling_share:.0%} or more of the ratings at "
                f"{self.ceiling_score:g} or above (episodes with at least "
                f"{self.ceiling_min_ratings} ratings); may be politeness, not a perfect alliance"
            )
        if event == "late_decline":
            early = (
                f"; early alliance (mean of the first 3 ratings) at or above {cutoff:g}"
                if cutoff is not None
                else ""
            )
            return (
                f"late decline: least-squares slope over the last {self.late_decline_n} ratings "
                f"steeper than −SD_ref per session; SD_ref = the larger of the client's SD of the "
                f"ratings before them and {service}{early} ({SOURCES})"
            )
        raise ValueError(f"event must be one of {EVENTS}, got {event!r}")


@dataclass(frozen=True)
class _Ratings:
    """Available ratings, flat, sorted by episode and then session (i.e. in rating order).

    Per rating: ``code`` (episode number 0 … E−1), ``session``, ``score``, ``position`` (0-based
    rating index in its episode) and ``count`` (ratings in its episode). Per episode: ``start``
    (first row) and ``n_ratings``; ``episode_ids`` maps codes to the caller's ids.
    """

    episode_ids: pd.Index
    code: np.ndarray
    session: np.ndarray
    score: np.ndarray
    position: np.ndarray
    count: np.ndarray
    start: np.ndarray
    n_ratings: np.ndarray

    def earlier(self, values: np.ndarray, lag: int) -> np.ndarray:
        """``values`` of the rating ``lag`` ratings earlier in the same episode (NaN if none)."""
        out = np.full(values.shape, np.nan)
        out[lag:] = values[:-lag]
        out[self.position < lag] = np.nan
        return out


def _ratings(ratings: pd.DataFrame) -> _Ratings:
    required = {"episode_id", "session_number", "score"}
    missing = required - set(ratings.columns)
    if missing:
        raise ValueError(f"ratings lack column(s) {sorted(missing)}")
    session_float = pd.to_numeric(ratings["session_number"]).to_numpy(dtype=float, na_value=np.nan)
    if np.any(~np.isfinite(session_float) | (session_float != np.round(session_float)) | (session_float < 1)):
        raise ValueError("session_number must be whole numbers from 1")
    codes, episode_ids = pd.factorize(ratings["episode_id"], sort=True)
    if np.any(codes < 0):
        raise ValueError("episode_id must not be missing")
    session = session_float.astype(np.int64)
    order = np.lexsort((session, codes))
    codes, session = codes[order], session[order]
    if np.any((codes[1:] == codes[:-1]) & (session[1:] == session[:-1])):
        raise ValueError("more than one rating for an episode and session number")
    score = pd.to_numeric(ratings["score"]).to_numpy(dtype=float, na_value=np.nan)[order]
    rated = ~np.isnan(score)
    # Episodes with no rating at all keep their code (nothing can be flagged for them).
    codes, session, score = codes[rated], session[rated], score[rated]

    n_ratings = np.bincount(codes, minlength=len(episode_ids))
    start = np.concatenate(([0], np.cumsum(n_ratings)[:-1]))
    position = np.arange(codes.size) - start[codes]
    return _Ratings(
        episode_ids=pd.Index(episode_ids, name="episode_id"),
        code=codes,
        session=session,
        score=score,
        position=position,
        count=n_ratings[codes],
        start=start,
        n_ratings=n_ratings,
    )


def service_change_sd(ratings: pd.DataFrame) -> float:
    """The service-wide SD of within-client session-to-session alliance change.

    ``ratings`` is long (``episode_id``, ``session_number``, ``score``; NaN or absent = no rating).
    Within each episode, the change is the difference between consecutive **available** ratings
    (a gap is bridged: sessions 1, 2, 4 give 2 − 1 and 4 − 2); the differences of all episodes are
    pooled and their sample SD (ddof = 1, around their mean) returned. NaN with fewer than two
    differences. Ruptures count in it, so it grows with their number: the rupture rule uses the robust
    :func:`service_change_scale` unless told otherwise; this plain SD is reported beside it.
    """
    r = _ratings(ratings)
    follows = r.position[1:] > 0  # the next row is a later rating of the same episode
    change = (r.score[1:] - r.score[:-1])[follows]
    if change.size < 2:
        return float("nan")
    return float(np.std(change, ddof=1))


#: 1.4826 × the median absolute deviation estimates the SD of normally distributed values.
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class ChangeScale:
    """The service scale of session-to-session alliance change for the rupture rule
    (:func:`service_change_scale`), with what it was computed from."""

    sd: float  # the scale the rupture rule uses (sd_service)
    n: int  # changes it is computed from
    sd_all: float  # the plain SD of every change, ruptures included (:func:`service_change_sd`)
    n_all: int  # every change
    n_in_ruptures: int  # changes left out as part of a rupture
    n_at_limit: int  # changes left out because both ratings sit at the top (or bottom) of the scale
    mad_sd: float  # 1.4826 × the median absolute deviation of the changes used (for comparison)
    iterations: int


def service_change_scale(
    ratings: pd.DataFrame,
    *,
    rules: AllianceRules = AllianceRules(),  # noqa: B008 - frozen, so a shared default is safe
    min_score: float | None = None,
    max_score: float | None = None,
    screen_k: float = 2.0,
    max_iterations: int = 50,
) -> ChangeScale:
    """The robust service scale of within-client session-to-session alliance change: the sample SD of the
    changes that do not belong to a rupture (docs/methods.md §7).

    The plain SD (:func:`service_change_sd`) counts the ruptures themselves: the more episodes hold one, the
    larger it is and the higher the bar for the next rupture. Here the changes are those between consecutive
    available ratings within an episode, less the pairs with both ratings at the scale's ``max_score`` (or
    ``min_score``): a client at the ceiling cannot rate higher, so a 0 there says nothing about how ratings
    vary. Starting from the plain SD of those changes, the rupture rule (``rules`` with k = ``screen_k``,
    the strict 2, whatever k is in force) is run with the current scale; the change into each rupture
    rating and every change up to the end of its span (its repair, or its repair window) are left out, and
    the SD (ddof = 1) of the rest is the next scale — until the ruptures found no longer change. NaN with
    fewer than two changes.
    """
    r = _ratings(ratings)
    previous = r.earlier(r.score, 1)
    change = r.score - previous  # the change into each rating; NaN for an episode's first
    follows = r.position > 0
    at_limit = np.zeros(r.score.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        if max_score is not None:
            at_limit |= (r.score >= max_score - _TOLERANCE) & (previous >= max_score - _TOLERANCE)
        if min_score is not None:
            at_limit |= (r.score <= min_score + _TOLERANCE) & (previous <= min_score + _TOLERANCE)
    at_limit &= follows
    usable = follows & ~at_limit
    n_all = int(follows.sum())
    sd_all = float(np.std(change[follows], ddof=1)) if n_all >= 2 else float("nan")
    nan = ChangeScale(float("nan"), int(usable.sum()), sd_all, n_all, 0, int(at_limit.sum()), float("nan"), 0)
    if usable.sum() < 2:
        return nan
    screen = dataclasses.replace(rules, k=float(screen_k), repair_k=min(rules.repair_k, float(screen_k)))
    sd = float(np.std(change[usable], ddof=1))
    excluded = np.zeros(r.score.shape, dtype=bool)
    iterations = 0
    first = _baseline(r, screen, sd)  # baseline means and client SDs do not depend on the service SD
    while iterations < max_iterations and sd > 0:
        iterations += 1
        with np.errstate(invalid="ignore"):
            sd_ref = np.where(np.isnan(first.sd_ref), np.nan, np.fmax(first.sd_client, sd))
        base = _Baseline(first.mean, first.sd_client, sd_ref, first.mean - screen.k * sd_ref)
        rows, _, _, span = _rupture_rows(r, screen, base)
        now = np.zeros(r.score.shape, dtype=bool)
        for lead in range(screen.repair_window + 1):
            now[rows[span >= lead] + lead] = True
        kept = usable & ~now
        if kept.sum() < 2:
            break
        sd = float(np.std(change[kept], ddof=1))
        if np.array_equal(now, excluded):
            break
        excluded = now
    kept = usable & ~excluded
    values = change[kept]
    return ChangeScale(
        sd=sd,
        n=int(kept.sum()),
        sd_all=sd_all,
        n_all=n_all,
        n_in_ruptures=int((usable & excluded).sum()),
        n_at_limit=int(at_limit.sum()),
        mad_sd=float(MAD_TO_SD * np.median(np.abs(values - np.median(values)))),
        iterations=iterations,
    )


@dataclass(frozen=True)
class _Baseline:
    """Per rating, the rupture reference from its earlier ratings (NaN where undefined)."""

    mean: np.ndarray  # baseline(t): mean of up to baseline_window earlier ratings
    sd_client: np.ndarray  # their sample SD (ddof = 1); NaN with fewer than two
    sd_ref: np.ndarray  # max(sd_client, sd_service)
    threshold: np.ndarray  # baseline(t) − k · sd_ref


def _baseline(r: _Ratings, rules: AllianceRules, sd_service: float) -> _Baseline:
    window = np.minimum(r.position, rules.baseline_window)
    total = np.zeros(r.score.shape)
    for lag in range(1, rules.baseline_window + 1):
        total += np.nan_to_num(r.earlier(r.score, lag))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(window >= 1, total / window, np.nan)
    # Two passes (mean, then squared deviations) keep the SD exact for near-constant ratings.
    squares = np.zeros(r.score.shape)
    for lag in range(1, rules.baseline_window + 1):
        squares += np.nan_to_num((r.earlier(r.score, lag) - mean) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd_client = np.where(window >= 2, np.sqrt(squares / (window - 1)), np.nan)
    # fmax would ignore a NaN client SD; the reference only exists with two earlier ratings.
    sd_ref = np.where(window >= 2, np.fmax(sd_client, sd_service), np.nan)
    return _Baseline(mean, sd_client, sd_ref, mean - rules.k * sd_ref)


def _first_ratings_mean(r: _Ratings, n: int) -> np.ndarray:
    """Per episode: mean of its first ``n`` ratings (NaN with fewer)."""
    enough = r.n_ratings >= n
    total = np.zeros(r.n_ratings.shape)
    if r.score.size:
        for offset in range(n):
            total += r.score[np.where(enough, r.start + offset, 0)]
    return np.where(enough, total / n, np.nan)


# One event type's rows as columns of equal length: "_code" (episode), "event" (index into
# EVENTS), "session_number", "score" and whichever output columns apply to it.
_Part = dict[str, np.ndarray]


def _num(value: float) -> str:
    """A score or statistic as plain text: at most two decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _texts(template: Callable[..., str], *columns: np.ndarray) -> np.ndarray:
    """``template(*row)`` for every row of ``columns`` (finite numbers), as an object array.

    Formatted once per distinct combination of values: in a large service dips and cut-off flags
    repeat a few score pairs millions of times, so this keeps the ``detail`` text cheap in time
    and memory (equal texts share one string).
    """
    n_rows = columns[0].size
    if n_rows == 0:
        return np.empty(0, dtype=object)
    # Hash-based codes for the distinct rows, combined column by column; re-factorising after
    # each step keeps the combined key below n_rows² (no overflow).
    key = np.zeros(n_rows, dtype=np.int64)
    for column in columns:
        codes, uniques = pd.factorize(np.asarray(column, dtype=float))
        key, _ = pd.factorize(key * len(uniques) + codes)
    # factorize numbers keys in order of first appearance: a row is a key's first occurrence
    # exactly when its key exceeds every key before it.
    first = np.flatnonzero(np.concatenate(([True], key[1:] > np.maximum.accumulate(key)[:-1])))
    values = [np.asarray(column, dtype=float)[first].tolist() for column in columns]
    texts = np.empty(first.size, dtype=object)
    texts[:] = [template(*row) for row in zip(*values, strict=True)]
    return texts[key]


def _part(r: _Ratings, event: str, rows: np.ndarray, **columns: np.ndarray | float) -> _Part:
    """The rows of one event type, at the ratings ``rows``; scalars are broadcast."""
    part: _Part = {
        "_code": r.code[rows],
        "event": np.full(rows.size, EVENTS.index(event), dtype=np.int8),
        "session_number": r.session[rows],
        "score": r.score[rows],
    }
    for name, values in columns.items():
        part[name] = np.broadcast_to(np.asarray(values), rows.shape)
    return part


def _below_cutoff(
    r: _Ratings,
    rules: AllianceRules,
    cutoff: float | None,
    previous: np.ndarray,
    base: _Baseline,
    instrument: str,
) -> _Part:
    if cutoff is not None:
        rows = np.flatnonzero(r.score < cutoff - _TOLERANCE)
        detail = _texts(
            lambda s: f"{instrument} {_num(s)} is below the cut-off {_num(cutoff)}", r.score[rows]
        )
        return _part(
            r,
            "below_cutoff",
            rows,
            previous_score=previous[rows],
            threshold=float(cutoff),
            detail=detail,
        )
    # No validated cut-off (WAI-SR): relative to the client's own first three ratings, with the
    # rupture's SD_ref at this rating (defined from the 3rd rating on, used from the 4th).
    early = _first_ratings_mean(r, _EARLY_RATINGS)[r.code]
    level = early - rules.k * base.sd_ref
    with np.errstate(invalid="ignore"):
        flagged = (r.position >= _EARLY_RATINGS) & (r.score <= level + _TOLERANCE)
    rows = np.flatnonzero(flagged)
    score, mean3, sd_ref, threshold = r.score[rows], early[rows], base.sd_ref[rows], level[rows]

    def words(s: float, m: float, t: float, sd: float) -> str:
        return (
            f"{instrument} {_num(s)} is {m - s:.1f} below the mean of the first three ratings "
            f"({m:.1f}), at or past the threshold {t:.1f} = mean − {rules.k:g} × SD_ref {sd:.2f}"
        )

    return _part(
        r,
        "below_cutoff",
        rows,
        previous_score=previous[rows],
        baseline=mean3,
        sd_client=base.sd_client[rows],
        sd_ref=sd_ref,
        threshold=threshold,
        k=rules.k,
        detail=_texts(words, score, mean3, threshold, sd_ref),
    )


def _dips(r: _Ratings, previous: np.ndarray, instrument: str) -> _Part:
    with np.errstate(invalid="ignore"):
        rows = np.flatnonzero(r.score < previous - _TOLERANCE)
    score, before = r.score[rows], previous[rows]
    detail = _texts(
        lambda s, p: f"{instrument} {_num(s)} after {_num(p)} at the previous rating (−{_num(p - s)})",
        score,
        before,
    )
    return _part(r, "dip", rows, previous_score=before, detail=detail)


def _count_once(code: np.ndarray, position: np.ndarray, span: np.ndarray, n_episodes: int) -> np.ndarray:
    """Which rupture candidates start a rupture, none starting inside an earlier rupture's span.

    Candidates are in (episode, rating) order. Each round accepts the first pending candidate of
    every episode and drops that episode's candidates inside its span; the number of rounds is the
    largest number of ruptures in one episode, each round vectorised over all episodes.
    """
    keep = np.zeros(code.size, dtype=bool)
    pending = np.ones(code.size, dtype=bool)
    covered_to = np.full(n_episodes, -1, dtype=np.int64)  # last rating position inside a span
    while pending.any():
        rows = np.flatnonzero(pending)
        first = rows[np.concatenate(([True], code[rows[1:]] != code[rows[:-1]]))]
        keep[first] = True
        pending[first] = False
        covered_to[code[first]] = position[first] + span[first]
        rows = np.flatnonzero(pending)
        pending[rows] = position[rows] > covered_to[code[rows]]
    return keep


def _rupture_rows(
    r: _Ratings, rules: AllianceRules, base: _Baseline
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ruptures counted (rows into ``r``), each with the ratings after it in the episode, the offset of
    its repair rating (0 = not repaired) and its span in ratings."""
    with np.errstate(invalid="ignore"):
        candidate = (r.position >= rules.min_prior) & (r.score <= base.threshold + _TOLERANCE)
    rows = np.flatnonzero(candidate)
    level = base.mean[rows] - rules.repair_k * base.sd_ref[rows]
    later = r.count[rows] - 1 - r.position[rows]  # ratings after this one in the episode
    # Offset (in ratings) of the first rating back at the repair level; 0 = not repaired.
    offset = np.zeros(rows.size, dtype=np.int64)
    for lead in range(1, rules.repair_window + 1):
        exists = later >= lead
        ahead = r.score[np.where(exists, rows + lead, rows)]
        back = exists & (offset == 0) & (ahead >= level - _TOLERANCE)
        offset[back] = lead
    span = np.where(offset > 0, offset, np.minimum(later, rules.repair_window))
    keep = _count_once(r.code[rows], r.position[rows], span, len(r.episode_ids))
    return rows[keep], later[keep], offset[keep], span[keep]


def _ruptures(
    r: _Ratings,
    rules: AllianceRules,
    previous: np.ndarray,
    base: _Baseline,
    instrument: str,
) -> _Part:
    rows, later, offset, _ = _rupture_rows(r, rules, base)

    repaired = offset > 0
    status = np.where(repaired, 0, np.where(later >= rules.repair_window, 1, 2))  # REPAIR_STATUSES
    repair_session = np.where(repaired, r.session[rows + offset], 0)  # 0 = none

    def words(b: float, s: float, t: float, sd: float, st: float, at: float, n: float) -> str:
        if st == 0:
            outcome = f"repaired at session {int(at)}"
        elif st == 1:
            outcome = f"not repaired within the next {rules.repair_window} ratings"
        else:
            outcome = f"open: not repaired in the {int(n)} later rating{'s' * (n != 1)} so far"
        return (
            f"{instrument} fell from a baseline of {b:.1f} to {_num(s)} (threshold {t:.1f} = "
            f"baseline − {rules.k:g} × SD_ref {sd:.2f}); {outcome}"
        )

    detail = _texts(
        words,
        base.mean[rows],
        r.score[rows],
        base.threshold[rows],
        base.sd_ref[rows],
        status,
        repair_session,
        later,
    )
    return _part(
        r,
        "rupture",
        rows,
        previous_score=previous[rows],
        baseline=base.mean[rows],
        sd_client=base.sd_client[rows],
        sd_ref=base.sd_ref[rows],
        threshold=base.threshold[rows],
        k=rules.k,
        repair_status=status.astype(np.int8),
        repair_session=repair_session,
        detail=detail,
    )


def _ceiling(r: _Ratings, rules: AllianceRules, instrument: str) -> _Part:
    at_ceiling = np.bincount(
        r.code,
        weights=(r.score >= rules.ceiling_score - _TOLERANCE).astype(float),
        minlength=len(r.episode_ids),
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        share = at_ceiling / r.n_ratings
    episodes = np.flatnonzero(
        (r.n_ratings >= rules.ceiling_min_ratings) & (share >= rules.ceiling_share - _TOLERANCE)
    )
    last = r.start[episodes] + r.n_ratings[episodes] - 1
    detail = _texts(
        lambda a, n: (
            f"{int(a)} of {int(n)} {instrument} ratings ({a / n:.0%}) at "
            f"{_num(rules.ceiling_score)} or above: the client may be polite rather than "
            f"satisfied; ask for more specific feedback"
        ),
        at_ceiling[episodes],
        r.n_ratings[episodes],
    )
    return _part(
        r,
        "ceiling",
        last,
        threshold=float(rules.ceiling_score),
        share=share[episodes],
        detail=detail,
    )


def _late_decline(
    r: _Ratings,
    rules: AllianceRules,
    sd_service: float,
    cutoff: float | None,
    instrument: str,
) -> _Part:
    n = rules.late_decline_n
    n_episodes = len(r.episode_ids)
    # Client SD of every rating before the last n (at least two, hence n + 2 ratings).
    before = r.position < r.count - n
    code_before, score_before = r.code[before], r.score[before]
    m = np.bincount(code_before, minlength=n_episodes)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_before = np.bincount(code_before, weights=score_before, minlength=n_episodes) / m
        squares = np.bincount(
            code_before,
            weights=(score_before - mean_before[code_before]) ** 2,
            minlength=n_episodes,
        )
        sd_before = np.sqrt(squares / (m - 1))

    episodes = np.flatnonzero(r.n_ratings >= n + 2)
    last = r.start[episodes] + r.n_ratings[episodes] - 1
    window = last[:, None] - (n - 1) + np.arange(n)[None, :]  # the last n ratings, in order
    x = r.session[window].astype(float)
    y = r.score[window]
    x_dev = x - x.mean(axis=1, keepdims=True)
    # Sessions within an episode are distinct, so the x spread is never zero.
    slope = (x_dev * (y - y.mean(axis=1, keepdims=True))).sum(axis=1) / (x_dev**2).sum(axis=1)
    sd_client = sd_before[episodes]
    sd_ref = np.fmax(sd_client, sd_service)
    early = _first_ratings_mean(r, _EARLY_RATINGS)[episodes]
    if cutoff is None:
        high_early = np.ones(episodes.size, dtype=bool)
    else:
        high_early = early >= cutoff - _TOLERANCE
    flagged = high_early & (slope < -sd_ref - _TOLERANCE)
    last, window, slope = last[flagged], window[flagged], slope[flagged]
    sd_client, sd_ref, early = sd_client[flagged], sd_ref[flagged], early[flagged]

    detail = _texts(
        lambda b, first, final, sd, e: (
            f"{instrument} fell by {-b:.1f} points per session over the last {n} ratings "
            f"(sessions {int(first)}–{int(final)}), steeper than −{sd:.2f} (SD_ref); early "
            f"alliance {e:.1f}"
        ),
        slope,
        r.session[window[:, 0]],
        r.session[window[:, -1]],
        sd_ref,
        early,
    )
    return _part(
        r,
        "late_decline",
        last,
        baseline=early,
        sd_client=sd_client,
        sd_ref=sd_ref,
        threshold=-sd_ref,
        slope=slope,
        detail=detail,
    )


_FLOAT_COLUMNS = (
    "score",
    "previous_score",
    "baseline",
    "sd_client",
    "sd_ref",
    "threshold",
    "k",
    "slope",
    "share",
)


def _column(parts: list[_Part], name: str, fill: object, dtype: type | str) -> np.ndarray:
    """One output column over all parts, ``fill`` where a part does not have it."""
    pieces = [
        np.asarray(p[name], dtype=dtype) if name in p else np.full(p["_code"].size, fill, dtype)
        for p in parts
    ]
    return np.concatenate(pieces)


def alliance_events(
    ratings: pd.DataFrame,
    *,
    rules: AllianceRules = AllianceRules(),  # noqa: B008 - frozen, so a shared default is safe
    sd_service: float,
    cutoff: float | None = None,
    clinical_side: ClinicalSide = "below",
    instrument: str = "rating",
    scale: ServiceScale = "robust",
) -> pd.DataFrame:
    """Alliance events for one alliance instrument, all episodes at once (docs/methods.md §7).

    ``ratings`` is long: ``episode_id``, ``session_number`` (whole numbers from 1; gaps allowed),
    ``score`` (NaN or an absent row = no rating). ``sd_service`` is the service SD of
    session-to-session change (:func:`service_change_scale`, robust to ruptures, or the plain
    :func:`service_change_sd`, as ``scale`` says; pass a configured value where the service has too
    little data). ``cutoff`` is the instrument's clinical cut-off (SRS 36) or
    None (WAI-SR: flags relative to the client's own first ratings); alliance scales are
    higher-is-better, so only ``clinical_side="below"`` is accepted. ``instrument`` names the
    scale in ``detail``. The rules are in the module docstring and :meth:`AllianceRules.describe`.

    Returns one row per event, sorted by episode, session and event (in the order of
    :data:`EVENTS`); one rating can carry several events (a rupture is usually also a dip).
    Columns (:data:`ALLIANCE_EVENT_COLUMNS`; NaN / NA where they do not apply):

    - ``episode_id``; ``event`` (categorical: below_cutoff, dip, rupture, ceiling, late_decline);
      ``session_number`` (the rating's session; for ceiling and late_decline the last rated
      session); ``score`` (that rating); ``previous_score`` (the previous available rating, for
      rating-level events).
    - ``baseline``: rupture → baseline(t); below_cutoff without a cut-off and late_decline → mean
      of the first three ratings.
    - ``sd_client``: rupture and below_cutoff without a cut-off → SD of the baseline ratings;
      late_decline → SD of the ratings before the last ``late_decline_n``. ``sd_ref`` =
      max(sd_client, sd_service).
    - ``threshold``: the number compared with — the cut-off; baseline − k · sd_ref (rupture) or
      first-three mean − k · sd_ref; the ceiling score; −sd_ref (a slope, for late_decline).
    - ``k`` (rupture and baseline-relative below_cutoff); ``repair_status`` (categorical:
      repaired, unrepaired, open) and ``repair_session`` (Int64) for ruptures; ``slope``
      (late_decline, points per session); ``share`` (ceiling, share of ratings at the ceiling).
    - ``detail``: plain words for the UI; ``rule`` (categorical): the rule in force
      (:meth:`AllianceRules.describe` for the event). ``.attrs["method"]`` holds the headline.
    """
    if clinical_side != "below":
        raise ValueError(
            "alliance scales are higher-is-better: only clinical_side='below' is supported, "
            f"got {clinical_side!r}"
        )
    if not (np.isfinite(sd_service) and sd_service > 0):
        # With a zero reference a client with constant ratings would "rupture" on no change.
        raise ValueError(f"sd_service must be a positive number, got {sd_service}")
    sd_service = float(sd_service)
    r = _ratings(ratings)
    previous = r.earlier(r.score, 1)
    base = _baseline(r, rules, sd_service)
    parts = [
        _below_cutoff(r, rules, cutoff, previous, base, instrument),
        _dips(r, previous, instrument),
        _ruptures(r, rules, previous, base, instrument),
        _ceiling(r, rules, instrument),
        _late_decline(r, rules, sd_service, cutoff, instrument),
    ]
    del previous, base

    code = _column(parts, "_code", 0, np.int64)
    event = _column(parts, "event", 0, np.int8)
    session = _column(parts, "session_number", 0, np.int64)
    order = np.lexsort((event, session, code))
    event = event[order]
    repair_session = _column(parts, "repair_session", 0, np.int64)[order]
    rule_texts = [rules.describe(e, sd_service=sd_service, cutoff=cutoff, scale=scale) for e in EVENTS]
    out = pd.DataFrame(
        {
            "episode_id": r.episode_ids.take(code[order]),
            "event": pd.Categorical.from_codes(event, categories=list(EVENTS)),
            "session_number": session[order],
            **{name: _column(parts, name, np.nan, float)[order] for name in _FLOAT_COLUMNS},
            "repair_status": pd.Categorical.from_codes(
                _column(parts, "repair_status", -1, np.int8)[order],
                categories=list(REPAIR_STATUSES),
            ),
            "repair_session": pd.arrays.IntegerArray(repair_session, repair_session == 0),
            "detail": _column(parts, "detail", None, object)[order],
            # Categorical: five long texts, however many rows (and whatever the string backend).
            "rule": pd.Categorical.from_codes(event, categories=rule_texts),
        }
    )
    out["detail"] = out["detail"].astype(str)
    out = out[list(ALLIANCE_EVENT_COLUMNS)]
    out.attrs["method"] = rules.describe(sd_service=sd_service, scale=scale)
    return out


def rupture_summary(events: pd.DataFrame, *, episode_ids: Iterable | None = None) -> pd.DataFrame:
    """Ruptures per episode from :func:`alliance_events` output.

    Columns: ``episode_id``, ``n_ruptures``, ``n_repaired``, ``n_unrepaired``, ``n_open`` and
    ``first_rupture_session`` (Int64, NA without a rupture). Rows: every episode in ``events``
    (with or without a rupture), or every episode in ``episode_ids`` when given (so that episodes
    without any event count as zero), sorted by episode.
    """
    ruptures = events[events["event"] == "rupture"]
    status = ruptures["repair_status"].astype(object)
    counts = pd.DataFrame(
        {
            "episode_id": ruptures["episode_id"].to_numpy(),
            "n_ruptures": 1,
            "n_repaired": (status == "repaired").to_numpy(dtype=np.int64),
            "n_unrepaired": (status == "unrepaired").to_numpy(dtype=np.int64),
            "n_open": (status == "open").to_numpy(dtype=np.int64),
            "first_rupture_session": ruptures["session_number"].to_numpy(dtype=np.int64),
        }
    )
    summary = counts.groupby("episode_id", sort=True).agg(
        n_ruptures=("n_ruptures", "sum"),
        n_repaired=("n_repaired", "sum"),
        n_unrepaired=("n_unrepaired", "sum"),
        n_open=("n_open", "sum"),
        first_rupture_session=("first_rupture_session", "min"),
    )
    wanted = events["episode_id"] if episode_ids is None else pd.Series(list(episode_ids))
    index = pd.Index(pd.unique(wanted), name="episode_id").sort_values()
    summary = summary.reindex(index)
    for name in ("n_ruptures", "n_repaired", "n_unrepaired", "n_open"):
        summary[name] = summary[name].fillna(0).astype(np.int64)
    summary["first_rupture_session"] = summary["first_rupture_session"].astype("Int64")
    return summary.reset_index()
