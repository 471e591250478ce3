"""The pages' states, side by side: what each page has selected and the frames it shows — the client page's
selection and the episode's story, the caseload, the comparison and the meeting agenda. No UI here: tests set
parameters and assert state; views (alliance.views) only draw a state, pages (alliance.pages) lay them out."""

from __future__ import annotations

import sqlite3
import threading
from functools import partial

import pandas as pd
import param

from alliance.agenda import supervisors, team_clinicians
from alliance.clinical import ClinicalMetrics, MetricSettings
from alliance.clinician_comparison import MEASURES, ComparisonFilter
from alliance.datastore import DataStore, _service_metrics, forget_cached_reads
from alliance.episode import EpisodeStory, build_story
from alliance.marks import MarkStore
from alliance.service import Service
from alliance.store import is_current


def service_metrics(service: Service) -> ClinicalMetrics:
    """The service-wide metrics for a database, shared per process and data version (alliance.datastore):
    read from the metrics store when it is current, else computed. Narrow them with ``for_scope``: the store
    is read by scope in SQL.
    """
    return _service_metrics(str(service.db.path.resolve()), service.db.data_version)


def forget_service_metrics() -> None:
    """Drop the shared metrics and every cached read (tests; a server whose database file changed)."""
    forget_cached_reads()


class HandsOver(param.Parameterized):
    """A state whose work after a person's choice can be handed over to run a moment later.

    ``defer`` decides how that work runs. ``None``: at once. Otherwise a callable given the work; it returns
    True when it has taken the work over, False when the work should run at once. A served page passes
    ``alliance.pages.later``: once the page has loaded, the work runs at the server's next turn (or once
    the page's last message is on its way). The server
    runs each session's callbacks on its event loop and sends what a callback changed only when it returns,
    so ``busy``, and the loading indicator the page shows while it is True, reaches the browser first."""

    busy = param.Boolean(default=False, doc="True while the work of a choice waits or runs.")

    defer = None

    def __init__(self, **params):
        super().__init__(**params)
        self._pending: set = set()  # the work handed over and not yet run

    def _hand_over(self, work) -> None:
        """Run ``work`` (which reads the choices when it runs) at once or handed over. Work already waiting is
        not handed over twice: several changes before it runs (a slider dragged) are done by one run."""
        if work in self._pending:
            return
        if self.defer is not None and self.defer(partial(self._run_handed, work)):
            self._pending.add(work)
            self.busy = True
            return
        work()

    def _run_handed(self, work) -> None:
        self._pending.discard(work)
        try:
            work()
        finally:
            if not self._pending:
                self.busy = False


