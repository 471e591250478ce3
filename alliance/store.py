"""The metrics store: the clinical metrics computed once per version of the data and kept as tables in the
database file, stamped with the data version, the settings and the date they describe.

``alliance demo``, ``alliance import`` and ``alliance refresh`` write them; pages and ``alliance metrics``
read them through named queries (``queries/metrics_*.sql``), narrowed to the viewer's scope in SQL
(:class:`StoredMetrics`). Any change of the data (a rating, a session, an episode end, a norm) changes the
data version, and any change of settings or of the date changes the stamp: a stale store is never read — the
metrics are then computed from the ratings as before, and the page says the store needs a refresh.

Why every table is rebuilt on refresh, not only the episodes an import touched: the expected-response
bands and the service SD of alliance change are service-wide, and status and ruptures of every episode
depend on them, so a new batch of ratings changes results in episodes it did not touch.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from alliance.clinical import ClinicalMetrics, MetricSettings
from alliance.db import Database, data_version, load_query, rewrite, writer_lock
from alliance.scope import Scope
from alliance.service import Service

#: Version of the stored layout; a store written by another layout is stale.
STORE_VERSION = "3"

#: Stored table → (ClinicalMetrics attribute, named query that reads it back).
TABLES: dict[str, tuple[str, str]] = {
    "metrics_episode_change": ("episode_change", "metrics_episode_change"),
    "metrics_sudden_events": ("sudden_events", "metrics_sudden_events"),
    "metrics_alliance_events": ("alliance_events", "metrics_alliance_events"),
    "metrics_episode_alliance": ("episode_alliance", "metrics_episode_alliance"),
    "metrics_etr_bands": ("etr_bands", "metrics_etr_bands"),
    "metrics_episode_status": ("episode_status", "metrics_episode_status"),
    "metrics_session_status": ("session_status", "metrics_session_status"),
    "metrics_episode_end": ("episode_end", "metrics_episode_end"),
    "metrics_service_scales": ("service_scales", "metrics_service_scales"),
    "metrics_expected_change": ("expected_change", "metrics_expected_change"),
}


def settings_key(settings: MetricSettings) -> str:
    """A stable digest of every setting that changes a metric (the date excluded: it is stamped apart)."""
    plain = dataclasses.asdict(dataclasses.replace(settings, as_of=None))
    text = json.dumps(plain, sort_keys=True, default=str)
    layout = ",".join(sorted(TABLES))  # a store written with other tables is stale too
    return hashlib.sha256(f"{STORE_VERSION}|{layout}|{text}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class StoreStamp:
    """What a stored set of metrics was computed from."""

    data_version: str
    settings_key: str
    as_of: dt.date
    computed_at: str = ""
    seconds: float = float("nan")

    def matches(self, other: StoreStamp) -> bool:
        return (self.data_version, self.settings_key, self.as_of) == (
            other.data_version,
            other.settings_key,
            other.as_of,
        )


def read_stamp(db: Database) -> StoreStamp | None:
    """The stamp of the metrics stored in ``db``, or None when it holds none."""
    try:
        meta = dict(db.query("metrics_meta").itertuples(index=False))
    except duckdb.CatalogException:
        return None
    if not {"data_version", "settings_key", "as_of"} <= set(meta):
        return None
    return StoreStamp(
        meta["data_version"],
        meta["settings_key"],
        dt.date.fromisoformat(meta["as_of"]),
        meta.get("computed_at", ""),
        float(meta.get("seconds", "nan")),
    )


def wanted_stamp(db: Database, settings: MetricSettings) -> StoreStamp:
    """The stamp a current store must carry for ``settings`` on this database as it is now."""
    return StoreStamp(db.data_version, settings_key(settings), _as_of(db, settings))


def _as_of(db: Database, settings: MetricSettings) -> dt.date:
    if settings.as_of:
        return settings.as_of
    meta = dict(db.query("database_info").itertuples(index=False))
    return dt.date.fromisoformat(meta["data_as_of"]) if "data_as_of" in meta else dt.date.today()


def is_current(db: Database, settings: MetricSettings) -> bool:
    """True when ``db`` holds metrics computed from its present data with ``settings``."""
    stamp = read_stamp(db)
    return stamp is not None and stamp.matches(wanted_stamp(db, settings))


# -- writing --------------------------------------------------------------------------------------------
def _storable(frame: pd.DataFrame) -> pd.DataFrame:
    """Rule objects become their descriptions; everything else stays as the metrics computed it."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(lambda v: v.describe() if hasattr(v, "describe") else v)
    return out


