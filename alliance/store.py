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

#: Version of the stored layout; a store written by another layout is stale. Layout 4: every per-episode
#: table carries its episode's clinician (``scope_clinician``) and is kept in clinician order, the ratings
#: the metrics read are kept once more in that order (``metrics_ratings``), and the client page's lists are
#: kept too (``metrics_client_episodes``, ``metrics_clinician_clients``).
STORE_VERSION = "4"

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


#: The per-episode tables, read narrowed to a scope. Each is stored in the order of its episodes' clinicians
#: with the clinician beside every row (``scope_clinician``), and ``row_order``, the row's place in the
#: computed frame: a caseload or a team is then a few adjacent row groups that DuckDB finds by their min/max
#: (a clinician's episodes are spread over the whole file, so narrowing through the episode table read every
#: row), and the named queries hand the rows back in the order they were computed.
SCOPED_TABLES = (
    "metrics_episode_change",
    "metrics_sudden_events",
    "metrics_alliance_events",
    "metrics_episode_alliance",
    "metrics_episode_status",
    "metrics_session_status",
    "metrics_episode_end",
)

#: The outcome and alliance ratings the metrics are computed from, kept in clinician order too (the
#: caseload's sparklines and courses read its ratings; the data version guarantees they are the file's).
RATINGS_TABLE = """
CREATE TABLE metrics_ratings AS
SELECT e.clinician_id AS scope_clinician, i.construct, r.episode_id, r.instrument, r.session_number,
    r.score, s.session_date
FROM rating r
JOIN session s USING (episode_id, session_number)
JOIN episode e USING (episode_id)
JOIN instrument i ON i.code = r.instrument
WHERE i.construct IN ('outcome', 'alliance')
ORDER BY scope_clinician, i.construct, r.instrument, r.episode_id, r.session_number
"""


#: Every episode with what the client page's pickers show (its client, clinician, dates, sessions and the
#: instruments rated, most-rated first), in client order: a client's episodes without joining the sessions
#: and ratings of the whole service.
CLIENT_EPISODES_TABLE = """
CREATE TABLE metrics_client_episodes AS
WITH s AS (
    SELECT episode_id, count(*) AS n_sessions, min(session_date) AS first_session_date,
        max(session_date) AS last_session_date
    FROM session
    GROUP BY episode_id
),
used AS (
    SELECT r.episode_id, r.instrument, ins.construct, ins.position, count(*) AS n
    FROM rating r
    JOIN instrument ins ON ins.code = r.instrument
    GROUP BY ALL
),
i AS (
    SELECT
        episode_id,
        list(instrument ORDER BY n DESC, position) FILTER (WHERE construct = 'outcome')
            AS outcome_instruments,
        list(instrument ORDER BY n DESC, position) FILTER (WHERE construct = 'alliance')
            AS alliance_instruments
    FROM used
    GROUP BY episode_id
)
SELECT
    e.clinician_id AS scope_clinician, e.episode_id, e.client_id, e.clinician_id, c.team_id, e.population,
    e.start_date, e.end_date, e.end_reason,
    coalesce(s.n_sessions, 0)                         AS n_sessions,
    s.first_session_date,
    s.last_session_date,
    coalesce(i.outcome_instruments, [])               AS outcome_instruments,
    coalesce(i.alliance_instruments, [])              AS alliance_instruments
FROM episode e
JOIN clinician c USING (clinician_id)
LEFT JOIN s USING (episode_id)
LEFT JOIN i USING (episode_id)
ORDER BY e.client_id, e.start_date DESC, e.episode_id
"""