class ClientSelection(HandsOver):
    """Cascading selection clinician → client → episode → instruments, and the chosen episode's story.

    Every choice runs one cascade: the lists below the changed choice are refreshed, the episode's ratings are
    read, and the story is built **once**, at the end, and published together with ``ratings``,
    ``episode_info`` and ``notes`` in one batch of events. ``busy`` is True from the start of a cascade until
    the story is published (pages show their loading indicator meanwhile). With ``hold_story`` the cascades
    choose and read the episode's ratings but build no story until ``release_story`` (a served page, while
    the browser draws its frame): a link's client replaces the landing episode before any story is built.
    """

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
    busy = param.Boolean(default=False, doc="True while a choice is being followed (the story being built).")
    # ``defer`` (``HandsOver``): a person's choice hands its whole cascade over; the steps inside it never.

    def __init__(self, hold_story: bool = False, **params):
        super().__init__(**params)
        # ``hold_story``: cascades choose and read the episode's ratings but leave the story to
        # ``release_story`` (a served page builds it while the browser draws the page's frame).
        self._held, self._story_pending = hold_story, False
        self._episodes = pd.DataFrame()
        self._ratings: pd.DataFrame | None = None  # the chosen episode's, published with the story
        self._cascading: int | None = None  # the thread running a cascade
        self._cascade_lock = threading.Lock()
        self.param.watch(self._chosen, list(self._STEPS))
        clinicians = self.service.clinicians()
        ids = clinicians.loc[clinicians["n_episodes"] > 0, "clinician_id"].tolist()
        self.param.clinician.objects = list(ids)
        landing = self.landing_episode() if self.clinician is None else None
        if landing is not None:
            self.open(*landing)
        elif self.clinician not in ids:
            self.clinician = ids[0] if ids else None  # the watcher runs the cascade
        else:
            self._cascade(self._choose_clients)

    def landing_episode(self) -> tuple[str, str] | None:
        """Where the page opens without a choice: the most recently seen open episode in scope that is not on
        track (red), else the most recently seen open one with at least two outcome ratings."""
        if is_current(self.service.db, MetricSettings()):  # one scoped read of the stored metrics
            row = self.service.landing_episode()
            return (str(row["client_id"].iloc[0]), str(row["episode_id"].iloc[0])) if len(row) else None
        m = DataStore(db=self.service.db, scope=self.service.scope).metrics()
        end, status = m.episode_end, m.episode_status
        if end.empty or status.empty:
            return None
        status = status[status["primary"].astype(bool)]
        open_ = end[~end["closed"].astype(bool)].merge(status, on="episode_id")
        change = m.episode_change
        rated = set(change.loc[change["n_ratings"] >= 2, "episode_id"])
        open_ = open_[open_["episode_id"].isin(rated)].sort_values("last_session_date", ascending=False)
        for pick in (open_[open_["status"] == "red"], open_):
            if len(pick):
                return str(pick["client_id"].iloc[0]), str(pick["episode_id"].iloc[0])
        return None

    @property
    def metrics(self) -> ClinicalMetrics:
        return service_metrics(self.service)

    def _lists(self) -> ClinicalMetrics:
        """The viewer's metrics, for the pickers' lists (read from the store's episode list when current)."""
        return self.metrics.for_scope(self.service)

    def open(self, client: str, episode: str | None = None) -> None:
        """Show a client's episode directly (deep links): the clinician follows the episode."""
        episodes = self._lists().client_episodes(client)
        if episodes.empty:
            return  # unknown or out of scope: nothing changes
        row = episodes[episodes["episode_id"] == episode] if episode else episodes.iloc[:0]
        row = row.iloc[0] if len(row) else episodes.iloc[0]

        def choose():
            if self.clinician != row["clinician_id"] or client not in self.param.client.objects:
                self.clinician = row["clinician_id"]
                self._choose_clients(client, row["episode_id"], episodes)
            else:
                self.client = client
                self._choose_episodes(row["episode_id"], episodes)

        self._cascade(choose)

    # -- the cascade ----------------------------------------------------------------------------------
    # One watcher starts a cascade at the highest choice that changed (several may change in one batch, e.g.
    # from the URL); inside a cascade each step sets the choice below it (widgets follow those events) and
    # calls the next step itself, so the events of those choices start nothing.
    _STEPS = {
        "clinician": "_choose_clients",
        "client": "_choose_episodes",
        "episode": "_choose_instruments",
        "outcome_instrument": None,
        "alliance_instrument": None,
        "breakdown": None,  # the items are read only for a breakdown that shows them
    }

    def _chosen(self, *events) -> None:
        changed = {e.name for e in events}
        if changed == {"breakdown"} and all((e.old == "total") == (e.new == "total") for e in events):
            return  # from one item breakdown to the other: the story holds the items already
        step = next((s for name, s in self._STEPS.items() if name in changed and s), None)
        work = partial(self._cascade, getattr(self, step) if step else lambda: None)
        if self._cascading is None:  # a person's choice: may be handed over (HandsOver)
            self._hand_over(work)
        else:  # a step inside a cascade: that cascade goes on with it
            work()

    def _cascade(self, step) -> None:
        """Run ``step`` (which sets the choices below it), then build and publish the story once."""
        if self._cascading == threading.get_ident():
            return  # this cascade set the choice and goes on with the steps below it itself
        with self._cascade_lock:  # a choice made meanwhile in another server thread waits for this one
            self._cascading = threading.get_ident()
            try:
                self.busy = True
                step()
                if self._held:
                    self._story_pending = True
                else:
                    self._publish()
            finally:
                self._cascading = None
                self.busy = False  # normally already False, published with the story

    @property
    def story_held(self) -> bool:
        """True while the story of the chosen episode waits for ``release_story``."""
        return self._held

    def release_story(self) -> bool:
        """Build and publish the story a held selection left pending (its ratings read when the episode
        was chosen), and build every later one at once. True when a story was published now."""
        with self._cascade_lock:
            self._held = False
            if not self._story_pending:
                return False
            self._story_pending = False
            self._publish()
            return True

    def _choose_clients(self, client=None, episode=None, episodes=None) -> None:
        clients = self._lists().client_list(self.clinician)["client_id"].tolist() if self.clinician else []
        # The choice is made before the list is published: a shown selector whose value is not in the new
        # list resets to its first entry and writes that back. Copies: a Selector without check_on_set
        # appends new values to its objects list.
        if client not in clients:
            client, episode, episodes = (self.client if self.client in clients else None), None, None
        if client is None:
            client = clients[0] if clients else None
        self.param.client.objects = list(clients)
        self.client = client
        self._choose_episodes(episode, episodes)

    def _choose_episodes(self, episode=None, episodes=None) -> None:
        if episodes is None:
            episodes = self._lists().client_episodes(self.client) if self.client else pd.DataFrame()
        # A client may have episodes with several clinicians: the chosen clinician's come first.
        if not episodes.empty and self.clinician:
            episodes = episodes.sort_values("clinician_id", key=lambda c: c != self.clinician, kind="stable")
        self._episodes = episodes
        ids = episodes["episode_id"].tolist() if not episodes.empty else []
        if episode not in ids:  # chosen before the list is published (see _choose_clients)
            episode = self.episode if self.episode in ids else (ids[0] if ids else None)
        self.param.episode.objects = list(ids)
        self.episode = episode
        self._choose_instruments()

    def _choose_instruments(self) -> None:
        if not self.episode or self._episodes.empty:
            self._ratings = None
            # No episode, no measure: the selects do not go on offering the last episode's.
            with param.parameterized.batch_call_watchers(self):
                self.param.outcome_instrument.objects = []
                self.param.alliance_instrument.objects = []
                self.outcome_instrument = self.alliance_instrument = None
            return
        info = self._episodes.set_index("episode_id").loc[self.episode]
        outcome = list(info["outcome_instruments"])
        alliance = list(info["alliance_instruments"])
        self._ratings = self.service.episode_ratings(self.episode)
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

    def _publish(self) -> None:
        """Build the chosen episode's story (the one build of a cascade) and publish it in one batch."""
        ratings = self._ratings
        if not self.episode or self._episodes.empty or ratings is None:
            info, story, notes = {}, None, ["This client has no episode you can see."]
        else:
            row = self._episodes.set_index("episode_id").loc[self.episode]
            info = {"episode_id": self.episode, **row.to_dict()}
            # The item scores only for a breakdown that draws them: the total, which the page opens with,
            # needs none (a read of about 4 ms on every client switch otherwise; docs/performance.md,
            # round 17).
            items = (
                self.service.episode_items(self.episode, self.alliance_instrument)
                if self.alliance_instrument and self.breakdown != "total"
                else None
            )
            metrics = self.metrics.for_episode(
                {k: v for k, v in info.items() if k not in ("outcome_instruments", "alliance_instruments")},
                ratings,
            )
            story = build_story(
                info, ratings, metrics, self.outcome_instrument, self.alliance_instrument, items
            )
            notes = (
                self._describe_gaps(
                    ratings, list(info["outcome_instruments"]), list(info["alliance_instruments"])
                )
                + story.notes
            )
        with param.parameterized.batch_call_watchers(self):
            self.episode_info = info
            self.ratings = ratings
            self.notes = notes
            self.story = story
            self.busy = False

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


