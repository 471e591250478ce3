"""State for the client page: which clinician, client, episode and instruments are selected, and the
episode's story (every layer the page draws). No UI here — tests set parameters and assert state."""

from __future__ import annotations

import threading

import pandas as pd
import param

from alliance.clinical import ClinicalMetrics, MetricSettings
from alliance.episode import EpisodeStory, build_story
from alliance.service import Service
from alliance.store import metrics_for

_SERVICE_METRICS: dict[str, ClinicalMetrics] = {}
_LOCK = threading.Lock()


def service_metrics(service: Service) -> ClinicalMetrics:
    """The service-wide metrics for a database, shared per process: read from the metrics store when it is
    current (alliance.store), else computed. Narrow them with ``for_scope``: the store is read by scope in
    SQL.
    """
    key = str(service.db.path.resolve())
    with _LOCK:
        if key not in _SERVICE_METRICS:
            _SERVICE_METRICS[key] = metrics_for(service, MetricSettings())
        return _SERVICE_METRICS[key]


def forget_service_metrics() -> None:
    """Drop the shared aggregates (tests; a server whose database file changed)."""
    with _LOCK:
        _SERVICE_METRICS.clear()


class ClientSelection(param.Parameterized):
    """Cascading selection clinician → client → episode → instruments, and the chosen episode's story."""

    service = param.ClassSelector(class_=Service, doc="Scoped data access.")
    clinician = param.Selector(objects=[], doc="Clinician code.")
    client = param.Selector(objects=[], doc="Client code.")
    episode = param.Selector(objects=[], doc="Episode of the client.")
    outcome_instrument = param.Selector(objects=[], doc="Outcome measure to show.")
    alliance_instrument = param.Selector(objects=[], doc="Alliance measure to show.")
    x_axis = param.Selector(default="session", objects=["session", "date"], doc="Horizontal axis.")
    breakdown = param.Selector(
        default="total",
        objects=["total", "items as lines", "items as heat strip"],
        doc="Alliance item or subscale breakdown.",
    )
    ratings = param.DataFrame(default=None, allow_None=True, doc="Service.episode_ratings of the episode.")
    episode_info = param.Dict(default={}, doc="The chosen episode's row from Service.episodes.")
    notes = param.List(default=[], item_type=str, doc="What the current episode lacks, in words.")
    story = param.ClassSelector(class_=EpisodeStory, allow_None=True, doc="Every layer the page draws.")

    def __init__(self, **params):
        super().__init__(**params)
        self._episodes = pd.DataFrame()
        self._following_client = False
        clinicians = self.service.clinicians()
        ids = clinicians.loc[clinicians["n_episodes"] > 0, "clinician_id"].tolist()
        self.param.clinician.objects = list(ids)
        if self.clinician not in ids:
            self.clinician = ids[0] if ids else None
        else:
            self._update_clients()

    @property
    def metrics(self) -> ClinicalMetrics:
        return service_metrics(self.service)

    def open(self, client: str, episode: str | None = None) -> None:
        """Show a client's episode directly (deep links): the clinician follows the episode."""
        episodes = self.service.episodes(client)
        if episodes.empty:
            return  # unknown or out of scope: nothing changes
        row = episodes[episodes["episode_id"] == episode] if episode else episodes.iloc[:0]
        row = row.iloc[0] if len(row) else episodes.iloc[0]
        self.clinician = row["clinician_id"]
        if self.client != client:
            self.client = client
        if self.episode != row["episode_id"]:
            self.episode = row["episode_id"]

    @param.depends("clinician", watch=True)
    def _update_clients(self):
        clients = self.service.clients(self.clinician)["client_id"].tolist() if self.clinician else []
        # Copies: a Selector without check_on_set appends new values to its objects list.
        self.param.client.objects = list(clients)
        if self.client in clients:
            self._update_episodes()
        else:
            self.client = clients[0] if clients else None

    @param.depends("client", watch=True)
    def _update_episodes(self):
        episodes = self.service.episodes(self.client) if self.client else pd.DataFrame()
        # A client may have episodes with several clinicians: the chosen clinician's come first.
        if not episodes.empty and self.clinician:
            episodes = episodes.sort_values("clinician_id", key=lambda c: c != self.clinician, kind="stable")
        self._episodes = episodes
        ids = episodes["episode_id"].tolist() if not episodes.empty else []
        self.param.episode.objects = list(ids)
        if self.episode in ids:
            self._update_ratings()
        else:
            self.episode = ids[0] if ids else None

    @param.depends("episode", watch=True)
    def _update_ratings(self):
        if not self.episode or self._episodes.empty:
            self.episode_info, self.notes = {}, ["This client has no episode you can see."]
            self.ratings, self.story = None, None
            return
        info = self._episodes.set_index("episode_id").loc[self.episode]
        outcome = list(info["outcome_instruments"])
        alliance = list(info["alliance_instruments"])
        ratings = self.service.episode_ratings(self.episode)
        with param.parameterized.batch_call_watchers(self):
            self.param.outcome_instrument.objects = list(outcome)
            self.param.alliance_instrument.objects = list(alliance)
            self.outcome_instrument = (
                self.outcome_instrument
                if self.outcome_instrument in outcome
                else (outcome[0] if outcome else None)
            )
            self.alliance_instrument = (
                self.alliance_instrument
                if self.alliance_instrument in alliance
                else (alliance[0] if alliance else None)
            )
            self.episode_info = {"episode_id": self.episode, **info.to_dict()}
            self.ratings = ratings

    @param.depends("ratings", "outcome_instrument", "alliance_instrument", watch=True)
    def _update_story(self):
        if self.ratings is None:
            self.story = None
            return
        info = self.episode_info
        metrics = self.metrics.for_episode(
            {k: v for k, v in info.items() if k not in ("outcome_instruments", "alliance_instruments")},
            self.ratings,
        )
        items = (
            self.service.episode_items(self.episode, self.alliance_instrument)
            if self.alliance_instrument
            else None
        )
        story = build_story(
            info, self.ratings, metrics, self.outcome_instrument, self.alliance_instrument, items
        )
        with param.parameterized.batch_call_watchers(self):
            self.notes = (
                self._describe_gaps(
                    self.ratings, list(info["outcome_instruments"]), list(info["alliance_instruments"])
                )
                + story.notes
            )
            self.story = story

    @staticmethod
    def _describe_gaps(ratings: pd.DataFrame, outcome: list, alliance: list) -> list[str]:
        notes = []
        if not outcome:
            notes.append("No outcome measure was rated in this episode: there is no outcome course to show.")
        if not alliance:
            notes.append("No alliance measure was rated in this episode: ask for SRS or WAI-SR feedback.")
        for code in outcome + alliance:
            scores = ratings.loc[ratings["instrument"] == code]
            rated = scores["score"].notna()
            if int(rated.sum()) == 1:
                notes.append(f"{code} has a single rating: there is no trajectory to show yet.")
            gaps = scores.loc[~rated, "session_number"].tolist()
            if gaps:
                listed = ", ".join(str(g) for g in gaps[:8]) + (" …" if len(gaps) > 8 else "")
                notes.append(f"{code} not rated at session{'s' if len(gaps) > 1 else ''} {listed}.")
        return notes
