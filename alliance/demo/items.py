"""Stored ratings of one instrument: items that add up to a total, totals, and the items' precision."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


# ---------------------------------------------------------------------------------------------------------
# Items and totals
# ---------------------------------------------------------------------------------------------------------
def _items_from_total(
    rng, total: np.ndarray, n_items: int, item_sd: float, item_min: float, item_max: float, decimals: int
) -> np.ndarray:
    """Item scores that add up to ``total`` rounded to the items' precision (clipped to the possible range).

    Items scatter around total / n_items with noise that sums to zero and shrinks near the ends of the item
    range; largest-remainder rounding then hands out the last units so the items hit the rounded total. A
    total above the maximum becomes all items at their maximum: that is the SRS ceiling.
    """
    scale = 10**decimals  # work in units of the items' precision (tenths for ORS and SRS)
    lo, hi = item_min * scale, item_max * scale
    target = np.clip(np.rint(total * scale), n_items * lo, n_items * hi)
    mean_item = target / n_items
    room = np.minimum(mean_item - lo, hi - mean_item)
    spread = item_sd * scale * np.clip(room / (2 * item_sd * scale), 0.0, 1.0)
    noise = rng.standard_normal((len(total), n_items)) * spread[:, None]
    noise -= noise.mean(axis=1, keepdims=True)
    raw = np.clip(mean_item[:, None] + noise, lo, hi)
    units = np.floor(raw)
    short = target - units.sum(axis=1)
    # Largest remainder: the items with the largest fractional parts get the units still missing.
    rank = np.argsort(np.argsort(units - raw, axis=1, kind="stable"), axis=1, kind="stable")
    units += (rank < short[:, None]) & (units < hi)
    return units / scale


def _total(items: np.ndarray, decimals: int) -> np.ndarray:
    """Sum of items, rounded to the items' precision so floating-point sums are exact decimals."""
    return np.round(items.sum(axis=1), decimals)


@dataclass
class InstrumentRatings:
    """Stored ratings of one instrument before missingness: session rows, totals and items (if any)."""

    code: str
    rows: np.ndarray  # session row per rating
    total: np.ndarray
    items: np.ndarray | None  # (n_ratings, n_items)

    def by_row(self, n_rows: int) -> np.ndarray:
        """Totals spread over all session rows (NaN where the instrument is not rated)."""
        score = np.full(n_rows, np.nan)
        score[self.rows] = self.total
        return score


def _decimals(code: str) -> int:
    """ORS and SRS items are marked on a 10 cm line and read to one decimal; other items are integers."""
    return 1 if code in ("ORS", "SRS") else 0
