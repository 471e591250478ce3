"""State for the client page: which clinician, client, episode and instruments are selected, and the
episode's ratings. No UI here — tests set parameters and assert state."""

from __future__ import annotations

import pandas as pd
import param

from alliance.service import Service
from alliance.trajectory import TRAJECTORY_COLUMNS, instrument_trajectory

_EMPTY = pd.DataFrame(columns=TRAJECTORY_COLUMNS)


class ClientSelection(param.Parameterized):
    """Cascading selection clinician → client → episode → instruments, and the chosen episode's data."""

    service = param.ClassSelector(class_=Service, doc="Scoped data access.")
    clinician = param.Selector(objects=[], doc="Clinician code.")
    client = param.Selector(objects=[], doc="Client code.")
    episode = param.Selector(objects=[], doc="Episode of the client.")
    outcome_instrument = param.Selector(objects=[])
    alliance_instrument = param.Selector(objects=[])
    ratings = param.DataFrame(default=None, allow_None=True, doc="Service.episode_ratings of the episode.")
    episode_info = param.Dict(default={}, doc="The chosen episode's row from Service.episodes.")
    notes = param.List(default=[], item_type=str, doc="What the current episode lacks, in words.")
    outcome = param.DataFrame(default=None, allow_None=True, doc="Trajectory of the outcome instrument.")
    alliance = param.DataFrame(default=None, allow_None=True, doc="Trajectory of the alliance instrument.")

    def __init__(self, **params):
        super().__init__(**params)
        clinicians = self.service.clinicians()
        ids = clinicians.loc[clinicians["n_episodes"] > 0, "clinician_id"].tolist()
        self.param.clinician.objects = list(ids)
        if self.clinician not in ids:
            self.clinician = ids[0] if ids else None
        else:
            self._update_clients()

    @param.depends("clinician", watch=True)
    def _update_clients(self):
        clients = self.service.clients(self.clinician)["client_id"].tolist() if self.clinician else []
        self.param.client.objects = list(clients)
        if self.client in clients:
            self._update_episodes()
        else:
            self.client = clients[0] if clients else None

    @param.depends("client", watch=True)
    def _update_episodes(self):
        episodes = self.service.episodes(self.client) if self.client else pd.DataFrame()
        # A client may have episodes with several clinicians: keep the chosen clinician's first.
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
        if not self.episode:
            self.episode_info, self.notes = {}, ["This client has no episode you can see."]
            self.ratings = None
            return
        info = self._episodes.set_index("episode_id").loc[self.episode]
        outcome = list(info["outcome_instruments"])
        alliance = list(info["alliance_instruments"])
        ratings = self.service.episode_ratings(self.episode)
        with param.parameterized.batch_call_watchers(self):
            # Copies: a Selector without check_on_set appends new values to its objects list.
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
            self.notes = self._describe_gaps(ratings, outcome, alliance)
            self.ratings = ratings

    @staticmethod
    def _describe_gaps(ratings: pd.DataFrame, outcome: list, alliance: list) -> list[str]:
        notes = []
        if not outcome:
            notes.append("No outcome measure was rated in this episode.")
        if not alliance:
            notes.append("No alliance measure was rated in this episode.")
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

    @param.depends("ratings", "outcome_instrument", watch=True, on_init=True)
    def _update_outcome(self):
        self.outcome = self._trajectory(self.outcome_instrument)

    @param.depends("ratings", "alliance_instrument", watch=True, on_init=True)
    def _update_alliance(self):
        self.alliance = self._trajectory(self.alliance_instrument)

    def _trajectory(self, instrument: str | None) -> pd.DataFrame:
        if self.ratings is None or not instrument:
            return _EMPTY
        return instrument_trajectory(self.ratings, instrument)
