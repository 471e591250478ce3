"""One instrument's trajectory in an episode, in the words a clinician would use."""

from __future__ import annotations

import pandas as pd

TRAJECTORY_COLUMNS = [
    "session_number",
    "session_date",
    "instrument",
    "score",
    "clinical",
    "description",
]


def _clinical(score: pd.Series, cutoff, side) -> pd.Series:
    if cutoff is None or pd.isna(cutoff):
        return pd.Series(pd.NA, index=score.index, dtype="boolean")
    flag = score < cutoff if side == "below" else score >= cutoff
    return flag.astype("boolean").mask(score.isna())


def _cutoff_words(construct: str, cutoff, side, verified) -> tuple[str, str]:
    """Words for a score on either side of the cut-off, e.g. ('below 36 — possible alliance problem', …)."""
    mark = "" if verified else " [cut-off unverified]"
    rel = "below" if side == "below" else "at or above"
    other = "at or above" if side == "below" else "below"
    if construct == "alliance":
        return (f"{rel} {cutoff:g}: possible alliance problem{mark}", f"{other} {cutoff:g}")
    return (
        f"clinical range, {rel} {cutoff:g}{mark}",
        f"non-clinical range, {other} {cutoff:g}{mark}",
    )


def instrument_trajectory(ratings: pd.DataFrame, instrument: str) -> pd.DataFrame:
    """The sessions of one instrument from ``Service.episode_ratings`` with a hover description each.

    Missing ratings stay as rows with a NULL score so views can show the gap.
    """
    rows = ratings[ratings["instrument"] == instrument].sort_values("session_number")
    if rows.empty:
        return pd.DataFrame(columns=TRAJECTORY_COLUMNS)
    first = rows.iloc[0]
    cutoff, side = first["cutoff"], first["clinical_side"]
    clinical = _clinical(rows["score"], cutoff, side)
    has_cutoff = cutoff is not None and not pd.isna(cutoff)
    words_in, words_out = (
        _cutoff_words(first["construct"], cutoff, side, bool(first["cutoff_verified"]))
        if has_cutoff
        else ("", "")
    )
    dates = pd.to_datetime(rows["session_date"])
    descriptions = []
    for n, d, s, c in zip(rows["session_number"], dates, rows["score"], clinical, strict=True):
        head = f"Session {n}" + ("" if pd.isna(d) else f" · {d:%d %b %Y}")
        if pd.isna(s):
            descriptions.append(f"{head} · {instrument} not rated (gap)")
            continue
        tail = "" if not has_cutoff else f" ({words_in if c else words_out})"
        descriptions.append(f"{head} · {instrument} {s:g}{tail}")
    return pd.DataFrame(
        {
            "session_number": rows["session_number"].to_numpy(),
            "session_date": dates.to_numpy(),
            "instrument": instrument,
            "score": rows["score"].to_numpy(dtype=float),
            "clinical": clinical.to_numpy(),
            "description": descriptions,
        }
    )