#: Each clinician's clients with their counts and dates (one row per clinician and client), in clinician
#: order: the client picker of a clinician reads only that clinician's rows.
CLINICIAN_CLIENTS_TABLE = """
CREATE TABLE metrics_clinician_clients AS
SELECT
    m.clinician_id                               AS scope_clinician,
    m.client_id,
    count(*)                                     AS n_episodes,
    min(m.first_session_date)                    AS first_seen,
    max(m.last_session_date)                     AS last_seen,
    CAST(sum(m.n_sessions) AS BIGINT)            AS n_sessions,
    bool_or(m.end_date IS NULL)                  AS any_open
FROM metrics_client_episodes m
GROUP BY ALL
ORDER BY scope_clinician, last_seen DESC NULLS LAST, m.client_id
"""


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
            select = "SELECT * FROM metrics_frame"
            if table in SCOPED_TABLES:
                frame = frame.assign(row_order=np.arange(len(frame), dtype="int64"))
                select = (
                    "SELECT f.*, e.clinician_id AS scope_clinician FROM metrics_frame f "
                    "LEFT JOIN episode e ON e.episode_id = f.episode_id "
                    "ORDER BY scope_clinician, f.episode_id, f.row_order"
                )
            con.register("metrics_frame", frame)
            try:
                con.execute(f"CREATE TABLE {table} AS {select}")
            finally:
                con.unregister("metrics_frame")
        con.execute("DROP TABLE IF EXISTS metrics_ratings")
        con.execute(RATINGS_TABLE)
        con.execute("DROP TABLE IF EXISTS metrics_client_episodes")
        con.execute(CLIENT_EPISODES_TABLE)
        con.execute("DROP TABLE IF EXISTS metrics_clinician_clients")
        con.execute(CLINICIAN_CLIENTS_TABLE)
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

    # The ratings the scope's metrics read (the caseload's courses and sparklines): from the stored copy in
    # clinician order, the same rows as ``Service.scoped_ratings`` while the store is current.
    @cached_property
    def outcome_ratings(self) -> pd.DataFrame:
        return self.service._query("metrics_scoped_ratings", construct="outcome")

    @cached_property
    def alliance_ratings(self) -> pd.DataFrame:
        return self.service._query("metrics_scoped_ratings", construct="alliance")

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

    #: What one episode's metrics read from the store (by the episode's code and clinician, within the scope).
    EPISODE_READS = {
        "episode_change": "metrics_episode_change_clinician",
        "episode_status": "metrics_episode_status_clinician",
        "session_status": "metrics_session_status_clinician",
        "sudden_events": "metrics_sudden_events_clinician",
        "alliance_events": "metrics_alliance_events_clinician",
        "episode_end": "metrics_episode_end_clinician",
    }

    def client_list(self, clinician_id: str) -> pd.DataFrame:
        """``Service.clients`` from the stored episode list (a few rows in clinician order)."""
        return self.service._query("metrics_clinician_clients", clinician_id=clinician_id)

    def client_episodes(self, client_id: str) -> pd.DataFrame:
        """``Service.episodes`` from the stored episode list."""
        return self.service._query("metrics_client_episodes", client_id=client_id)

    def episode_reads(self, episode_id: str, clinician_id: str) -> dict[str, pd.DataFrame]:
        """One episode's stored rows (``EPISODE_READS``), taken from its clinician's, which the process keeps
        per data version (``-- cache: per data version, one clinician``): the tables are kept in clinician
        order, so DuckDB decodes the same row group for a clinician's rows as for one episode's, and the next
        client of the same caseload reads nothing (docs/performance.md, round 17). Read one after the other in
        the calling thread: on threads of their own they cost more CPU and the person waited no less (round
        16)."""
        episode_id, clinician_id = str(episode_id), str(clinician_id)
        # The viewer's scope narrowed to the clinician (nothing when outside it): the kept rows are then one
        # answer for every viewer who may see that caseload (the clinician, their supervisor, a director).
        caseload = Service(self.service.db, self.service.scope.restrict(clinician_id))
        out = {}
        for attr, query in self.EPISODE_READS.items():
            rows = caseload._query(query, clinician_id=clinician_id)
            out[attr] = _as_read_alone(rows[rows["episode_id"].to_numpy() == episode_id])
        return out

    def for_episode(self, episode: dict, ratings: pd.DataFrame) -> ClinicalMetrics:
        """One episode's metrics (``ClinicalMetrics.for_episode``): its change, statuses, status at every
        rating, sudden changes, alliance events and end read from the store instead of recomputed; the
        story's layers are drawn from its ratings. (The reads are copies: ``_restore`` may change them.)"""
        m = super().for_episode(episode, ratings)
        reads = self.episode_reads(episode["episode_id"], episode["clinician_id"])
        m.__dict__.update({attr: _restore(frame) for attr, frame in reads.items()})
        return m

    @cached_property
    def service_scales(self) -> pd.DataFrame:
        return self._read("service_scales")

    @cached_property
    def expected_change(self) -> pd.DataFrame:
        return self._read("expected_change")


def _as_read_alone(rows: pd.DataFrame) -> pd.DataFrame:
    """An episode's rows taken from its clinician's, with the column types DuckDB gives when it reads that
    episode alone: the types of a column follow all its values, so a caseload with a NULL somewhere gives
    nullable types and text columns that the episode's own rows would not have (text with no value at all
    is ``object`` holding None, booleans and integers without a missing value are plain NumPy ones)."""
    rows = rows.reset_index(drop=True)
    for col in rows.columns:
        s = rows[col]
        if isinstance(s.dtype, pd.StringDtype):
            if s.isna().all():
                rows[col] = pd.Series([None] * len(s), index=s.index, dtype=object)
        elif isinstance(s.dtype, pd.BooleanDtype | pd.Int64Dtype | pd.Int32Dtype) and not s.isna().any():
            rows[col] = s.astype(s.dtype.numpy_dtype)
    return rows


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