def write_store(
    con: duckdb.DuckDBPyConnection,
    path: Path | str,
    settings: MetricSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> StoreStamp:
    """Compute every metric for the whole database on a writable connection and replace the stored tables.

    All tables and the stamp are replaced in one transaction: a reader sees the old store or the new one.
    """
    settings = settings or MetricSettings()
    started = time.perf_counter()
    db = Database.on_connection(con, path)
    metrics = ClinicalMetrics(Service(db, Scope.full_access("metrics store")), settings)
    frames = {}
    for table, (attr, _) in TABLES.items():
        if progress:
            progress(table)
        frame = _storable(getattr(metrics, attr))
        if frame.empty:  # an empty result may carry no columns; the named query expects its documented ones
            # As text: an untyped empty column would be stored as DOUBLE, and the scope's comparison of
            # episode codes with it would fail.
            frame = frame.reindex(columns=load_query(TABLES[table][1]).columns).astype("string")
        frames[table] = frame
    stamp = StoreStamp(
        data_version(con),
        settings_key(settings),
        metrics.as_of,
        dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        round(time.perf_counter() - started, 3),
    )
    con.execute("BEGIN TRANSACTION")
    try:
        for table, frame in frames.items():
            con.execute(f"DROP TABLE IF EXISTS {table}")
            con.register("metrics_frame", frame)
            try:
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM metrics_frame")
            finally:
                con.unregister("metrics_frame")
        con.execute("CREATE OR REPLACE TABLE metrics_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        meta = {
            "store_version": STORE_VERSION,
            "data_version": stamp.data_version,
            "settings_key": stamp.settings_key,
            "as_of": stamp.as_of.isoformat(),
            "computed_at": stamp.computed_at,
            "seconds": str(stamp.seconds),
            "settings": json.dumps(dataclasses.asdict(settings), sort_keys=True, default=str),
            **{f"rows_{t}": str(len(f)) for t, f in frames.items()},
        }
        con.executemany("INSERT INTO metrics_meta VALUES (?, ?)", list(meta.items()))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return stamp


def refresh(path: Path | str, settings: MetricSettings | None = None) -> StoreStamp:
    """``alliance refresh``: recompute and store every metric of the database file at ``path``.

    Written into a copy beside the file and swapped in whole (``alliance.db.rewrite``): a running dashboard
    keeps reading the old file until it notices the new one, and a refresh that fails leaves the file as it
    was. Raises DatabaseError for a file that cannot be used or is being written by another command."""
    path = Path(path)
    Database(path).close()  # the same checks and messages as a page: missing file, not a database, schema
    with writer_lock(path), rewrite(path) as con:
        return write_store(con, path, settings)


# -- reading --------------------------------------------------------------------------------------------
class StoredMetrics(ClinicalMetrics):
    """The same frames as :class:`ClinicalMetrics`, read from the store and narrowed to the scope in SQL.

    Only for a database whose store is current for these settings (``metrics_for``); what the store does not
    hold (metrics as of an earlier date) is computed as before. One episode's metrics (``for_episode``) read
    its change and statuses and compute the rest from its ratings.
    """

    SCOPED = (
        "episode_change",
        "sudden_events",
        "alliance_events",
        "episode_alliance",
        "episode_status",
        "session_status",
        "episode_end",
    )

    def for_scope(self, service: Service) -> ClinicalMetrics:
        m = StoredMetrics(service, self.settings)
        for name in self.SHARED:
            m.__dict__[name] = getattr(self, name)
        return m

    def _read(self, attr: str) -> pd.DataFrame:
        query = next(q for a, q in TABLES.values() if a == attr)
        frame = self.service._query(query) if attr in self.SCOPED else self.service.db.query(query)
        # A copy: DuckDB may hand over read-only arrays, and the rules write into what they are given.
        return _restore(frame.copy(deep=True))

    @cached_property
    def episode_change(self) -> pd.DataFrame:
        return self._read("episode_change")

    @cached_property
    def sudden_events(self) -> pd.DataFrame:
        return self._read("sudden_events")

    @cached_property
    def alliance_events(self) -> pd.DataFrame:
        return self._read("alliance_events")

    @cached_property
    def episode_alliance(self) -> pd.DataFrame:
        return self._read("episode_alliance")

    @cached_property
    def etr_bands(self) -> pd.DataFrame:
        return self._read("etr_bands")

    @cached_property
    def episode_status(self) -> pd.DataFrame:
        return self._read("episode_status")

    @cached_property
    def session_status(self) -> pd.DataFrame:
        return self._read("session_status")

    @cached_property
    def episode_end(self) -> pd.DataFrame:
        return self._read("episode_end")

    def comparison_inputs(self, instrument: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """What a clinician comparison of ``instrument`` adds up (``comparison_frames``' change, end and
        alliance frames): the scope's episodes rated on the instrument, only the columns it uses, read for
        this computation and not kept."""
        return tuple(
            _restore(self.service._query(q, outcome_instrument=instrument).copy(deep=True))
            for q in ("comparison_change", "comparison_end", "comparison_alliance")
        )

    #: What one episode's metrics read from the store (by the episode's code, within the scope).
    EPISODE_READS = {
        "episode_change": "metrics_episode_change_one",
        "episode_status": "metrics_episode_status_one",
        "session_status": "metrics_session_status_one",
    }

    def for_episode(self, episode: dict, ratings: pd.DataFrame) -> ClinicalMetrics:
        """One episode's metrics (``ClinicalMetrics.for_episode``): its change, status and status at every
        rating read from the store (a few rows each) instead of recomputed; the rest (sudden events, alliance
        events, the story's layers) computed from its ratings as before."""
        m = super().for_episode(episode, ratings)
        for attr, query in self.EPISODE_READS.items():
            rows = self.service._query(query, episode_id=str(episode["episode_id"]))
            m.__dict__[attr] = _restore(rows.copy(deep=True))
        return m

    @cached_property
    def service_scales(self) -> pd.DataFrame:
        return self._read("service_scales")

    @cached_property
    def expected_change(self) -> pd.DataFrame:
        return self._read("expected_change")


def _restore(frame: pd.DataFrame) -> pd.DataFrame:
    """Give stored columns the types the computation gives: DuckDB's NULL booleans come back as objects
    (pandas' nullable boolean here), and categories as ordered ENUMs (unordered here, as computed)."""
    for col in frame.columns:
        s = frame[col]
        if isinstance(s.dtype, pd.CategoricalDtype) and s.dtype.ordered:
            frame[col] = s.cat.as_unordered()
            continue
        if s.dtype == object and s.map(lambda v: v is None or isinstance(v, bool | np.bool_)).all():
            if s.notna().any():
                frame[col] = s.astype("boolean")
    return frame


def metrics_for(service: Service, settings: MetricSettings | None = None) -> ClinicalMetrics:
    """Stored metrics where the database's store is current for ``settings``, else computed ones."""
    settings = settings or MetricSettings()
    if is_current(service.db, settings):
        return StoredMetrics(service, settings)
    return ClinicalMetrics(service, settings)