class CaseloadState(param.Parameterized):
    """Which clinician's caseload, which episodes and instrument; the frames the views show."""

    clinician = param.Selector(objects=[], doc="Clinician code.")
    show_closed = param.Boolean(default=False, doc="Show closed episodes too.")
    instrument = param.Selector(objects=[], doc="Outcome instrument of the caseload picture.")
    table = param.DataFrame(default=None, allow_None=True)
    headlines = param.DataFrame(default=None, allow_None=True)
    trend = param.DataFrame(default=None, allow_None=True)
    courses = param.DataFrame(default=None, allow_None=True)
    band = param.DataFrame(default=None, allow_None=True)

    def __init__(self, service, **params):
        self.service = service
        super().__init__(**params)
        clinicians = service.clinicians()
        ids = clinicians.loc[clinicians["n_episodes"] > 0, "clinician_id"].tolist()
        chosen = self.clinician  # given at construction: built once, for them, when in scope
        self.param.clinician.objects = list(ids)
        if chosen not in ids:
            self.clinician = ids[0] if ids else None
        else:
            self._update()

    @param.depends("clinician", watch=True)
    def _update(self):
        # The viewer's scope narrowed to this clinician: the queries only ever return this caseload. Made
        # through the process's cache (per data version and scope): the next session of the same caseload
        # (the clinician again, their supervisor in a meeting) makes none of it again.
        store = DataStore(db=self.service.db, scope=self.service.scope)
        caseload = store.caseload(self.service.scope.restrict(self.clinician))
        self.metrics = caseload.metrics
        instruments = list(caseload.instruments)
        before = self.instrument
        with param.parameterized.batch_call_watchers(self):
            self.param.instrument.objects = list(instruments)
            self.instrument = (
                self.instrument
                if self.instrument in instruments
                else (instruments[0] if instruments else None)
            )
            self.headlines = caseload.headlines
            self.trend = caseload.trend
            self.table = caseload.table
            if self.instrument == before:  # else the instrument's watcher draws the courses, once
                self._update_courses()

    @param.depends("instrument", "show_closed", watch=True)
    def _update_courses(self):
        from alliance.caseload import caseload_courses, expected_change_band

        if self.table is None or not self.instrument:
            self.courses, self.band = None, None
            return
        shown = self.table if self.show_closed else self.table[~self.table["closed"]]
        self.courses = caseload_courses(self.metrics, shown, self.instrument)
        self.band = expected_change_band(self.metrics, self.instrument)


