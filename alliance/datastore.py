"""The data store every page state reads through: one read-only database per process, its data version, the
viewer's scope, and cached reads shared by every session of the process.

No UI here. A page asks its ``DataStore`` for the metrics of its scope or for a comparison; the answers are
cached per process with ``pn.cache``, keyed by the database file, its data version and the scope (so a
viewer never gets another scope's rows, and a new data version is a new key), and they come from the
metrics store in the database file when it is current (``alliance.store``). When ``open_database`` finds a
new version of the file (an import or a refresh swapped it in), every cached read is dropped; a session still
on the old version reads that version (``database_of_version``) until it reloads.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
import panel as pn
import param

from alliance.agenda import AgendaDay, agenda_day
from alliance.caseload import alliance_sessions, caseload_headlines, caseload_table, caseload_trend
from alliance.clinical import ClinicalMetrics, MetricSettings
from alliance.clinician_comparison import ComparisonFilter, comparison_frames
from alliance.db import Database, database_of_version, on_new_version, open_database
from alliance.scope import Scope
from alliance.service import Service
from alliance.store import StoredMetrics, metrics_for


@pn.cache(max_items=8)
def _service_metrics(path: str, data_version: str) -> ClinicalMetrics:
    """The whole service's metrics (stored when current, else computed lazily), once per file version."""
    db = database_of_version(path, data_version)
    return metrics_for(Service(db, Scope.full_access()), MetricSettings())


@pn.cache(max_items=64)
def _scoped_metrics(path: str, data_version: str, scope_all: bool, clinicians: tuple[str, ...]):
    scope = Scope(clinician_ids=clinicians, all_clinicians=scope_all)
    base = _service_metrics(path, data_version)
    return base.for_scope(Service(base.service.db, scope))


@pn.cache(max_items=64)
def _comparison(path: str, data_version: str, scope_all: bool, clinicians: tuple[str, ...], f: tuple) -> dict:
    flt = ComparisonFilter(*f)
    base = _service_metrics(path, data_version)
    if isinstance(base, StoredMetrics):
        # The few columns and rows it adds up, read for this computation only: only the result is kept (the
        # full episode frames of a whole service would hold hundreds of MB in every server process).
        scope = Scope(clinician_ids=clinicians, all_clinicians=scope_all)
        inputs = base.for_scope(Service(base.service.db, scope)).comparison_inputs(flt.instrument)
        return comparison_frames(*inputs, flt)
    m = _scoped_metrics(path, data_version, scope_all, clinicians)  # no current store: computed, and kept
    return comparison_frames(m.episode_change, m.episode_end, m.episode_alliance, flt)


@pn.cache(max_items=64)
def _comparison_options(path: str, data_version: str, scope_all: bool, clinicians: tuple[str, ...]) -> dict:
    base = _service_metrics(path, data_version)
    scope = Scope(clinician_ids=clinicians, all_clinicians=scope_all)
    if isinstance(base, StoredMetrics):  # a few rows from SQL, not the scope's episode frames
        rows = Service(base.service.db, scope)._query("comparison_options")
        kinds = {k: g for k, g in rows.groupby("kind")}
        none = rows.iloc[:0]
        instruments = kinds.get("instrument", none).sort_values(["n", "value"], ascending=[False, True])
        seen = [
            dt.date.fromisoformat(kinds[k]["value"].iloc[0])
            for k in ("first_seen", "last_seen")
            if k in kinds
        ]
        return {
            "instruments": instruments["value"].tolist(),
            "teams": sorted(kinds.get("team", none)["value"].tolist()),
            "period": tuple(seen) if len(seen) == 2 else None,
        }
    m = _scoped_metrics(path, data_version, scope_all, clinicians)
    ch, end = m.episode_change, m.episode_end
    counts = ch["instrument"].value_counts() if len(ch) else pd.Series(dtype=int)
    instruments = sorted(counts.index, key=lambda code: (-counts[code], code))
    last = pd.to_datetime(end["last_session_date"])
    return {
        "instruments": list(instruments),
        "teams": sorted(end["team_id"].dropna().unique().tolist()),
        "period": (last.min().date(), last.max().date()) if len(last) else None,
    }


