"""Expected treatment response (ETR): percentile bands of the service's own closed episodes, by intake
score and session, smoothed along sessions — and each episode's on-track status against them.

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
4. Status at the latest rating (session ≥ 2), in the improvement direction: **red** (not on track) worse than
   the 10th-percentile course or reliably deteriorated; **yellow** (at risk) worse than the 25th;
   **green** (on track) otherwise; **white** (functional) when non-clinical at intake and still non-clinical.
   Where no band exists, the rational fallback (Lambert): red if reliably worse than intake, yellow if no
   reliable improvement by session 4, green otherwise — and the method says so.

"Worse than the p-th percentile" means below it for higher-is-better instruments and above the
(100 − p)-th percentile for lower-is-better ones: bands are always expressed as percentiles of the score,
and the status compares against the unfavourable tail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PERCENTILES: tuple[int, ...] = (10, 25, 50, 75, 90)
BAND_COLUMNS = [
    "instrument",
    "intake_bin",
    "half_width",
    "n_episodes",
    "session_number",
    "n_at_session",
    *[f"p{p}" for p in PERCENTILES],
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

    def describe(self) -> str:
        return (
            f"expected course from this service's closed episodes with a similar intake (±1 point, widened "
            f"until ≥ {self.min_episodes} episodes), percentiles 10/25/50/75/90 by session, smoothed as "
            "a + b·log(session) (after Finch, Lambert & Schaalje 2001)"
        )


def etr_bands(
    reference: pd.DataFrame, *, min_score: float, max_score: float, settings: EtrSettings = EtrSettings()
) -> pd.DataFrame:
    """Smoothed percentile bands for one instrument.

    ``reference``: one row per rating of the reference (closed) episodes, columns ``episode_id``,
    ``session_number``, ``score``, ``intake`` (the episode's first score). Returns one row per intake bin and
    session 1…max_session with the columns in ``BAND_COLUMNS`` (``instrument`` left empty for the caller).
    """
    ref = reference.dropna(subset=["score", "intake"])
    ref = ref[(ref["session_number"] >= 2) & (ref["session_number"] <= settings.max_session)]
    intakes = reference.drop_duplicates("episode_id")["intake"].dropna().to_numpy(dtype=float)
    if intakes.size == 0:
        return pd.DataFrame(columns=BAND_COLUMNS)
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
        return pd.DataFrame(columns=BAND_COLUMNS)

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
        return pd.DataFrame(columns=BAND_COLUMNS)
    bands = pd.concat(out, ignore_index=True)
    # Keep percentiles ordered after smoothing (independent fits could cross at the extremes).
    ordered = np.sort(bands[[f"p{p}" for p in PERCENTILES]].to_numpy(), axis=1)
    bands[[f"p{p}" for p in PERCENTILES]] = ordered
    bands["instrument"] = None
    return bands[BAND_COLUMNS]


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
    method = np.where(
        has_band,
        "ETR band: " + settings.describe(),
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