class ComparisonState(HandsOver):
    """Filters and the per-clinician frames they select."""

    instrument = param.Selector(objects=[], doc="Outcome measure compared.")
    team = param.Selector(objects=["all teams"], default="all teams", doc="Team.")
    population = param.Selector(objects=["all", "adult", "adolescent", "child"], default="all")
    period = param.DateRange(
        default=None, allow_None=True, doc="Closed episodes whose last session falls here."
    )
    minimum = param.Integer(default=5, bounds=(1, 100), doc="Minimum closed episodes to be ranked.")
    measure = param.Selector(
        objects={label: key for key, label in MEASURES.items()},
        default="reliably_improved_rate",
        doc="What the funnel plot shows.",
    )
    frames = param.Dict(default={})
    #: Counts updates of ``frames``: the plots watch it (a number, where comparing or hashing the frames
    #: themselves took seconds).
    revision = param.Integer(default=0)

    def __init__(self, store, prefer: str | None = None, **params):
        """``prefer``: the outcome measure to start on when the scope has it (else the most used one)."""
        self.store = store
        super().__init__(**params)
        options = store.comparison_options()  # a few rows, cached per process, data version and scope
        instruments, period = options["instruments"], options["period"]
        # Set every filter before the first computation: one comparison per page, not one per filter.
        with param.parameterized.discard_events(self):
            self.param.instrument.objects = list(instruments)
            self.instrument = prefer if prefer in instruments else instruments[0] if instruments else None
            self.param.team.objects = ["all teams", *options["teams"]]
            if period:
                self.param.period.bounds = period
                self.period = period
        self._update()

    @property
    def metrics(self):
        """The viewer's metrics (read when asked: the page itself needs only the comparison)."""
        return self.store.metrics()

    def filter(self) -> ComparisonFilter | None:
        """The episodes the filters select, or None without an outcome instrument."""
        if not self.instrument:
            return None
        start, end = self.period if self.period else (None, None)
        return ComparisonFilter(
            instrument=self.instrument,
            start=start,
            end=end,
            team_id=None if self.team == "all teams" else self.team,
            population=None if self.population == "all" else self.population,
            minimum=self.minimum,
        )

    @param.depends("instrument", "team", "population", "period", "minimum", watch=True)
    def _filtered(self):
        self._hand_over(self._update)  # a filter of the service's comparison can take a second

    def _update(self):
        f = self.filter()
        frames = {} if f is None else self.store.comparison(f)  # cached per process, data version, scope
        with param.parameterized.batch_call_watchers(self):
            self.frames = frames
            self.revision += 1


ALL = "all supervisees"


