"""The scoped Python API the pages use: every call runs a named query with the viewer's scope bound.

Views never run SQL; they ask a ``Service`` for tidy frames of what they show.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from alliance.db import Database, open_database
from alliance.scope import Scope


@dataclass(frozen=True)
class Overview:
    """How much the viewer can see; all zero means an empty database or an empty scope."""

    n_clinicians: int
    n_clients: int
    n_episodes: int
    n_sessions: int
    n_ratings: int

    @property
    def empty(self) -> bool:
        return self.n_ratings == 0


class Service:
    """Read access to one database on behalf of one viewer scope."""

    def __init__(self, db: Database, scope: Scope):
        self.db = db
        self.scope = scope

    @classmethod
    def open(cls, path=None, scope: Scope | None = None) -> Service:
        """Open the process-wide connection to ``path`` ($ALLIANCE_DB by default)."""
        return cls(open_database(path), scope or Scope.full_access())

    def _query(self, name: str, **params) -> pd.DataFrame:
        return self.db.query(name, **self.scope.params(), **params)

    def overview(self) -> Overview:
        """Counts of clinicians, clients, episodes, sessions and ratings within scope."""
        row = self._query("service_overview").iloc[0]
        return Overview(**{k: int(row[k]) for k in Overview.__dataclass_fields__})

    def has_ratings(self) -> bool:
        """Whether the scope holds any rating (cheaper than :meth:`overview` on a large service)."""
        return bool(self._query("scope_has_ratings")["has_ratings"].iloc[0])

    def clinicians(self) -> pd.DataFrame:
        """Clinicians within scope with team, supervisor and caseload counts."""
        return self._query("clinicians")

    def landing_episode(self) -> pd.DataFrame:
        """The stored metrics' choice of where the client page opens (``queries/landing_episode.sql``)."""
        return self._query("landing_episode")

    def clients(self, clinician_id: str) -> pd.DataFrame:
        """One clinician's clients, most recently seen first."""
        return self._query("clinician_clients", clinician_id=clinician_id)

    def episodes(self, client_id: str) -> pd.DataFrame:
        """A client's episodes with their outcome and alliance instruments, newest first."""
        return self._query("client_episodes", client_id=client_id)

    def episode_ratings(self, episode_id: str) -> pd.DataFrame:
        """Every session × instrument of one episode (NULL score = gap) with scale and norm."""
        return self._query("episode_ratings", episode_id=episode_id)

    def episode_items(self, episode_id: str, instrument: str) -> pd.DataFrame:
        """Item scores (numbers, short labels, subscales) of one instrument in one episode."""
        return self._query("episode_items", episode_id=episode_id, instrument=instrument)

    # -- inputs of the clinical metrics (alliance.clinical) -----------------------------------------------
    def scoped_episodes(self) -> pd.DataFrame:
        """Every episode in scope with team, dates and session counts."""
        return self._query("scoped_episodes")

    def scoped_ratings(self, construct: str) -> pd.DataFrame:
        """Every rating of one construct ('outcome' or 'alliance') in scope, in session order."""
        return self._query("scoped_ratings", construct=construct)

    def registry(self) -> pd.DataFrame:
        """The instrument registry stored in the database (instrument × norm rows)."""
        return self.db.query("registry")

    def database_info(self) -> pd.DataFrame:
        """alliance_meta: schema version and the date the data describe."""
        return self.db.query("database_info")

    def service_reference(self, as_of, inactivity_days: int) -> pd.DataFrame:
        """Service-wide outcome ratings of closed episodes, for aggregate expected-response bands only."""
        return self.db.query("service_reference", as_of=str(as_of), inactivity_days=inactivity_days)

    def alliance_change_sd(self) -> pd.DataFrame:
        """Service-wide SD of session-to-session change per alliance instrument (aggregate)."""
        return self.db.query("service_alliance_change_sd")