@pn.cache(max_items=64)
def _agenda_day(path: str, data_version: str, scope_all: bool, clinicians: tuple[str, ...], day: str):
    return agenda_day(_scoped_metrics(path, data_version, scope_all, clinicians), dt.date.fromisoformat(day))


@dataclasses.dataclass(frozen=True)
class Caseload:
    """What a caseload page shows that depends only on the data and the caseload's scope
    (``DataStore.caseload``): its metrics, its table (one row per episode, with flags), headline figures and
    trend by quarter, and the outcome measures of its primary courses, most used first. Shared between
    sessions: read only."""

    metrics: ClinicalMetrics
    table: pd.DataFrame
    headlines: pd.DataFrame
    trend: pd.DataFrame
    instruments: tuple[str, ...]


@pn.cache(max_items=64)
def _caseload(path: str, data_version: str, scope_all: bool, clinicians: tuple[str, ...]) -> Caseload:
    metrics = _scoped_metrics(path, data_version, scope_all, clinicians)
    table = caseload_table(metrics)
    sessions = alliance_sessions(metrics)
    return Caseload(
        metrics=metrics,
        table=table,
        headlines=caseload_headlines(table, sessions),
        trend=caseload_trend(table, sessions),
        instruments=tuple(table["instrument"].dropna().value_counts().index),
    )


def forget_cached_reads() -> None:
    """Drop every cached read (tests; the data changed)."""
    for fn in (_caseload, _agenda_day, _comparison_options, _comparison, _scoped_metrics, _service_metrics):
        fn.clear()


on_new_version(lambda _path: forget_cached_reads())


class DataStore(param.Parameterized):
    """One viewer's access to the process's database: scope, metrics and comparisons, cached per process."""

    db = param.ClassSelector(class_=Database, doc="The read-only database of this process.")
    scope = param.ClassSelector(class_=Scope, doc="What this viewer may see.")

    @classmethod
    def open(cls, path=None, scope: Scope | None = None) -> DataStore:
        """The store for ``path`` ($ALLIANCE_DB by default) and ``scope`` (full access by default)."""
        return cls(db=open_database(path), scope=scope or Scope.full_access())

    @property
    def service(self) -> Service:
        """Named queries with this viewer's scope bound."""
        return Service(self.db, self.scope)

    def _key(self, scope: Scope) -> tuple:
        return (str(self.db.path), self.db.data_version, scope.all_clinicians, tuple(scope.clinician_ids))

    def metrics(self, scope: Scope | None = None) -> ClinicalMetrics:
        """The clinical metrics of the viewer's scope, or of a part of it (``Scope.restrict``)."""
        return _scoped_metrics(*self._key(scope or self.scope))

    def service_metrics(self) -> ClinicalMetrics:
        """Service-wide aggregates (expected-response bands, scales) shared by every scope."""
        return _service_metrics(str(self.db.path), self.db.data_version)

    def caseload(self, scope: Scope) -> Caseload:
        """A caseload's table, headlines and trend (``Caseload``) for ``scope`` (the viewer's narrowed to one
        clinician), made once per process, data version and scope: the clinician's next visit, and their
        supervisor's, make none of it again. Shared between sessions: read only."""
        return _caseload(*self._key(scope))

    def agenda_day(self, scope: Scope, day) -> AgendaDay:
        """What the agenda of ``scope`` (a part of the viewer's) rests on as it stood on ``day``: its reasons,
        their episodes' caseload rows, session dates and sparklines (``alliance.agenda.agenda_day``). None
        of it changes with the discussed-marks, so a meeting page makes it once per process, data version,
        scope and day; a mark or another visit only re-ranks. Shared between sessions: read only."""
        return _agenda_day(*self._key(scope), pd.Timestamp(day).date().isoformat())

    def comparison_options(self, scope: Scope | None = None) -> dict:
        """What the comparison filters offer in the viewer's scope (or a part of it): ``instruments`` (most
        used first), ``teams`` and the ``period`` (first and last date an episode was last seen, or None)."""
        return _comparison_options(*self._key(scope or self.scope))

    def comparison(self, f: ComparisonFilter) -> dict:
        """The clinician comparison of the viewer's scope for one filter (alliance.clinician_comparison)."""
        return _comparison(*self._key(self.scope), dataclasses.astuple(f))