class MeetingState(HandsOver):
    """Which supervisor, supervisee and meeting date; the agenda with its supervisee headers, sparklines and
    what changed since the last meeting; the marks made at this meeting (discussed, undo, follow-up). No UI
    here."""

    service = param.ClassSelector(class_=Service)
    store = param.ClassSelector(class_=MarkStore)
    supervisor = param.Selector(objects=[], doc="Supervisor code.")
    supervisee = param.Selector(objects=[ALL], default=ALL, doc="One supervisee, or all.")
    meeting_date = param.CalendarDate(default=None, doc="Date of the meeting.")
    agenda = param.DataFrame(default=None, allow_None=True, doc="meeting_agenda rows.")
    headers = param.DataFrame(default=None, allow_None=True, doc="One row per supervisee.")
    courses = param.Dict(default={}, doc="Per agenda episode, its sparkline (episode_courses).")
    previous = param.CalendarDate(default=None, allow_None=True, doc="The last meeting before this one.")
    since = param.Dict(default=None, allow_None=True, doc="since_last_meeting frames (None: no earlier one).")
    store_problem = param.String(default="", doc="Why the marks store cannot be used, if it cannot.")

    def __init__(self, **params):
        super().__init__(**params)
        if self.store is None:
            self.store = MarkStore.beside(self.service.db.path)
        self.metrics = service_metrics(self.service).for_scope(self.service)
        if self.meeting_date is None:
            self.meeting_date = self.metrics.as_of
        sups = supervisors(self.service)
        self.param.supervisor.objects = list(sups)
        if self.supervisor not in sups:
            self.supervisor = sups[0] if sups else None
        else:
            self._update_supervisees()

    @param.depends("supervisor", watch=True)
    def _supervisor_chosen(self):
        self._hand_over(self._update_supervisees)

    @param.depends("supervisee", "meeting_date", watch=True)
    def _meeting_chosen(self):
        self._hand_over(self.refresh)

    def _update_supervisees(self):
        team = team_clinicians(self.service, self.supervisor) if self.supervisor else []
        self.param.supervisee.objects = [ALL, *team]
        if self.supervisee not in team:
            with param.parameterized.discard_events(self):
                self.supervisee = ALL
        self.refresh()

    def refresh(self):
        from alliance.agenda import meeting_board

        if not self.supervisor:
            with param.parameterized.batch_call_watchers(self):
                self.headers, self.courses, self.previous, self.since = pd.DataFrame(), {}, None, None
                self.agenda = pd.DataFrame()
            return
        team = team_clinicians(self.service, self.supervisor)
        ids = Service(self.service.db, self.service.scope.restrict(*team)).scoped_episodes()["episode_id"]
        try:
            marks = self.store.marks_for(ids.tolist())
            problem = ""
        except (sqlite3.Error, OSError) as exc:  # e.g. a read-only folder: the agenda still works
            marks = None
            problem = f"Discussed-marks cannot be read or written at {self.store.path}: {exc}"
        clinician = None if self.supervisee == ALL else self.supervisee
        shown = self.service.scope.restrict(*(c for c in team if clinician is None or c == clinician))
        store = DataStore(db=self.service.db, scope=self.service.scope)
        board = meeting_board(
            self.metrics,
            self.supervisor,
            self.meeting_date,
            marks,
            clinician_id=clinician,
            # What a day's agenda rests on and the team's metrics from the process's cache (per data version,
            # scope and day): another visit, or refreshing after a mark, only re-ranks.
            day_of=lambda _scoped, day: store.agenda_day(shown, day),
            scoped=store.metrics(shown),
        )
        # One batch: the page redraws once, with the agenda last.
        with param.parameterized.batch_call_watchers(self):
            self.store_problem = problem
            self.headers = board.headers
            self.courses = board.courses
            self.previous = board.previous
            self.since = board.since
            self.agenda = board.agenda

    def mark(self, episode_id: str, note: str = "") -> int:
        """Write a discussed-mark for this meeting and refresh the agenda (MarkError for a bad note). The item
        keeps its place: marks of this meeting reorder nothing until the next one."""
        mark_id = self.store.mark_discussed(episode_id, self.supervisor, self.meeting_date, note)
        self.refresh()
        return mark_id

    def undo(self, episode_id: str) -> bool:
        """Undo this meeting's discussed-mark(s) of an episode (a click by mistake) and refresh."""
        done = False
        marks = self.store.marks_for([episode_id])
        day = pd.Timestamp(self.meeting_date)
        mine = marks[(marks["meeting_date"] == day) & (marks["supervisor_id"] == self.supervisor)]
        for m in mine.itertuples():
            done = self.store.undo(int(m.mark_id)) or done
        self.refresh()
        return done

    def follow_up(self, episode_id: str, followup: str) -> bool:
        """Record whether last time's action of an episode was done ("done" / "not done" / "" to clear)."""
        row = self.agenda[self.agenda["episode_id"] == episode_id] if self.agenda is not None else None
        if row is None or row.empty or pd.isna(row["last_mark_id"].iloc[0]):
            return False
        done = self.store.set_followup(int(row["last_mark_id"].iloc[0]), followup)
        self.refresh()
        return done
