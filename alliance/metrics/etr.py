"""Expected treatment response (ETR): percentile bands of the service's own closed episodes, by intake
score and session, smoothed along sessions, calibrated out of sample by episode — and each episode's
on-track status against them.

Commercial ETRs (PCOMS, OQ-Analyst) are proprietary; this one is transparent (docs/methods.md §8):

1. Intake bins. For each whole-number intake value ``v`` of an instrument, the reference episodes are those
   whose intake lies within ``v ± h`` with ``h = 1`` point, widened one point at a time until the bin holds at
   least ``min_episodes`` (30) episodes (MyOutcomes' "same intake ±1"; Finch, Lambert & Schaalje 2001
   stratified by intake severity). A bin that cannot reach the minimum within ``max_half_width`` has no band.
2. Percentiles. In each bin, at each session 2…``max_session`` (20), the 10th, 25th, 50th, 75th and 90th
   percentiles of the score (linear interpolation).
3. Smoothing. Each percentile is fitted as ``a + b·log(session)`` across sessions (least squares weighted by
   the number of episodes rated at that session, as Finch et al. fitted log-linear curves), then clipped to
   the instrument's range. Sessions with fewer than ``min_at_session`` ratings do not enter the fit.
4. Calibration (conformalised percentiles, after Romano, Patterson & Candès 2019, with the episode as the
   unit). Steps 1–3 alone promise too much: a percentile of 30 episodes is an estimate, and a log curve
   may not be the service's shape, so fewer than 80 % of new clients' ratings fall inside the 10–90 band.
   The reference episodes are split into ``folds`` (5) folds by a hash of the episode id; bands are built
   from four folds and each rating (session ≥ 2) of the fifth is scored, per percentile ``p``, as
   ``r_p = (score − band_p) / (band_90 − band_10)`` (the band's own width, so that the adjustment follows
   the band's shape). The adjustment ``δ_p`` is the ``p``-th percentile of those held-out scores, per
   session range (2–4, 5–8, 9+; the pooled value where a range has fewer than ``min_range_ratings``), and
   the band limit becomes ``band_p + δ_p · width``: the share of held-out ratings below each limit is then
   ``p`` by construction. The coverage this achieves is estimated by cross-fitting (each fold judged with
   the adjustment learnt from the other four) and stored with the bands. Below ``promise_episodes`` (100)
   closed episodes the coverage is not promised: the tail levels are moved outwards by ``z · √(p(1−p)/n)``
   (one-sided ``confidence`` 90 %), so a small service's bands are wider, never narrower, and the bands and
   every status say so. Where the folds cannot be banded at all, there is no band (the rational fallback).
5. Status at the latest rating (session ≥ 2), in the improvement direction: **red** (not on track) worse than
   the 10th-percentile course or reliably deteriorated; **yellow** (at risk) worse than the 25th;
   **green** (on track) otherwise; **white** (functional) when non-clinical at intake and still non-clinical.
   Where no band exists, the rational fallback (Lambert): red if reliably worse than intake, yellow if no
   reliable improvement by session 4, green otherwise — and the method says so.

"Worse than the p-th percentile" means below it for higher-is-better instruments and above the
(100 − p)-th percentile for lower-is-better ones: bands are always expressed as percentiles of the score,
and the status compares against the unfavourable tail.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

PERCENTILES: tuple[int, ...] = (10, 25, 50, 75, 90)
_COLS = [f"p{p}" for p in PERCENTILES]
#: The percentile bands before calibration (steps 1–3).
RAW_COLUMNS = [
    "instrument",
    "intake_bin",
    "half_width",
    "n_episodes",
    "session_number",
    "n_at_session",
    *_COLS,
]
#: Calibration columns: the reference's size, whether the coverage is promised, and the held-out coverage
#: of the session range a row belongs to (step 4).
CALIBRATION_COLUMNS = [
    "n_reference",
    "calibration",
    "session_range",
    "coverage_10_90",
    "coverage_25_75",
    "n_held_out",
]
BAND_COLUMNS = [*RAW_COLUMNS, *CALIBRATION_COLUMNS]
#: ``calibration``: coverage promised (at least ``promise_episodes`` closed episodes) or not (widened).
CALIBRATED, WIDENED = "calibrated", "widened"
#: Columns of :func:`band_coverage` (one row per session range and one for all later sessions).
COVERAGE_COLUMNS = [
    "session_range",
    "n_ratings",
    "n_episodes",
    "coverage_10_90",
    "coverage_25_75",
    "below_p10",
    "above_p90",
    "below_p25",
    "above_p75",
]


@dataclass(frozen=True)
class EtrSettings:
    """Named settings for the expected-response bands, with the defaults docs/methods.md §8 describes."""

    min_episodes: int = 30  # per intake bin
    min_at_session: int = 10  # ratings at a session for it to enter the smoothing fit
    max_session: int = 20
    start_half_width: float = 1.0
    max_half_width: float = 10.0
    rational_session: int = 4  # Lambert's rational method: yellow without reliable improvement by here
    folds: int = 5  # calibration folds, by episode
    small_folds: int = 10  # below promise_episodes: more folds, so each fold's bands are built from 90 %
    session_ranges: tuple[int, ...] = (2, 5, 9)  # first sessions of the calibration ranges (2–4, 5–8, 9+)
    min_range_ratings: int = 200  # held-out ratings for a range to get its own adjustment
    promise_episodes: int = 100  # closed episodes below which the coverage is not promised (widened)
    confidence: float = 0.90  # one-sided confidence of the widening below promise_episodes
    min_calibration_ratings: int = 50  # fewer held-out ratings with a band: no calibration, no band
    max_calibration_episodes: int = 20_000  # above: calibrate on a fixed sample of this many (by hash)

    def __post_init__(self) -> None:
        if min(self.folds, self.small_folds) < 2:
            raise ValueError(f"folds must be at least 2, got {self.folds} and {self.small_folds}")
        ranges = self.session_ranges
        if not ranges or ranges[0] != 2 or any(b <= a for a, b in zip(ranges, ranges[1:], strict=False)):
            raise ValueError(f"session_ranges must start at 2 and increase, got {ranges}")
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"confidence must lie in [0.5, 1), got {self.confidence}")

    @property
    def range_labels(self) -> list[str]:
        """'2–4', '5–8', '9+' for the default ranges."""
        starts = self.session_ranges
        ends = [f"–{b - 1}" if b - 1 > a else "" for a, b in zip(starts, starts[1:], strict=False)]
        return [f"{a}{e}" for a, e in zip(starts, ends, strict=False)] + [f"{starts[-1]}+"]

    def describe(self) -> str:
        return (
            f"expected course from this service's closed episodes with a similar intake (±1 point, widened "
            f"until ≥ {self.min_episodes} episodes), percentiles 10/25/50/75/90 by session, smoothed as "
            "a + b·log(session) (after Finch, Lambert & Schaalje 2001), limits calibrated by "
            f"{self.folds}-fold cross-validation by episode so that 80 % of new clients' ratings fall inside "
            "10–90 and 50 % inside 25–75"
        )


def percentile_bands(
    reference: pd.DataFrame, *, min_score: float, max_score: float, settings: EtrSettings
) -> pd.DataFrame:
    """Steps 1–3: smoothed percentile bands before calibration (``RAW_COLUMNS``, ``instrument`` empty)."""
    ref = reference.dropna(subset=["score", "intake"])
    ref = ref[(ref["session_number"] >= 2) & (ref["session_number"] <= settings.max_session)]
    intakes = reference.drop_duplicates("episode_id")["intake"].dropna().to_numpy(dtype=float)
    if intakes.size == 0:
        return pd.DataFrame(columns=RAW_COLUMNS)
    centres = np.arange(np.floor(min_score), np.ceil(max_score) + 1)
    # Smallest half-width reaching the minimum, for every bin centre at once.
    sorted_intakes = np.sort(intakes)
    half = np.full(centres.shape, np.nan)
    for h in np.arange(settings.start_half_width, settings.max_half_width + 1):
        counts = np.searchsorted(sorted_intakes, centres + h, side="right") - np.searchsorted(
            sorted_intakes, centres - h, side="left"
        )
        half = np.where(np.isnan(half) & (counts >= settings.min_episodes), h, half)
    ok = ~np.isnan(half)
    centres, half = centres[ok], half[ok]
    if centres.size == 0:
        return pd.DataFrame(columns=RAW_COLUMNS)
    # Assign each reference rating to every bin whose window holds its intake (bins overlap by design).
    score_intake = ref["intake"].to_numpy(dtype=float)
    rows, bins = [], []
    for j, (c, h) in enumerate(zip(centres, half, strict=True)):
        idx = np.flatnonzero(np.abs(score_intake - c) <= h + 1e-9)
        rows.append(idx)
        bins.append(np.full(idx.size, j))
    rows, bins = np.concatenate(rows), np.concatenate(bins)
    long = pd.DataFrame(
        {
            "bin": bins,
            "session_number": ref["session_number"].to_numpy()[rows],
            "score": ref["score"].to_numpy(dtype=float)[rows],
        }
    )
    grouped = long.groupby(["bin", "session_number"])["score"]
    raw = grouped.quantile([p / 100 for p in PERCENTILES]).unstack()
    raw.columns = [f"p{p}" for p in PERCENTILES]
    raw["n_at_session"] = grouped.size()
    raw = raw.reset_index()
    n_eps = pd.Series(
        np.searchsorted(sorted_intakes, centres + half, side="right")
        - np.searchsorted(sorted_intakes, centres - half, side="left")
    )

    sessions = np.arange(1, settings.max_session + 1)
    out = []
    fit = raw[raw["n_at_session"] >= settings.min_at_session]
    for j in range(len(centres)):
        f = fit[fit["bin"] == j]
        n_at = raw[raw["bin"] == j].set_index("session_number")["n_at_session"]
        band = {
            "intake_bin": centres[j],
            "half_width": half[j],
            "n_episodes": int(n_eps[j]),
            "session_number": sessions,
            "n_at_session": n_at.reindex(sessions).fillna(0).astype(int).to_numpy(),
        }
        # Session 1 is the intake itself: the band starts at the bin centre. Later sessions need a fit
        # through at least three sessions, else the bin has no band (the rational fallback applies).
        if len(f) < 3:
            continue
        x = np.log(f["session_number"].to_numpy(dtype=float))
        w = np.sqrt(f["n_at_session"].to_numpy(dtype=float))
        design = np.column_stack([np.ones_like(x), x]) * w[:, None]
        for p in PERCENTILES:
            coef, *_ = np.linalg.lstsq(design, f[f"p{p}"].to_numpy() * w, rcond=None)
            curve = coef[0] + coef[1] * np.log(sessions.astype(float))
            curve[0] = centres[j]
            band[f"p{p}"] = np.clip(curve, min_score, max_score)
        out.append(pd.DataFrame(band))
    if not out:
        return pd.DataFrame(columns=RAW_COLUMNS)
    bands = pd.concat(out, ignore_index=True)
    # Keep percentiles ordered after smoothing (independent fits could cross at the extremes).
    bands[_COLS] = np.sort(bands[_COLS].to_numpy(), axis=1)
    bands["instrument"] = None
    return bands[RAW_COLUMNS]


def _hashes(episode_ids) -> np.ndarray:
    """A stable hash (CRC-32) of each episode id: an episode keeps its fold as the data grow."""
    return np.fromiter(
        (zlib.crc32(str(e).encode()) for e in episode_ids), dtype=np.int64, count=len(episode_ids)
    )


def _range_index(session: np.ndarray, settings: EtrSettings) -> np.ndarray:
    """Index of the calibration session range of each session (sessions ≥ 2)."""
    return np.searchsorted(np.asarray(settings.session_ranges), session, side="right") - 1


def _width_floor(min_score: float, max_score: float) -> float:
    """The smallest band width the scores are measured in: 5 % of the scale (a band clipped flat at the
    scale's end has no width of its own)."""
    return 0.05 * (float(max_score) - float(min_score))


_R = [f"r{p}" for p in PERCENTILES]


def _scores(
    bands: pd.DataFrame, held_out: pd.DataFrame, *, min_score: float, max_score: float, settings: EtrSettings
) -> pd.DataFrame:
    """Each held-out rating (session ≥ 2) with a band, scored per percentile as
    ``(score − band_p) / max(band_90 − band_10, floor)``; columns episode_id, range, r10 … r90."""
    later = held_out[held_out["session_number"] >= 2].dropna(subset=["score", "intake"])
    band = band_for(bands, later["intake"], later["session_number"])
    ok = band["p50"].notna().to_numpy()
    later, band = later[ok], band[ok]
    width = np.maximum((band["p90"] - band["p10"]).to_numpy(dtype=float), _width_floor(min_score, max_score))
    score = later["score"].to_numpy(dtype=float)
    out = pd.DataFrame(
        {
            "episode_id": later["episode_id"].to_numpy(),
            "range": _range_index(later["session_number"].to_numpy(dtype=float), settings),
        }
    )
    for r, c in zip(_R, _COLS, strict=True):
        out[r] = (score - band[c].to_numpy(dtype=float)) / width
    return out


def _levels(n_reference: int, settings: EtrSettings) -> np.ndarray:
    """The percentile level each limit is calibrated to: its own, or moved outwards by
    ``z · √(p(1 − p)/n)`` below ``promise_episodes`` closed episodes (wider, never narrower)."""
    p = np.asarray(PERCENTILES, dtype=float) / 100
    if n_reference >= settings.promise_episodes:
        return p
    margin = NormalDist().inv_cdf(settings.confidence) * np.sqrt(p * (1 - p) / max(n_reference, 1))
    moved = np.where(p < 0.5, p - margin, np.where(p > 0.5, p + margin, p))
    return np.clip(moved, 0.005, 0.995)


def _shifts(scores: pd.DataFrame, levels: np.ndarray, settings: EtrSettings) -> np.ndarray:
    """The adjustment of each limit (rows: session ranges, columns: percentiles), in band widths: the
    level's quantile of the held-out scores, per range where it has ``min_range_ratings`` ratings, else
    pooled over all later sessions."""
    r = scores[_R].to_numpy(dtype=float)
    pooled = np.array([np.quantile(r[:, j], q) for j, q in enumerate(levels)])
    out = np.tile(pooled, (len(settings.session_ranges), 1))
    ranges = scores["range"].to_numpy()
    for k in range(len(settings.session_ranges)):
        here = ranges == k
        if here.sum() >= settings.min_range_ratings:
            out[k] = [np.quantile(r[here, j], q) for j, q in enumerate(levels)]
    return out


def _judge(scores: pd.DataFrame, shifts: np.ndarray) -> pd.DataFrame:
    """Where each scored rating falls against the limits moved by ``shifts``: strictly below or above."""
    r = scores[_R].to_numpy(dtype=float)
    limit = shifts[scores["range"].to_numpy()]
    below, above = r < limit, r > limit
    return pd.DataFrame(
        {
            "episode_id": scores["episode_id"].to_numpy(),
            "range": scores["range"].to_numpy(),
            "below_p10": below[:, 0],
            "above_p90": above[:, 4],
            "below_p25": below[:, 1],
            "above_p75": above[:, 3],
        }
    )


def _coverage_table(judged: pd.DataFrame, settings: EtrSettings) -> pd.DataFrame:
    """Coverage per session range and for all later sessions (``COVERAGE_COLUMNS``)."""
    labels = settings.range_labels
    rows = []
    for k, label in [*enumerate(labels), (None, "all")]:
        j = judged if k is None else judged[judged["range"] == k]
        n = len(j)
        share = {c: float(j[c].mean()) if n else float("nan") for c in COVERAGE_COLUMNS[5:]}
        rows.append(
            {
                "session_range": label,
                "n_ratings": n,
                "n_episodes": int(j["episode_id"].nunique()),
                "coverage_10_90": float((~j["below_p10"] & ~j["above_p90"]).mean()) if n else float("nan"),
                "coverage_25_75": float((~j["below_p25"] & ~j["above_p75"]).mean()) if n else float("nan"),
                "below_p10": share["below_p10"],
                "above_p90": share["above_p90"],
                "below_p25": share["below_p25"],
                "above_p75": share["above_p75"],
            }
        )
    return pd.DataFrame(rows, columns=COVERAGE_COLUMNS)


@dataclass(frozen=True)
class _Calibration:
    n_reference: int
    shifts: np.ndarray  # session ranges × percentiles, in band widths
    scores: pd.DataFrame  # every held-out rating scored against bands built without its fold
    judged: pd.DataFrame  # cross-fitted: each fold against the adjustment learnt from the others
    judged_raw: pd.DataFrame  # the same ratings against the uncalibrated bands


def _calibrate(
    reference: pd.DataFrame, *, min_score: float, max_score: float, settings: EtrSettings
) -> _Calibration | None:
    """Step 4: held-out scores by fold, the adjustments, and their cross-fitted judgement; None where too
    few held-out ratings get a band."""
    ref = reference.dropna(subset=["intake"])
    ids = pd.unique(ref["episode_id"])
    n_reference = len(ids)
    hashes = _hashes(ids)
    if n_reference > settings.max_calibration_episodes:  # a fixed sample, by hash, keeps a refresh quick
        keep = np.lexsort((ids.astype(str), hashes))[: settings.max_calibration_episodes]
        ids, hashes = ids[keep], hashes[keep]
        ref = ref[ref["episode_id"].isin(ids)]
    n_folds = settings.folds if n_reference >= settings.promise_episodes else settings.small_folds
    fold_of = pd.Series(hashes % n_folds, index=ids)
    fold = ref["episode_id"].map(fold_of).to_numpy()
    parts = []
    for f in range(n_folds):
        test = ref[fold == f]
        if test.empty:
            continue
        bands = percentile_bands(ref[fold != f], min_score=min_score, max_score=max_score, settings=settings)
        if bands.empty:
            continue
        scored = _scores(bands, test, min_score=min_score, max_score=max_score, settings=settings)
        parts.append(scored.assign(fold=f))
    scores = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if len(scores) < settings.min_calibration_ratings:
        return None
    levels = _levels(n_reference, settings)
    judged = []
    for f in pd.unique(scores["fold"]):
        mine = scores["fold"].to_numpy() == f
        others = scores[~mine]
        if others.empty:  # a single fold with a band: its own adjustment, said to be in-sample
            others = scores
        judged.append(_judge(scores[mine], _shifts(others, levels, settings)))
    return _Calibration(
        n_reference=n_reference,
        shifts=_shifts(scores, levels, settings),
        scores=scores,
        judged=pd.concat(judged, ignore_index=True),
        judged_raw=_judge(scores, np.zeros((len(settings.session_ranges), len(PERCENTILES)))),
    )


def etr_bands(
    reference: pd.DataFrame, *, min_score: float, max_score: float, settings: EtrSettings = EtrSettings()
) -> pd.DataFrame:
    """Calibrated, smoothed percentile bands for one instrument (steps 1–4).

    ``reference``: one row per rating of the reference (closed) episodes, columns ``episode_id``,
    ``session_number``, ``score``, ``intake`` (the episode's first score). Returns one row per intake bin and
    session 1…max_session with the columns in ``BAND_COLUMNS`` (``instrument`` left empty for the caller):
    the percentiles after calibration, the reference's size (``n_reference`` closed episodes), whether the
    coverage is promised (``calibration``: 'calibrated', or 'widened' below ``promise_episodes``), and the
    cross-validated coverage of the row's session range (``coverage_10_90``, ``coverage_25_75``, from
    ``n_held_out`` held-out ratings). Empty where no bin reaches ``min_episodes`` or the folds cannot be
    banded.
    """
    raw = percentile_bands(reference, min_score=min_score, max_score=max_score, settings=settings)
    if raw.empty:
        return pd.DataFrame(columns=BAND_COLUMNS)
    cal = _calibrate(reference, min_score=min_score, max_score=max_score, settings=settings)
    if cal is None:
        return pd.DataFrame(columns=BAND_COLUMNS)
    bands = raw.copy()
    session = bands["session_number"].to_numpy(dtype=float)
    later = session >= 2
    k = _range_index(np.maximum(session, 2), settings)
    width = np.maximum(
        (bands["p90"] - bands["p10"]).to_numpy(dtype=float), _width_floor(min_score, max_score)
    )
    values = bands[_COLS].to_numpy(dtype=float, copy=True)
    values[later] += cal.shifts[k[later]] * width[later, None]
    bands[_COLS] = np.clip(np.sort(values, axis=1), min_score, max_score)
    table = _coverage_table(cal.judged, settings).set_index("session_range")
    labels = np.asarray(settings.range_labels, dtype=object)[k]
    bands["n_reference"] = cal.n_reference
    bands["calibration"] = CALIBRATED if cal.n_reference >= settings.promise_episodes else WIDENED
    bands["session_range"] = np.where(later, labels, "1")
    for col in ("coverage_10_90", "coverage_25_75"):
        bands[col] = np.where(later, table[col].reindex(labels).to_numpy(dtype=float), np.nan)
    bands["n_held_out"] = np.where(later, table["n_ratings"].reindex(labels).to_numpy(), 0).astype(int)
    return bands[BAND_COLUMNS]


def band_coverage(
    reference: pd.DataFrame,
    *,
    min_score: float,
    max_score: float,
    settings: EtrSettings = EtrSettings(),
    calibrated: bool = True,
) -> pd.DataFrame:
    """Cross-validated coverage of the bands for one instrument, by session range and for all later sessions
    (``COVERAGE_COLUMNS``; shares of held-out ratings). ``calibrated``: the bands :func:`etr_bands` builds
    (each fold judged with the adjustment learnt from the others); else the uncalibrated percentile bands
    (steps 1–3, the bands before calibration) on the same held-out ratings. Empty where there is no band."""
    cal = _calibrate(reference, min_score=min_score, max_score=max_score, settings=settings)
    if cal is None:
        return pd.DataFrame(columns=COVERAGE_COLUMNS)
    return _coverage_table(cal.judged if calibrated else cal.judged_raw, settings)


def band_for(bands: pd.DataFrame, intake: pd.Series, session: pd.Series) -> pd.DataFrame:
    """The band row for each (intake, session): nearest bin centre, session capped at the last banded one.

    Returns a frame aligned with ``intake``'s index, NaN where no band applies.
    """
    cols = [f"p{p}" for p in PERCENTILES]
    result = pd.DataFrame(np.nan, index=intake.index, columns=[*cols, "intake_bin"])
    if bands.empty:
        return result
    centres = np.sort(bands["intake_bin"].unique())
    x = intake.to_numpy(dtype=float)
    pos = (
        np.clip(np.searchsorted(centres, x), 1, len(centres) - 1)
        if len(centres) > 1
        else np.zeros(len(x), int)
    )
    if len(centres) > 1:
        left, right = centres[pos - 1], centres[pos]
        nearest = np.where(np.abs(x - left) <= np.abs(right - x), left, right)
    else:
        nearest = np.full(len(x), centres[0])
    # A bin only covers intakes inside its own window.
    half = bands.drop_duplicates("intake_bin").set_index("intake_bin")["half_width"]
    inside = np.abs(x - nearest) <= half.reindex(nearest).to_numpy() + 1e-9
    s = np.minimum(session.to_numpy(dtype=float), bands["session_number"].max())
    key = pd.MultiIndex.from_arrays([nearest, s])
    table = bands.set_index(["intake_bin", "session_number"])[cols]
    table.index = pd.MultiIndex.from_arrays(
        [table.index.get_level_values(0).astype(float), table.index.get_level_values(1).astype(float)]
    )
    found = table.reindex(key).to_numpy(copy=True)  # written into below
    found[~inside | np.isnan(x)] = np.nan
    result[cols] = found
    result["intake_bin"] = np.where(inside, nearest, np.nan)
    return result


STATUS_WORDS = {
    "red": "not on track",
    "yellow": "at risk",
    "green": "on track",
    "white": "functional",
}


def _calibration_words(
    bands: pd.DataFrame, session: pd.Series, settings: EtrSettings
) -> tuple[pd.Series, pd.Series]:
    """Per row of ``session``: the calibration in words for the method (empty for uncalibrated bands), and
    whether the band is widened because the reference is too small to promise its coverage."""
    if bands.empty or "calibration" not in bands.columns:
        return pd.Series("", index=session.index, dtype=object), pd.Series(False, index=session.index)
    n_ref = int(bands["n_reference"].iloc[0])
    widened = bands["calibration"].iloc[0] == WIDENED
    if widened:
        head = (
            f"{n_ref:,} closed episodes, too few (under {settings.promise_episodes}) to promise 80 % and "
            f"50 % coverage: limits moved outwards (one-sided {settings.confidence * 100:.0f} % confidence)"
        )
    else:
        head = f"calibrated on {n_ref:,} closed episodes"
    texts = {
        r.session_range: (
            f"{head}; cross-validated at sessions {r.session_range}: {r.coverage_10_90 * 100:.0f} % of "
            f"{int(r.n_held_out):,} held-out ratings inside 10–90, {r.coverage_25_75 * 100:.0f} % inside "
            "25–75"
        )
        for r in bands[bands["session_number"] >= 2].drop_duplicates("session_range").itertuples()
    }
    s = np.maximum(np.nan_to_num(session.to_numpy(dtype=float), nan=2.0), 2)
    labels = np.asarray(settings.range_labels, dtype=object)[_range_index(s, settings)]
    words = pd.Series(labels, index=session.index).map(texts).fillna(head).astype(object)
    return words, pd.Series(widened, index=session.index)


def episode_status(
    latest: pd.DataFrame,
    bands: pd.DataFrame,
    *,
    higher_is_better: bool,
    settings: EtrSettings = EtrSettings(),
) -> pd.DataFrame:
    """Status (red, yellow, green, white) of each episode at its latest rating, with reason and method.

    ``latest``: one row per episode with ``intake``, ``latest``, ``latest_session``, ``clinical_pre``,
    ``clinical_post`` (nullable booleans), ``reliable_improvement``, ``reliable_deterioration``.
    Episodes whose latest rating is at session 1 get no status (NA).
    """
    band = band_for(bands, latest["intake"], latest["latest_session"])
    p10 = band["p10"] if higher_is_better else band["p90"]
    p25 = band["p25"] if higher_is_better else band["p75"]
    y = latest["latest"]
    worse10 = (y < p10) if higher_is_better else (y > p10)
    worse25 = (y < p25) if higher_is_better else (y > p25)
    has_band = band["p50"].notna()
    deteriorated = latest["reliable_deterioration"].fillna(False).astype(bool)
    improved = latest["reliable_improvement"].fillna(False).astype(bool)
    functional = (~latest["clinical_pre"].fillna(True).astype(bool)) & (
        ~latest["clinical_post"].fillna(True).astype(bool)
    )
    late = latest["latest_session"] >= settings.rational_session

    # Words for the unfavourable tail: below the 10th percentile on a higher-better scale, above the 90th on
    # a lower-better one.
    where10 = "below the 10th" if higher_is_better else "above the 90th"
    where25 = "below the 25th" if higher_is_better else "above the 75th"
    line10 = p10.map(lambda z: "" if pd.isna(z) else f"{z:.1f}")
    line25 = p25.map(lambda z: "" if pd.isna(z) else f"{z:.1f}")
    at = " at session " + latest["latest_session"].astype("Int64").astype(str)
    late_words = f"no band for this intake: no reliable improvement by session {settings.rational_session}"
    conditions = [
        functional & ~deteriorated,
        deteriorated,
        has_band & worse10,
        has_band & worse25,
        has_band,
        late & ~improved,
    ]
    status = pd.Series(
        np.select(conditions, ["white", "red", "red", "yellow", "green", "yellow"], default="green"),
        index=latest.index,
        dtype=object,
    )
    reason = pd.Series(
        np.select(
            conditions,
            [
                "non-clinical at intake and still non-clinical",
                "reliably worse than at intake",
                (f"{where10} percentile of the expected course (" + line10 + at + ")").to_numpy(dtype=object),
                (f"{where25} percentile of the expected course (" + line25 + at + ")").to_numpy(dtype=object),
                "within the expected course",
                late_words,
            ],
            default="no band for this intake: no reliable worsening",
        ),
        index=latest.index,
        dtype=object,
    )
    clause, widened = _calibration_words(bands, latest["latest_session"], settings)
    small = has_band & ~functional & ~deteriorated & widened  # a status the widened band decided
    reason[small] = reason[small] + "; band widened: " + clause[small].str.split(":").str[0]
    method = np.where(
        has_band,
        "ETR band: " + settings.describe() + clause.where(clause == "", "; " + clause),
        "rational fallback (Lambert): red if reliably "
        f"worse than intake, yellow without reliable improvement by session {settings.rational_session}",
    )
    no_status = latest["latest_session"] < 2
    status[no_status], reason[no_status] = pd.NA, "a single rating: no course yet"
    return pd.DataFrame(
        {
            "status": status,
            "status_words": status.map(STATUS_WORDS),
            "reason": reason,
            "method": np.where(no_status, "", method),
            "band_p10": band["p10"],
            "band_p25": band["p25"],
            "band_p50": band["p50"],
            "band_p75": band["p75"],
            "band_p90": band["p90"],
            "intake_bin": band["intake_bin"],
        },
        index=latest.index,
    )
