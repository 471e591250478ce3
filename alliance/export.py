"""``alliance metrics``: the clinical metrics as CSV files, for researchers and auditors to check.

The files and their columns are documented in docs/metrics.md; they are the same frames the pages use
(``alliance.clinical.ClinicalMetrics``), for the full-access scope.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from alliance.clinical import MetricSettings
from alliance.db import Database
from alliance.inert import csv_cell
from alliance.scope import Scope
from alliance.service import Service
from alliance.store import metrics_for

EXPORTS = {
    "episode_change.csv": "episode_change",
    "sudden_events.csv": "sudden_events",
    "alliance_events.csv": "alliance_events",
    "episode_alliance.csv": "episode_alliance",
    "etr_bands.csv": "etr_bands",
    "episode_status.csv": "episode_status",
    "episode_end.csv": "episode_end",
}


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Objects that are not plain values (rule objects) become their descriptions; every text cell is made
    safe for a spreadsheet (``alliance.inert.csv_cell``: codes and words from the data that start with
    ``=``, ``+``, ``-``, ``@``, a tab or a carriage return get a leading ``'``). Numbers are untouched."""
    out = frame.copy()
    for col in out.columns:
        dtype = out[col].dtype
        if pd.api.types.is_object_dtype(dtype):
            out[col] = out[col].map(lambda v: csv_cell(v.describe() if hasattr(v, "describe") else v))
        elif isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
            out[col] = out[col].astype(object).map(csv_cell)
    return out


def write_metrics(db: Path, out: Path, *, as_of: dt.date | None = None) -> dict[str, int]:
    """Compute every metric for the whole database and write one CSV per frame; returns row counts.

    Files are written to a temporary name and renamed, so a failure leaves no half-written file.
    """
    database = Database(db)
    try:
        # The stored metrics where they are current for this date and the default settings; else computed.
        metrics = metrics_for(Service(database, Scope.full_access("export")), MetricSettings(as_of=as_of))
        out.mkdir(parents=True, exist_ok=True)
        written = {}
        for name, attr in EXPORTS.items():
            frame = _tidy(getattr(metrics, attr))
            tmp = out / f".{name}.tmp"
            frame.to_csv(tmp, index=False, float_format="%.10g")
            tmp.replace(out / name)
            written[name] = len(frame)
        return written
    finally:
        database.close()
