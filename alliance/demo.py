"""A synthetic demo service: teams, clinicians, clients, episodes, sessions and ratings, with planted truth.

The demo looks like a real outpatient service (figures from docs/methods.md §12) and carries known events —
sudden gains and losses, steady deterioration, alliance ruptures with and without repair, and clinicians who
are better, worse or lower in alliance — recorded in ``planted_events`` so tests can measure how well the
detectors find them. No page reads that table.

Everything is drawn from one ``numpy.random.default_rng(seed)`` and is fully vectorised over a long array of
sessions (episode-level parameters are repeated per session), so 200,000 episodes take seconds to generate.
Dates are offsets in days from ``as_of``: the same seed gives the same service on any day, only shifted.

How the service is built (numbers are ours unless a source is named):

* Clinicians: about one per 50 episodes (at least 4) in teams of about 8; each team's supervisor is one of its
  clinicians and carries a lighter caseload. About 75 % use ORS + SRS every session; the rest use PHQ-9 and
  GAD-7 every session with WAI-SR every second session (sessions 1, 3, 5, …).
* Episodes start over the 18 months before ``as_of``; sessions are roughly weekly with jitter and occasional
  longer gaps. A planned course has 6–20 sessions (median about 9); about 20 % of episodes drop out, mostly
  after 1–5 sessions, some with a discharge record and some without (closed by 60 days of inactivity,
  docs/methods.md §9); a few are transferred. A course that would run past ``as_of`` is open and truncated
  there.
* Outcome: intake drawn around the instrument's typical intake; improvement follows a log(session) curve
  with a client-level random slope that grows with intake severity, a random clinician effect (therapist
  effects about 5 % of outcome variance, Baldwin & Imel 2013) and session noise.
* Alliance: a client-level alliance deficit (lognormal: most SRS ratings 34–40, a ceiling at 40 and a long low
  tail) correlated with the client's improvement propensity (alliance–outcome r about .28, Flückiger et al.
  2018), rising slightly over sessions.
* Missing ratings: about 4 % of ratings, never within three sessions of a planted event.

Planted ``magnitude`` is measured on the stored scores: sudden gains in improvement points (positive), sudden
losses and deterioration in improvement points (negative, as the R package suddengains reports losses),
ruptures as the drop below the mean of up to five earlier alliance ratings (positive).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from alliance import config
from alliance.registry import Registry, load_registry
from alliance.schema import create_schema
from alliance.store import write_store

# --- The service -------------------------------------------------------------------------------------------
EPISODES_PER_CLINICIAN = 50
MIN_CLINICIANS = 4
CLINICIANS_PER_TEAM = 8
TEAM_NAMES = ("North", "South", "East", "West", "Central", "Riverside", "Harbour", "Hillside")
#: Share of clinicians who use PHQ-9 + GAD-7 (+ WAI-SR) instead of ORS + SRS.
PHQ_CLINICIAN_SHARE = 0.25
#: Populations of ORS clinicians' clients; PHQ-9 / GAD-7 are adult measures here.
POPULATIONS = ("adult", "adolescent", "child")
ORS_POPULATION_SHARES = (0.80, 0.12, 0.08)
#: A supervisor carries a few clients only.
SUPERVISOR_CASELOAD = 0.25
#: Episodes at or above this size get a progress bar by default.
PROGRESS_THRESHOLD = 20_000

# --- Episodes and sessions -----------------------------------------------------------------------------
START_WINDOW_DAYS = 548  # 18 months
#: docs/methods.md §9: no session for 60 days closes an episode without a discharge record.
INACTIVITY_DAYS = 60
PLANNED_SESSIONS_MEDIAN = 9
PLANNED_SESSIONS_RANGE = (6, 20)
#: Dropout drawn at planning; unrepaired ruptures add about one point more (about 20 % overall, Swift &
#: Greenberg 2012, docs/methods.md §9).
DROPOUT_SHARE = 0.24
TRANSFER_SHARE = 0.02
#: Most dropouts leave after 1–5 sessions; these are the weights of 1, 2, 3, 4 and 5 sessions.
EARLY_DROPOUT_WEIGHTS = (0.22, 0.28, 0.22, 0.16, 0.12)
EARLY_DROPOUT_SHARE = 0.75
#: Dropouts without any discharge record (the metrics close them after 60 days without a session).
UNRECORDED_DROPOUT_SHARE = 0.25
SECOND_EPISODE_SHARE = 0.10  # of clients

# --- Missing ratings -------------------------------------------------------------------------------------
MISSING_SESSION_SHARE = 0.035  # no rating at all at the session
MISSING_ONE_INSTRUMENT_SHARE = 0.01  # one of the session's instruments missing
#: Sessions this close to a planted event are never missing.
EVENT_GUARD_SESSIONS = 3


@dataclass(frozen=True)
class OutcomeModel:
    """How one outcome instrument behaves in the demo (intake figures from docs/methods.md §3 and §12)."""

    code: str
    intake_mean: dict[str, float]  # by population
    intake_sd: float  # observed SD at intake, session noise included
    noise_sd: float  # session-to-session noise
    sudden_shift: tuple[float, float]  # planted sudden gain or loss, points (≥ 1.6 × reliable change)
    deterioration: tuple[float, float]  # planted steady worsening over the episode, points


OUTCOME_MODELS = {
    # ORS adult intake about 19 (SD about 7), docs/methods.md §12; adolescent and child clients start nearer
    # their higher cut-offs (28, 32). Reliable change 5, so sudden shifts of 8–12 points.
    "ORS": OutcomeModel(
        "ORS", {"adult": 19.0, "adolescent": 23.0, "child": 26.0}, 7.0, 2.7, (8.0, 12.0), (8.0, 12.0)
    ),
    # PHQ-9 intake about 15 (SD 5); reliable change 6 → at least 9.6 points.
    "PHQ-9": OutcomeModel("PHQ-9", {"adult": 15.0}, 5.0, 2.0, (10.0, 12.0), (8.0, 11.0)),
    # GAD-7 intake about 13 (SD 4); reliable change 4 → at least 6.4 points.
    "GAD-7": OutcomeModel("GAD-7", {"adult": 13.0}, 4.0, 1.7, (7.0, 9.0), (5.5, 8.0)),
}
#: Mean improvement slope per log(session), in intake SDs: about 1 SD of change by session 9.
SLOPE_MEAN = 0.50
#: More severe clients improve more (in intake SDs per log-session, per SD of intake severity).
SLOPE_SEVERITY = 0.10
#: Client-level random slope SD (intake SDs per log-session).
SLOPE_CLIENT_SD = 0.30
#: Clinician random slope SD: a therapist ICC of about 3 % on raw improvement across a large service; with the
#: planted clinicians below, about 7–12 % in the default 30-clinician demo (Baldwin & Imel 2013: about 5 %).
SLOPE_CLINICIAN_SD = 0.11
#: Planted better / worse clinicians: realised differences of about +0.7 / −0.6 SD of improvement, outside
#: 95 % funnel limits with about 40 closed episodes (z about 3–6). The better ones get a larger slope shift
#: because the ORS ceiling (40) absorbs part of their extra improvement.
SLOPE_PLANTED_BETTER = 0.55
SLOPE_PLANTED_WORSE = -0.38
#: Correlation of GAD-7 and PHQ-9 intake and of their improvement propensities.
PHQ_GAD_CORRELATION = 0.6
#: Noise is damped to this fraction around planted outcome events, so Tang & DeRubeis criterion 3 holds.
EVENT_NOISE_DAMPING = 0.25
SUDDEN_GAIN_SHARE = 0.12  # of outcome episodes with ≥ 7 sessions
SUDDEN_LOSS_SHARE = 0.03
#: Of all episodes; with natural deterioration and sudden losses 5–10 % end reliably worse (Lambert 2013).
DETERIORATION_SHARE = 0.05
#: Sessions a planted outcome event keeps from a rupture in the same episode.
EVENT_SPACING = 4


@dataclass(frozen=True)
class AllianceModel:
    """How one alliance instrument behaves in the demo."""

    code: str
    every: int  # rated every session (1) or every second session (2)
    item_sd: float  # spread of items around total / n_items
    noise_sd: tuple[float, float]  # client-level session noise SD, drawn uniformly in this range
    rise: float  # points per log(session): alliance rises slightly over an episode
    rupture_drop: tuple[float, float]  # planted drop below the earlier ratings' mean
    high_baseline_deficit: tuple[float, float]  # distance from the maximum of a stable high baseline


ALLIANCE_MODELS = {
    "SRS": AllianceModel("SRS", 1, 0.35, (0.7, 1.4), 0.5, (6.0, 12.0), (0.3, 2.5)),
    "WAI-SR": AllianceModel("WAI-SR", 2, 0.45, (1.2, 2.4), 1.0, (10.0, 18.0), (3.0, 8.0)),
}
#: SRS deficit below 40 is lognormal with this median and log-SD: most ratings 34–40, a long low tail.
SRS_DEFICIT_MEDIAN = 2.0
SRS_DEFICIT_LOG_SD = 0.75
#: WAI-SR deficit below 60 = WAI_DEFICIT_BASE + WAI_DEFICIT_SCALE × SRS deficit: totals mostly 40–58.
WAI_DEFICIT_BASE = 5.5
WAI_DEFICIT_SCALE = 2.0
#: Correlation of the alliance latent with the improvement propensity; gives r ≈ .28 between mean alliance
#: and improvement (Flückiger et al. 2018).
ALLIANCE_OUTCOME_LATENT_R = 0.92
CLINICIAN_ALLIANCE_SD = 0.6  # natural spread of clinicians' mean SRS
#: Planted low-alliance clinicians: 4 points more deficit, about 3–4 points lower mean SRS once the ceiling
#: at 40 has absorbed part of it.
LOW_ALLIANCE_DEFICIT = 4.0
LOW_ALLIANCE_RUPTURE_FACTOR = 2.5  # ... and this many times the ruptures
#: Of episodes with ≥ 6 alliance ratings, before the low-alliance clinicians' extra ruptures (about 9 % and
#: 5 % overall then).
RUPTURE_REPAIRED_SHARE = 0.08
RUPTURE_UNREPAIRED_SHARE = 0.04
STABLE_BASELINE_SHARE = 0.6  # ruptures after a stable high baseline
#: Unrepaired ruptures end the episode early (dropout) this often: they predict dropout (Eubanks et al. 2018).
RUPTURE_DROPOUT_SHARE = 0.5
MIN_ALLIANCE_RATINGS_FOR_RUPTURE = 6
RUPTURE_BASELINE_RATINGS = 5  # docs/methods.md §7: baseline = mean of at most the last five earlier ratings

INSTRUMENT_ORDER = ("ORS", "SRS", "PHQ-9", "GAD-7", "WAI-SR")
TABLES = ("team", "clinician", "client", "episode", "session", "rating", "rating_item", "planted_events")


def shipped_registry() -> Registry:
    """The registry shipped with Alliance (user files in $ALLIANCE_INSTRUMENTS do not change the demo)."""
    return load_registry([config.DEFAULT_REGISTRY])


# ---------------------------------------------------------------------------------------------------------
# Service: teams and clinicians
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Service:
    """Teams and clinicians, with each clinician's instruments, caseload weight and planted role."""

    team_of: np.ndarray  # team index per clinician
    supervisor: np.ndarray  # clinician index per team
    uses_phq: np.ndarray  # bool per clinician: PHQ-9 + GAD-7 + WAI-SR instead of ORS + SRS
    caseload: np.ndarray  # relative caseload weight
    slope_effect: np.ndarray  # clinician effect on the improvement slope (intake SDs per log-session)
    alliance_deficit: np.ndarray  # clinician effect on the alliance deficit (SRS points)
    better: np.ndarray  # clinician indices planted as better
    worse: np.ndarray
    low_alliance: np.ndarray

    @property
    def n_clinicians(self) -> int:
        return len(self.team_of)


def _build_service(rng: np.random.Generator, n_episodes: int) -> Service:
    n_clin = max(MIN_CLINICIANS, round(n_episodes / EPISODES_PER_CLINICIAN))
    n_teams = max(1, round(n_clin / CLINICIANS_PER_TEAM))
    team_of = (np.arange(n_clin) * n_teams) // n_clin  # contiguous, near-equal teams
    team_start = np.searchsorted(team_of, np.arange(n_teams))
    supervisor = team_start + rng.integers(0, np.bincount(team_of, minlength=n_teams))

    uses_phq = np.zeros(n_clin, bool)
    uses_phq[rng.permutation(n_clin)[: round(PHQ_CLINICIAN_SHARE * n_clin)]] = True
    caseload = rng.gamma(8.0, 1 / 8.0, n_clin)
    caseload[supervisor] = SUPERVISOR_CASELOAD

    # Planted clinicians use ORS + SRS (the largest peer group, and SRS is needed for the alliance plant) and
    # carry an ordinary caseload, so a comparison sees about 50 episodes each.
    is_supervisor = np.zeros(n_clin, bool)
    is_supervisor[supervisor] = True
    candidates = rng.permutation(np.flatnonzero(~uses_phq & ~is_supervisor))
    better, worse, low_alliance = candidates[0:2], candidates[2:4], candidates[4:6]
    planted = candidates[:6]
    caseload[planted] = 1.0

    slope_effect = rng.normal(0.0, SLOPE_CLINICIAN_SD, n_clin)
    slope_effect[planted] = 0.0
    slope_effect[better] = SLOPE_PLANTED_BETTER
    slope_effect[worse] = SLOPE_PLANTED_WORSE
    alliance_deficit = rng.normal(0.0, CLINICIAN_ALLIANCE_SD, n_clin)
    alliance_deficit[low_alliance] = LOW_ALLIANCE_DEFICIT
    return Service(
        team_of, supervisor, uses_phq, caseload, slope_effect, alliance_deficit, better, worse, low_alliance
    )


# ---------------------------------------------------------------------------------------------------------
# Episodes: who, when, how long, how it ends, and planned ruptures
# ---------------------------------------------------------------------------------------------------------
END_PLANNED, END_DROPOUT, END_TRANSFERRED = 0, 1, 2
RUPTURE_NONE, RUPTURE_REPAIRED, RUPTURE_UNREPAIRED = 0, 1, 2


@dataclass
class EpisodePlan:
    """Episode-level parameters. Session numbers are 1-based; days are relative to as_of (0 = as_of)."""

    clinician: np.ndarray
    uses_phq: np.ndarray
    population: np.ndarray  # index into POPULATIONS
    start_day: np.ndarray  # ≤ 0
    course: np.ndarray  # planned number of sessions (after dropout or transfer)
    end_kind: np.ndarray  # END_*
    recorded: np.ndarray  # a discharge record is written when the episode closes
    end_lag: np.ndarray  # days from the last session to the discharge record
    rupture: np.ndarray  # RUPTURE_*
    rupture_session: np.ndarray
    repair_lag: np.ndarray  # alliance ratings until repair (1 or 2)
    stable_baseline: np.ndarray  # bool: rupture after a stable high baseline
    rupture_drop: np.ndarray  # planted drop in points
    # Filled in by _schedule_sessions:
    n_sessions: np.ndarray | None = None  # sessions up to as_of
    first_row: np.ndarray | None = None  # index of session 1 in the long session arrays
    is_open: np.ndarray | None = None
    end_day: np.ndarray | None = None  # day of the discharge record, or a huge value when none

    @property
    def alliance_every(self) -> np.ndarray:
        """1 where the alliance measure (SRS) is rated every session, 2 where WAI-SR every second one."""
        return np.where(self.uses_phq, ALLIANCE_MODELS["WAI-SR"].every, ALLIANCE_MODELS["SRS"].every)


def _plan_episodes(rng: np.random.Generator, service: Service, n_episodes: int) -> EpisodePlan:
    n = n_episodes
    clinician = rng.choice(service.n_clinicians, n, p=service.caseload / service.caseload.sum())
    uses_phq = service.uses_phq[clinician]
    population = np.where(uses_phq, 0, rng.choice(len(POPULATIONS), n, p=ORS_POPULATION_SHARES))
    start_day = -rng.integers(0, START_WINDOW_DAYS, n)

    lo, hi = PLANNED_SESSIONS_RANGE
    planned = np.clip(np.rint(np.exp(rng.normal(np.log(PLANNED_SESSIONS_MEDIAN), 0.4, n))), lo, hi)
    planned = planned.astype(np.int64)
    u = rng.random(n)
    end_kind = np.full(n, END_PLANNED)
    end_kind[u < DROPOUT_SHARE] = END_DROPOUT
    end_kind[(u >= DROPOUT_SHARE) & (u < DROPOUT_SHARE + TRANSFER_SHARE)] = END_TRANSFERRED

    early = 1 + rng.choice(len(EARLY_DROPOUT_WEIGHTS), n, p=EARLY_DROPOUT_WEIGHTS)
    late = rng.integers(lo, np.maximum(planned, lo + 1))  # 6 … planned − 1
    dropout_len = np.where((rng.random(n) < EARLY_DROPOUT_SHARE) | (planned <= lo), early, late)
    transfer_len = rng.integers(2, planned)
    course = np.select(
        [end_kind == END_DROPOUT, end_kind == END_TRANSFERRED], [dropout_len, transfer_len], planned
    )

    recorded = ~((end_kind == END_DROPOUT) & (rng.random(n) < UNRECORDED_DROPOUT_SHARE))
    end_lag = np.select(
        [end_kind == END_DROPOUT, end_kind == END_TRANSFERRED],
        [rng.integers(14, 43, n), rng.integers(0, 15, n)],
        0,
    )

    plan = EpisodePlan(
        clinician,
        uses_phq,
        population,
        start_day,
        course,
        end_kind,
        recorded,
        end_lag,
        *_plan_ruptures(rng, service, clinician, uses_phq, course),
    )
    # Unrepaired ruptures often end the episode soon after (McLaughlin et al. 2014): dropout 0–2 sessions on.
    leaves = (
        (plan.rupture == RUPTURE_UNREPAIRED)
        & (plan.end_kind != END_DROPOUT)
        & (rng.random(n) < RUPTURE_DROPOUT_SHARE)
    )
    leave_at = np.minimum(plan.rupture_session + rng.integers(0, 3, n), plan.course)
    plan.course = np.where(leaves, leave_at, plan.course)
    plan.end_kind = np.where(leaves, END_DROPOUT, plan.end_kind)
    plan.end_lag = np.where(leaves, rng.integers(14, 43, n), plan.end_lag)
    return plan


def _plan_ruptures(rng, service: Service, clinician, uses_phq, course):
    """Choose episodes with a repaired or unrepaired rupture and the alliance rating it happens at."""
    n = len(clinician)
    every = np.where(uses_phq, ALLIANCE_MODELS["WAI-SR"].every, ALLIANCE_MODELS["SRS"].every)
    n_ratings = (course + every - 1) // every  # alliance rated at sessions 1, 1 + every, …
    eligible = n_ratings >= MIN_ALLIANCE_RATINGS_FOR_RUPTURE
    factor = np.where(np.isin(clinician, service.low_alliance), LOW_ALLIANCE_RUPTURE_FACTOR, 1.0)
    u = rng.random(n)
    repaired = eligible & (u < RUPTURE_REPAIRED_SHARE * factor)
    unrepaired = eligible & ~repaired & (u < (RUPTURE_REPAIRED_SHARE + RUPTURE_UNREPAIRED_SHARE) * factor)
    rupture = np.select([repaired, unrepaired], [RUPTURE_REPAIRED, RUPTURE_UNREPAIRED], RUPTURE_NONE)

    repair_lag = 1 + (rng.random(n) < 0.4)
    # At least three earlier alliance ratings; room for the repair, or for three low ratings after it.
    first_idx = 4
    last_idx = np.where(repaired, n_ratings - repair_lag, n_ratings - 3)
    last_idx = np.maximum(last_idx, first_idx)
    rating_idx = rng.integers(first_idx, last_idx + 1)
    rupture_session = np.where(rupture != RUPTURE_NONE, 1 + (rating_idx - 1) * every, 0)

    stable_baseline = rng.random(n) < STABLE_BASELINE_SHARE
    # The stored drop is rounded down to the instrument's precision, so draw up to one unit below the top.
    srs, wai = ALLIANCE_MODELS["SRS"], ALLIANCE_MODELS["WAI-SR"]
    srs_drop = rng.uniform(srs.rupture_drop[0], srs.rupture_drop[1] - 10.0 ** -_decimals("SRS"), n)
    wai_drop = rng.uniform(wai.rupture_drop[0], wai.rupture_drop[1] - 10.0 ** -_decimals("WAI-SR"), n)
    rupture_drop = np.where(uses_phq, wai_drop, srs_drop)
    return rupture, rupture_session, repair_lag, stable_baseline, rupture_drop


# ---------------------------------------------------------------------------------------------------------
# Sessions: dates, truncation at as_of, open and closed episodes
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Sessions:
    """The long session arrays (one entry per session up to as_of), episodes in order."""

    episode: np.ndarray
    number: np.ndarray
    day: np.ndarray


def _within_episode_index(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Episode index and 1-based position of every row of a long array built from per-episode lengths."""
    episode = np.repeat(np.arange(len(lengths)), lengths)
    first = np.cumsum(lengths) - lengths
    return episode, np.arange(lengths.sum()) - first[episode] + 1


def _schedule_sessions(rng: np.random.Generator, plan: EpisodePlan) -> Sessions:
    episode, number = _within_episode_index(plan.course)
    # Roughly weekly with jitter; now and then a longer gap (holidays, illness, cancellations).
    gap = np.clip(7 + np.rint(rng.normal(0.0, 1.3, len(episode))), 3, 12).astype(np.int64)
    long_gap = rng.random(len(episode)) < 0.07
    gap[long_gap] += rng.integers(7, 29, long_gap.sum())
    gap[number == 1] = 0
    elapsed = np.cumsum(gap)
    first = np.cumsum(plan.course) - plan.course
    day = plan.start_day[episode] + elapsed - elapsed[first][episode]

    seen = day <= 0  # dates strictly increase within an episode, so this keeps a prefix of each episode
    sessions = Sessions(episode[seen], number[seen], day[seen])
    n_sessions = np.bincount(sessions.episode, minlength=len(plan.course))
    plan.n_sessions = n_sessions
    plan.first_row = np.cumsum(n_sessions) - n_sessions
    last_day = sessions.day[plan.first_row + n_sessions - 1]

    # Open: the course runs past as_of, or it ended so recently that the discharge is not yet recorded.
    end_day = last_day + plan.end_lag
    plan.is_open = (n_sessions < plan.course) | (plan.recorded & (end_day > 0))
    plan.end_day = np.where(plan.is_open | ~plan.recorded, np.iinfo(np.int64).max, end_day)
    return sessions


def _closed_day(plan: EpisodePlan, sessions: Sessions) -> np.ndarray:
    """The day an episode counts as closed: its discharge, or 60 days after its last session."""
    last_day = sessions.day[plan.first_row + plan.n_sessions - 1]
    closed = np.where(plan.recorded, plan.end_day, last_day + INACTIVITY_DAYS)
    return np.where(plan.is_open, np.iinfo(np.int64).max, closed)


def _assign_clients(rng: np.random.Generator, plan: EpisodePlan, sessions: Sessions) -> np.ndarray:
    """Client index per episode: about 10 % of clients come back for a later episode.

    A returning client's first episode is closed at least a week before the second starts, and both episodes
    have the same population. Pairs are matched in sorted order (earliest endings to earliest starts) within
    each population; the few pairs that do not fit stay separate clients.
    """
    n = len(plan.course)
    n_pairs = round(n * SECOND_EPISODE_SHARE / (1 + SECOND_EPISODE_SHARE))
    closed_day = _closed_day(plan, sessions)
    partner = np.full(n, -1)
    order = rng.permutation(n)
    for pop in range(len(POPULATIONS)):  # three populations, not a loop over episodes
        in_pop = order[plan.population[order] == pop]
        k = round(n_pairs * len(in_pop) / n)
        if k == 0:
            continue
        seconds = in_pop[plan.start_day[in_pop] > -START_WINDOW_DAYS + 90][:k]
        firsts = in_pop[(closed_day[in_pop] <= 0) & ~np.isin(in_pop, seconds)][: 2 * len(seconds)]
        firsts = firsts[np.argsort(closed_day[firsts], kind="stable")][: len(seconds)]
        seconds = seconds[np.argsort(plan.start_day[seconds], kind="stable")][: len(firsts)]
        fits = closed_day[firsts] + 7 <= plan.start_day[seconds]
        partner[seconds[fits]] = firsts[fits]
    # Clients numbered by their first episode; a second episode takes its partner's client.
    is_first_of_client = partner < 0
    client_of_first = np.cumsum(is_first_of_client) - 1
    return np.where(is_first_of_client, client_of_first, client_of_first[np.maximum(partner, 0)])


# ---------------------------------------------------------------------------------------------------------
# Outcome trajectories and planted outcome events
# ---------------------------------------------------------------------------------------------------------
@dataclass
class OutcomeTrack:
    """Latent outcome course of one instrument for the episodes that use it, before noise and rounding."""

    model: OutcomeModel
    higher_is_better: bool
    lo: float
    hi: float
    episodes: np.ndarray  # bool per episode
    intake: np.ndarray  # latent intake per episode
    slope: np.ndarray  # points per log(session), improvement direction

    def severity(self, score):
        """Distance from the healthy end (docs/methods.md §4)."""
        return self.hi - score if self.higher_is_better else score - self.lo

    @property
    def direction(self) -> float:
        """+1 where higher is better: improvement = direction × change."""
        return 1.0 if self.higher_is_better else -1.0


def _outcome_tracks(
    rng, registry: Registry, service: Service, plan: EpisodePlan
) -> tuple[dict[str, OutcomeTrack], np.ndarray]:
    """Latent intake and improvement slope per outcome instrument, and each client's improvement
    propensity."""
    n = len(plan.course)
    propensity = rng.standard_normal(n)  # client improvement propensity (shared by PHQ-9 and GAD-7)
    intake_z = rng.standard_normal(n)
    r = PHQ_GAD_CORRELATION
    gad_propensity = r * propensity + np.sqrt(1 - r * r) * rng.standard_normal(n)
    gad_intake_z = r * intake_z + np.sqrt(1 - r * r) * rng.standard_normal(n)
    tracks = {}
    for code, prop, z, episodes in (
        ("ORS", propensity, intake_z, ~plan.uses_phq),
        ("PHQ-9", propensity, intake_z, plan.uses_phq),
        ("GAD-7", gad_propensity, gad_intake_z, plan.uses_phq),
    ):
        model, ins = OUTCOME_MODELS[code], registry.get(code)
        mean = np.array([model.intake_mean.get(p, model.intake_mean["adult"]) for p in POPULATIONS])
        true_sd = np.sqrt(model.intake_sd**2 - model.noise_sd**2)  # observed intake SD includes the noise
        direction = 1.0 if ins.higher_is_better else -1.0
        intake = mean[plan.population] - direction * true_sd * z  # z > 0: more severe
        slope_sd_units = (
            SLOPE_MEAN + SLOPE_SEVERITY * z + SLOPE_CLIENT_SD * prop + service.slope_effect[plan.clinician]
        )
        tracks[code] = OutcomeTrack(
            model,
            ins.higher_is_better,
            ins.min_score,
            ins.max_score,
            episodes,
            intake,
            slope_sd_units * model.intake_sd,
        )
    return tracks, propensity


@dataclass
class OutcomeEvents:
    """Planted outcome events, one entry per episode (kind 0 = none)."""

    kind: np.ndarray  # 0 none, 1 sudden gain, 2 sudden loss, 3 deterioration
    session: np.ndarray  # pregain session, or last session for deterioration
    shift: dict[str, np.ndarray]  # planted points per instrument (improvement direction, positive)


NO_EVENT, SUDDEN_GAIN, SUDDEN_LOSS, DETERIORATION = 0, 1, 2, 3


def _rupture_is_observed(plan: EpisodePlan) -> np.ndarray:
    """Planned ruptures that happen up to as_of with their repair, or their low ratings, seen too."""
    every = plan.alliance_every
    later = (plan.n_sessions - plan.rupture_session) // every  # alliance ratings after the rupture
    repaired = (plan.rupture == RUPTURE_REPAIRED) & (later >= plan.repair_lag)
    unrepaired = (
        (plan.rupture == RUPTURE_UNREPAIRED)
        & (plan.rupture_session <= plan.n_sessions)
        & ((later >= 3) | ~plan.is_open)
    )
    return repaired | unrepaired


def _choose_outcome_events(rng, plan: EpisodePlan, tracks: dict[str, OutcomeTrack]) -> OutcomeEvents:
    """Pick sudden gains, sudden losses and deteriorations where the scale leaves room for them."""
    n = len(plan.course)
    last = plan.n_sessions
    rupture_at = np.where(plan.rupture != RUPTURE_NONE, plan.rupture_session, -100)

    # Pregain session n with 3 ≤ n ≤ last − 3, kept EVENT_SPACING sessions from a rupture (a few redraws).
    long_enough = last >= 7
    pregain = rng.integers(3, np.maximum(last - 2, 4))
    for _ in range(3):
        clash = np.abs(pregain - rupture_at) < EVENT_SPACING
        pregain = np.where(clash, rng.integers(3, np.maximum(last - 2, 4)), pregain)
    sudden_ok = long_enough & (np.abs(pregain - rupture_at) >= EVENT_SPACING)
    gain_ok, loss_ok = sudden_ok.copy(), sudden_ok.copy()
    det_ok = (last >= 4) & (np.abs(last - rupture_at) >= EVENT_SPACING)

    gain_shift, loss_shift, det_shift = {}, {}, {}
    for code, track in tracks.items():
        at_pregain = track.intake + track.direction * track.slope * np.log(_sudden_clock(pregain, pregain))
        sev = track.severity(at_pregain)
        span = track.hi - track.lo
        # Tang & DeRubeis criterion 2 asks for at least 25 % of the pregain severity: keep a margin for noise.
        gain = np.maximum(rng.uniform(*track.model.sudden_shift, n), 0.25 * sev + 2.0)
        # The pregain score must lie inside the scale (a clipped score hides part of the gain).
        gain_ok &= ~track.episodes | ((sev - gain >= 1.0) & (sev <= span - 1.0))
        loss = np.maximum(rng.uniform(*track.model.sudden_shift, n), 0.25 * sev + 2.0)
        loss_ok &= ~track.episodes | (
            (sev + loss <= span - 1.0) & (sev >= 1.0) & (loss <= track.model.sudden_shift[1] + 2)
        )
        worsening = rng.uniform(*track.model.deterioration, n)
        det_ok &= ~track.episodes | (track.severity(track.intake) + worsening <= span - 1.0)
        gain_shift[code], loss_shift[code], det_shift[code] = gain, loss, worsening

    # Rates are set against all episodes that could have the event, then drawn among those with room.
    def rate(share, base, ok):
        return min(1.0, share * base.sum() / max(ok.sum(), 1))

    p_gain = rate(SUDDEN_GAIN_SHARE, long_enough, gain_ok)
    p_loss = rate(SUDDEN_LOSS_SHARE, long_enough, loss_ok)
    p_det = rate(DETERIORATION_SHARE, np.ones(n, bool), det_ok)
    u = rng.random(n)
    kind = np.full(n, NO_EVENT)
    kind[gain_ok & (u < p_gain)] = SUDDEN_GAIN
    kind[loss_ok & (u >= p_gain) & (u < p_gain + p_loss)] = SUDDEN_LOSS
    kind[det_ok & (u >= p_gain + p_loss) & (u < p_gain + p_loss + p_det)] = DETERIORATION
    session = np.select([kind == DETERIORATION, kind != NO_EVENT], [last, pregain], 0)
    shift = {
        code: np.select(
            [kind == SUDDEN_GAIN, kind == SUDDEN_LOSS, kind == DETERIORATION],
            [gain_shift[code], loss_shift[code], det_shift[code]],
            0.0,
        )
        for code in tracks
    }
    return OutcomeEvents(kind, session, shift)


#: Sessions the improvement clock pauses for around a planted sudden shift (n − 2 … n + 3).
SUDDEN_PLATEAU = 5


def _sudden_clock(session: np.ndarray, pregain: np.ndarray) -> np.ndarray:
    """Session number as the improvement curve sees it around a planted sudden shift at ``pregain``.

    The log(session) trend pauses from n − 2 to n + 3, so the six ratings that Tang & DeRubeis' criterion 3
    compares are flat apart from the shift (a stable period, then the gain), and resumes afterwards.
    """
    return np.where(
        session <= pregain - 2,
        session,
        np.where(session <= pregain + 3, pregain - 2, session - SUDDEN_PLATEAU),
    )


def _outcome_scores(
    rng, plan: EpisodePlan, sessions: Sessions, track: OutcomeTrack, events: OutcomeEvents
) -> np.ndarray:
    """Latent score per session row (NaN for episodes that do not use the instrument), noise included."""
    e, s = sessions.episode, sessions.number
    kind, at, shift = events.kind[e], events.session[e], events.shift[track.model.code][e]
    sudden = (kind == SUDDEN_GAIN) | (kind == SUDDEN_LOSS)
    clock = np.where(sudden, _sudden_clock(s, at), s)
    # An unrepaired rupture stalls improvement from then on (Eubanks, Muran & Safran 2018).
    stalled = (plan.rupture[e] == RUPTURE_UNREPAIRED) & _rupture_is_observed(plan)[e]
    rupture_clock = np.where(sudden, _sudden_clock(plan.rupture_session[e], at), plan.rupture_session[e])
    improvement = track.slope[e] * np.log(np.where(stalled, np.minimum(clock, rupture_clock), clock))

    improvement += np.where((kind == SUDDEN_GAIN) & (s > at), shift, 0.0)
    improvement -= np.where((kind == SUDDEN_LOSS) & (s > at), shift, 0.0)
    last = plan.n_sessions[e]
    steady = -shift * (s - 1) / np.maximum(last - 1, 1)  # deterioration replaces the improvement curve
    improvement = np.where(kind == DETERIORATION, steady, improvement)

    # Damped noise where a planted event must stand out: n−2 … n+3 around a sudden shift; the first and the
    # last rating of a deterioration.
    damp = sudden & (s >= at - 2) & (s <= at + 3)
    damp |= (kind == DETERIORATION) & ((s == 1) | (s == last))
    z = rng.standard_normal(len(e))
    # Damped noise is also kept within ±1.5 SD: one wild rating would break criterion 2 or 3.
    noise = track.model.noise_sd * np.where(damp, EVENT_NOISE_DAMPING * np.clip(z, -1.5, 1.5), z)
    latent = track.intake[e] + track.direction * improvement + noise
    return np.where(track.episodes[e], latent, np.nan)


#: ORS items differ more between life domains than SRS items between alliance aspects.
ORS_ITEM_SD = 1.0


def _outcome_ratings(
    rng,
    registry: Registry,
    plan: EpisodePlan,
    sessions: Sessions,
    tracks: dict[str, OutcomeTrack],
    events: OutcomeEvents,
) -> dict[str, InstrumentRatings]:
    """Stored outcome ratings: ORS totals are sums of 0–10 items read to one decimal; PHQ-9 and GAD-7 are
    integer totals (no items stored)."""
    ratings = {}
    for code, track in tracks.items():
        latent = _outcome_scores(rng, plan, sessions, track, events)
        rows = np.flatnonzero(~np.isnan(latent))
        ins = registry.get(code)
        if code == "ORS":
            items = _items_from_total(
                rng, latent[rows], ins.n_items, ORS_ITEM_SD, ins.item_min, ins.item_max, _decimals(code)
            )
            ratings[code] = InstrumentRatings(code, rows, _total(items, _decimals(code)), items)
        else:
            total = np.clip(np.rint(latent[rows]), ins.min_score, ins.max_score)
            ratings[code] = InstrumentRatings(code, rows, total, None)
    return ratings


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


# ---------------------------------------------------------------------------------------------------------
# Alliance trajectories and ruptures
# ---------------------------------------------------------------------------------------------------------
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


@dataclass
class Ruptures:
    """Planted ruptures that made it into the data (one entry per episode; kind 0 = none)."""

    kind: np.ndarray
    session: np.ndarray
    repair_session: np.ndarray
    magnitude: np.ndarray
    later_low: np.ndarray  # low ratings after an unrepaired rupture


def _alliance_ratings(
    rng, registry: Registry, service: Service, plan: EpisodePlan, sessions: Sessions, propensity: np.ndarray
) -> tuple[dict[str, InstrumentRatings], Ruptures]:
    """SRS and WAI-SR ratings per session row, with planted ruptures applied."""
    n = len(plan.course)
    r = ALLIANCE_OUTCOME_LATENT_R
    alliance_z = r * propensity + np.sqrt(1 - r * r) * rng.standard_normal(n)
    srs_deficit = (
        SRS_DEFICIT_MEDIAN * np.exp(-SRS_DEFICIT_LOG_SD * alliance_z)
        + service.alliance_deficit[plan.clinician]
    )
    deficit = np.where(plan.uses_phq, WAI_DEFICIT_BASE + WAI_DEFICIT_SCALE * srs_deficit, srs_deficit)
    observed = _rupture_is_observed(plan)
    kind = np.where(observed, plan.rupture, RUPTURE_NONE)

    e, s = sessions.episode, sessions.number
    every = plan.alliance_every[e]
    rated = (s - 1) % every == 0
    ratings: dict[str, InstrumentRatings] = {}
    repair_session = np.zeros(n, np.int64)
    magnitude = np.zeros(n)
    later_low = np.zeros(n, np.int64)
    for code, episodes in (("SRS", ~plan.uses_phq), ("WAI-SR", plan.uses_phq)):
        model, ins = ALLIANCE_MODELS[code], registry.get(code)
        rows = np.flatnonzero(rated & episodes[e])
        re, rs = e[rows], s[rows]
        noise_sd = rng.uniform(*model.noise_sd, n)
        latent = (
            ins.max_score
            - deficit[re]
            + model.rise * np.log(rs)
            + rng.normal(0.0, 1.0, len(rows)) * noise_sd[re]
        )
        # A stable high baseline before the rupture: high and steady ratings up to the rupture session.
        high = ins.max_score - np.minimum(deficit, rng.uniform(*model.high_baseline_deficit, n))
        steady = (kind[re] != RUPTURE_NONE) & plan.stable_baseline[re] & (rs < plan.rupture_session[re])
        latent = np.where(steady, high[re] + rng.normal(0.0, 0.3, len(rows)), latent)
        items = _items_from_total(
            rng, latent, ins.n_items, model.item_sd, ins.item_min, ins.item_max, _decimals(code)
        )
        total = _total(items, _decimals(code))

        # Ruptures: the drop is measured from the mean of up to five earlier stored ratings
        # (docs/methods.md §7).
        row_of = np.full(len(e), -1)
        row_of[rows] = np.arange(len(rows))
        hit = np.flatnonzero((kind != RUPTURE_NONE) & episodes)
        t, step, first = plan.rupture_session[hit], model.every, plan.first_row[hit]
        earlier = t[:, None] - step * np.arange(1, RUPTURE_BASELINE_RATINGS + 1)[None, :]
        earlier_ok = earlier >= 1
        earlier_total = total[row_of[first[:, None] + np.maximum(earlier, 1) - 1]]
        baseline = np.where(earlier_ok, earlier_total, 0.0).sum(axis=1) / earlier_ok.sum(axis=1)
        drop, lag = plan.rupture_drop[hit], plan.repair_lag[hit]
        repaired = kind[hit] == RUPTURE_REPAIRED
        later = (plan.n_sessions[hit] - t) // step  # alliance ratings after the rupture

        # The rupture rating (k = 0) and the ratings after it that the plant sets: a repaired rupture is back
        # at baseline after `lag` ratings (half-way in between); an unrepaired one stays low to the end.
        h, k = _within_episode_index(1 + np.where(repaired, lag, later))
        k -= 1
        n_set, scale = len(h), 10 ** _decimals(code)
        value = np.select(
            [k == 0, repaired[h] & (k < lag[h]), repaired[h]],
            [
                np.floor((baseline[h] - drop[h]) * scale) / scale,  # at least the planted drop
                baseline[h] - drop[h] * rng.uniform(0.4, 0.6, n_set),
                baseline[h] + rng.uniform(-0.3, 1.0, n_set),
            ],
            baseline[h] - drop[h] * rng.uniform(0.7, 1.0, n_set),
        )
        set_rows = row_of[first[h] + t[h] + k * step - 1]
        new_items = _items_from_total(
            rng, value, ins.n_items, model.item_sd, ins.item_min, ins.item_max, _decimals(code)
        )
        items[set_rows] = new_items
        total[set_rows] = _total(new_items, _decimals(code))

        magnitude[hit] = baseline - total[row_of[first + t - 1]]
        repair_session[hit] = np.where(repaired, t + lag * step, 0)
        later_low[hit] = np.where(repaired, 0, later)
        ratings[code] = InstrumentRatings(code, rows, total, items)

    ruptures = Ruptures(
        kind, np.where(kind != RUPTURE_NONE, plan.rupture_session, 0), repair_session, magnitude, later_low
    )
    return ratings, ruptures


def _decimals(code: str) -> int:
    """ORS and SRS items are marked on a 10 cm line and read to one decimal; other items are integers."""
    return 1 if code in ("ORS", "SRS") else 0


# ---------------------------------------------------------------------------------------------------------
# Missing ratings
# ---------------------------------------------------------------------------------------------------------
def _guarded_sessions(plan: EpisodePlan, n_rows: int, windows) -> np.ndarray:
    """Session rows inside any (episodes, first sessions, last sessions) window: these are never missing."""
    guarded = np.zeros(n_rows, bool)
    for episode, lo, hi in windows:
        lo = np.maximum(lo, 1)
        hi = np.minimum(hi, plan.n_sessions[episode])
        keep = hi >= lo
        episode, lo, hi = episode[keep], lo[keep], hi[keep]
        w, offset = _within_episode_index(hi - lo + 1)
        guarded[plan.first_row[episode[w]] + lo[w] + offset - 2] = True
    return guarded


def _missing_ratings(
    rng, plan: EpisodePlan, sessions: Sessions, events: OutcomeEvents, ruptures: Ruptures
) -> dict[str, np.ndarray]:
    """Per instrument, a mask over session rows of missing ratings (about 4 %, never near planted events)."""
    guard = EVENT_GUARD_SESSIONS
    sudden = np.flatnonzero((events.kind == SUDDEN_GAIN) | (events.kind == SUDDEN_LOSS))
    worse = np.flatnonzero(events.kind == DETERIORATION)
    ruptured = np.flatnonzero(ruptures.kind != RUPTURE_NONE)
    step = plan.alliance_every[ruptured]
    intake = np.ones(len(worse), np.int64)
    windows = [
        (sudden, events.session[sudden] - guard, events.session[sudden] + guard),
        (worse, intake, intake),  # deterioration is judged against the intake rating
        (worse, events.session[worse] - guard, events.session[worse] + guard),
        # The rupture's baseline (up to five earlier ratings) and three ratings after it.
        (
            ruptured,
            ruptures.session[ruptured] - RUPTURE_BASELINE_RATINGS * step,
            ruptures.session[ruptured] + guard * step,
        ),
    ]
    free = ~_guarded_sessions(plan, len(sessions.episode), windows)

    e, s = sessions.episode, sessions.number
    u = rng.random(len(e))
    whole = free & (u < MISSING_SESSION_SHARE)
    one = free & (u >= MISSING_SESSION_SHARE) & (u < MISSING_SESSION_SHARE + MISSING_ONE_INSTRUMENT_SHARE)
    # At a one-instrument gap, which of the session's instruments is missing (WAI-SR only at odd sessions).
    wai_rated = plan.uses_phq[e] & ((s - 1) % ALLIANCE_MODELS["WAI-SR"].every == 0)
    slot = rng.integers(0, np.where(wai_rated, 3, 2))
    slot_of = {"ORS": 0, "SRS": 1, "PHQ-9": 0, "GAD-7": 1, "WAI-SR": 2}
    return {code: whole | (one & (slot == position)) for code, position in slot_of.items()}


# ---------------------------------------------------------------------------------------------------------
# Planted truth
# ---------------------------------------------------------------------------------------------------------
def _text(values) -> pd.Series:
    """Numbers as text, for building detail strings column-wise."""
    return pd.Series(np.asarray(values)).astype(str)


def _planted_events(
    service: Service,
    plan: EpisodePlan,
    tracks: dict[str, OutcomeTrack],
    outcome: dict[str, InstrumentRatings],
    n_rows: int,
    events: OutcomeEvents,
    ruptures: Ruptures,
) -> pd.DataFrame:
    """planted_events rows with clinician, episode and session as indices (−1 / 0 where not applicable)."""
    parts = []

    def add(event_type, clinician, episode, session, instrument, magnitude, detail):
        parts.append(
            pd.DataFrame(
                {
                    "event_type": event_type,
                    "clinician": np.asarray(clinician, np.int64),
                    "episode": np.asarray(episode, np.int64),
                    "session": np.asarray(session, np.int64),
                    "instrument": instrument,
                    "magnitude": np.asarray(magnitude, float),
                    "detail": np.asarray(detail, object),
                }
            )
        )

    # Clinicians: magnitude is the expected difference in ORS improvement by a typical ending (session 9).
    for event_type, who, slope in (
        ("clinician_better", service.better, SLOPE_PLANTED_BETTER),
        ("clinician_worse", service.worse, SLOPE_PLANTED_WORSE),
    ):
        typical = slope * OUTCOME_MODELS["ORS"].intake_sd * np.log(PLANNED_SESSIONS_MEDIAN)
        none = np.full(len(who), -1)
        add(
            event_type,
            who,
            none,
            none,
            "ORS",
            np.full(len(who), round(typical, 1)),
            np.full(
                len(who),
                f"improvement slope {slope:+.2f} intake SD per log(session): about "
                f"{typical:+.1f} ORS points by session {PLANNED_SESSIONS_MEDIAN}",
            ),
        )
    low = service.low_alliance
    add(
        "clinician_low_alliance",
        low,
        np.full(len(low), -1),
        np.full(len(low), -1),
        "SRS",
        np.full(len(low), -LOW_ALLIANCE_DEFICIT),
        np.full(
            len(low),
            f"SRS deficit {LOW_ALLIANCE_DEFICIT:g} points larger (mean SRS about 3–4 points "
            f"lower) and {LOW_ALLIANCE_RUPTURE_FACTOR:g} times the ruptures",
        ),
    )

    # Outcome events, one row per outcome instrument of the episode; magnitude as seen in the stored scores.
    names = {SUDDEN_GAIN: "sudden_gain", SUDDEN_LOSS: "sudden_loss", DETERIORATION: "deterioration"}
    for kind, event_type in names.items():
        for code, track in tracks.items():
            ep = np.flatnonzero((events.kind == kind) & track.episodes)
            at = events.session[ep]
            before, after = (np.ones_like(at), at) if kind == DETERIORATION else (at, at + 1)
            score = outcome[code].by_row(n_rows)
            first = plan.first_row[ep]
            change = track.direction * (score[first + after - 1] - score[first + before - 1])
            shift = _text(np.round(events.shift[code][ep], 1))
            if kind == DETERIORATION:
                detail = "steady worsening of " + shift + " points planted from session 1 to " + _text(at)
            else:
                detail = "planted shift of " + shift + " points after session " + _text(at)
            add(event_type, plan.clinician[ep], ep, at, code, np.round(change, 1), detail)

    for kind, event_type in (
        (RUPTURE_REPAIRED, "rupture_repaired"),
        (RUPTURE_UNREPAIRED, "rupture_unrepaired"),
    ):
        ep = np.flatnonzero(ruptures.kind == kind)
        later = ruptures.later_low[ep]
        if kind == RUPTURE_REPAIRED:
            detail = "repaired at session " + _text(ruptures.repair_session[ep])
        else:
            detail = pd.Series(
                np.select(
                    [later >= 3, later == 0],
                    [
                        "not repaired: low for the " + _text(later) + " later ratings",
                        "not repaired: the episode ended at the rupture",
                    ],
                    "not repaired: low until the episode ended " + _text(later) + " rating(s) later",
                )
            )
        detail = detail + np.where(plan.stable_baseline[ep], "; after a stable high baseline", "")
        add(
            event_type,
            plan.clinician[ep],
            ep,
            ruptures.session[ep],
            np.where(plan.uses_phq[ep], "WAI-SR", "SRS"),
            np.round(ruptures.magnitude[ep], 1),
            detail,
        )

    planted = pd.concat(parts, ignore_index=True)
    planted["rank"] = planted["instrument"].map({c: i for i, c in enumerate(INSTRUMENT_ORDER)})
    return planted.sort_values(["episode", "session", "rank"], kind="stable", ignore_index=True)


# ---------------------------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------------------------
def _codes(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """Identifiers such as 'E000001' for an array of numbers."""
    return np.char.add(prefix, np.char.zfill(np.asarray(numbers).astype(str), width)).astype(object)


def _client_codes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unique pseudonymous client codes: 'C-' and six random hex digits (e.g. 'C-3fa2b1')."""
    values = rng.choice(16**6, n, replace=False)
    hex_digits = np.frombuffer(b"0123456789abcdef", np.uint8)
    chars = np.empty((n, 8), np.uint8)
    chars[:, 0], chars[:, 1] = ord("C"), ord("-")
    chars[:, 2:] = hex_digits[(values[:, None] >> (4 * np.arange(5, -1, -1))) & 0xF]
    return chars.view("S8").ravel().astype(str).astype(object)


def _dates(as_of: dt.date, days: np.ndarray) -> np.ndarray:
    """Calendar dates for day offsets from as_of."""
    return np.datetime64(as_of, "D") + np.asarray(days).astype("timedelta64[D]")


def _team_names(n_teams: int) -> np.ndarray:
    """North, South, East, West, … and then 'Team 9', 'Team 10', … for large services."""
    numbered = np.char.add("Team ", np.arange(1, n_teams + 1).astype(str)).astype(object)
    named = np.array(TEAM_NAMES, dtype=object)[: min(n_teams, len(TEAM_NAMES))]
    return np.concatenate([named, numbered[len(named) :]])


def _rating_frames(
    sessions: Sessions,
    ratings: dict[str, InstrumentRatings],
    missing: dict[str, np.ndarray],
    episode_ids: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """rating and rating_item rows for the ratings that are not missing, in session order."""
    rows, instrument, score = [], [], []
    item_rows, item_instrument, item_no, item_score = [], [], [], []
    for code in INSTRUMENT_ORDER:
        r = ratings[code]
        keep = ~missing[code][r.rows]
        rank = INSTRUMENT_ORDER.index(code)
        rows.append(r.rows[keep])
        instrument.append(np.full(keep.sum(), rank, np.int8))
        score.append(r.total[keep])
        if r.items is not None:
            n_items = r.items.shape[1]
            item_rows.append(np.repeat(r.rows[keep], n_items))
            item_instrument.append(np.full(keep.sum() * n_items, rank, np.int8))
            item_no.append(np.tile(np.arange(1, n_items + 1, dtype=np.int32), keep.sum()))
            item_score.append(r.items[keep].ravel())
    codes = np.array(INSTRUMENT_ORDER, dtype=object)

    rows, instrument = np.concatenate(rows), np.concatenate(instrument)
    order = np.argsort(rows * len(codes) + instrument, kind="stable")
    rows, instrument = rows[order], instrument[order]
    rating = pd.DataFrame(
        {
            "episode_id": episode_ids[sessions.episode[rows]],
            "session_number": sessions.number[rows].astype(np.int32),
            "instrument": codes[instrument],
            "score": np.concatenate(score)[order],
        }
    )

    item_rows, item_instrument = np.concatenate(item_rows), np.concatenate(item_instrument)
    item_no = np.concatenate(item_no)
    order = np.argsort((item_rows * len(codes) + item_instrument) * 16 + item_no, kind="stable")
    item_rows, item_instrument = item_rows[order], item_instrument[order]
    rating_item = pd.DataFrame(
        {
            "episode_id": episode_ids[sessions.episode[item_rows]],
            "session_number": sessions.number[item_rows].astype(np.int32),
            "instrument": codes[item_instrument],
            "item_no": item_no[order],
            "score": np.concatenate(item_score)[order],
        }
    )
    return rating, rating_item


STAGES = ("service", "episodes", "sessions", "clients", "outcome", "alliance", "missing ratings", "frames")


@contextmanager
def _stage(bar, name: str):
    """Show a generation or writing stage on the progress bar while it runs."""
    bar.set_description(f"demo: {name}")
    yield
    bar.update(1)


def _generate(n_episodes: int, seed: int, as_of: dt.date, bar) -> dict[str, pd.DataFrame]:
    """generate() reporting its stages on ``bar``; every random draw comes from one seeded generator."""
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be at least 1, got {n_episodes}")
    rng = np.random.default_rng(seed)
    registry = shipped_registry()

    with _stage(bar, "service"):
        service = _build_service(rng, n_episodes)
    with _stage(bar, "episodes"):
        plan = _plan_episodes(rng, service, n_episodes)
    with _stage(bar, "sessions"):
        sessions = _schedule_sessions(rng, plan)
    with _stage(bar, "clients"):
        client_of = _assign_clients(rng, plan, sessions)
    with _stage(bar, "outcome"):
        tracks, propensity = _outcome_tracks(rng, registry, service, plan)
        events = _choose_outcome_events(rng, plan, tracks)
        outcome = _outcome_ratings(rng, registry, plan, sessions, tracks, events)
    with _stage(bar, "alliance"):
        alliance, ruptures = _alliance_ratings(rng, registry, service, plan, sessions, propensity)
    with _stage(bar, "missing ratings"):
        missing = _missing_ratings(rng, plan, sessions, events, ruptures)
    with _stage(bar, "frames"):
        return _frames(
            as_of,
            rng,
            service,
            plan,
            sessions,
            client_of,
            tracks,
            outcome,
            alliance,
            missing,
            events,
            ruptures,
        )


def _frames(
    as_of,
    rng,
    service: Service,
    plan: EpisodePlan,
    sessions: Sessions,
    client_of: np.ndarray,
    tracks,
    outcome,
    alliance,
    missing,
    events: OutcomeEvents,
    ruptures: Ruptures,
) -> dict[str, pd.DataFrame]:
    """One DataFrame per table, with identifiers, dates and the column names of data/schema.sql."""
    n_episodes = len(plan.course)
    n_clin = service.n_clinicians
    n_teams = len(service.supervisor)
    team_ids = _codes("T", np.arange(1, n_teams + 1), 1)
    clinician_ids = _codes("CL", np.arange(1, n_clin + 1), max(2, len(str(n_clin))))
    episode_ids = _codes("E", np.arange(1, n_episodes + 1), max(6, len(str(n_episodes))))
    client_ids = _client_codes(rng, client_of.max() + 1)

    closed_with_record = ~plan.is_open & plan.recorded
    end_reason = np.array(["planned", "dropout", "transferred"], dtype=object)[plan.end_kind]
    episode = pd.DataFrame(
        {
            "episode_id": episode_ids,
            "client_id": client_ids[client_of],
            "clinician_id": clinician_ids[plan.clinician],
            "population": np.array(POPULATIONS, dtype=object)[plan.population],
            "start_date": _dates(as_of, plan.start_day),
            "end_date": np.where(
                closed_with_record,
                _dates(as_of, np.where(closed_with_record, plan.end_day, 0)),
                np.datetime64("NaT"),
            ),
            "end_reason": pd.Series(np.where(closed_with_record, end_reason, None), dtype=object),
        }
    )
    session = pd.DataFrame(
        {
            "episode_id": episode_ids[sessions.episode],
            "session_number": sessions.number.astype(np.int32),
            "session_date": _dates(as_of, sessions.day),
        }
    )
    rating, rating_item = _rating_frames(sessions, {**outcome, **alliance}, missing, episode_ids)

    planted = _planted_events(service, plan, tracks, outcome, len(sessions.episode), events, ruptures)
    has_episode = planted["episode"].to_numpy() >= 0
    has_session = planted["session"].to_numpy() > 0
    planted_events = pd.DataFrame(
        {
            "event_id": np.arange(1, len(planted) + 1, dtype=np.int32),
            "event_type": planted["event_type"].to_numpy(object),
            "clinician_id": clinician_ids[planted["clinician"].to_numpy()],
            "episode_id": pd.Series(
                np.where(has_episode, episode_ids[np.maximum(planted["episode"], 0)], None), dtype=object
            ),
            "session_number": pd.Series(planted["session"].to_numpy(), dtype="Int32").where(
                has_session, pd.NA
            ),
            "instrument": planted["instrument"].to_numpy(object),
            "magnitude": planted["magnitude"].to_numpy(float),
            "detail": planted["detail"].to_numpy(object),
        }
    )
    frames = {
        "team": pd.DataFrame(
            {
                "team_id": team_ids,
                "name": _team_names(n_teams),
                "supervisor_id": clinician_ids[service.supervisor],
            }
        ),
        "clinician": pd.DataFrame({"clinician_id": clinician_ids, "team_id": team_ids[service.team_of]}),
        "client": pd.DataFrame({"client_id": client_ids}),
        "episode": episode,
        "session": session,
        "rating": rating,
        "rating_item": rating_item,
        "planted_events": planted_events,
    }
    return frames


def generate(
    n_episodes: int = 1500, seed: int = 7, as_of: dt.date | None = None, progress: bool = False
) -> dict[str, pd.DataFrame]:
    """Generate a demo service: one DataFrame per table (team, clinician, client, episode, session, rating,
    rating_item, planted_events), with the column names of data/schema.sql.

    Deterministic for (n_episodes, seed, as_of); ``as_of`` (default today) only shifts the dates, which are
    all on or before it. About 30 clinicians in 4 teams for the default 1,500 episodes, scaling with
    n_episodes (about 50 episodes per clinician, teams of about 8).
    """
    as_of = as_of or dt.date.today()
    with tqdm(total=len(STAGES), disable=not progress, unit="step") as bar:
        return _generate(n_episodes, seed, as_of, bar)


# ---------------------------------------------------------------------------------------------------------
# Writing a database file
# ---------------------------------------------------------------------------------------------------------
def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Bulk-insert a frame through DuckDB's scan of the registered DataFrame, cast to the table's types."""
    columns = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $t "
        "ORDER BY ordinal_position",
        {"t": table},
    ).fetchall()
    select = ", ".join(f'CAST("{name}" AS {kind})' for name, kind in columns)
    con.register("demo_frame", frame)
    try:
        con.execute(f"INSERT INTO {table} SELECT {select} FROM demo_frame")
    finally:
        con.unregister("demo_frame")


def write_demo(
    out: Path | str,
    n_episodes: int = 1500,
    seed: int = 7,
    as_of: dt.date | None = None,
    force: bool = False,
    progress: bool | None = None,
) -> dict[str, int]:
    """Write a demo database to ``out`` and return the row count of each demo table.

    Refuses to replace an existing file unless ``force``. The database is built in a temporary file next to
    ``out`` and renamed at the end, so a failure leaves nothing half-written. ``progress=None`` shows a
    progress bar for large runs only (20,000 episodes or more).
    """
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists; pass force=True (alliance demo --force) to replace it.")
    if progress is None:
        progress = n_episodes >= PROGRESS_THRESHOLD
    as_of = as_of or dt.date.today()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # DuckDB creates its own file; an empty one is not a database
    try:
        with tqdm(total=len(STAGES) + len(TABLES) + 1, disable=not progress, unit="step") as bar:
            frames = _generate(n_episodes, seed, as_of, bar)
            con = duckdb.connect(str(tmp))
            try:
                con.execute("SET enable_progress_bar = false")  # the demo's own bar reports progress
                create_schema(con)
                con.execute(config.DEMO_TRUTH_SQL.read_text(encoding="utf-8"))
                # The metrics judge 'no session for 60 days' against the date the data describe.
                con.execute(
                    "INSERT INTO alliance_meta VALUES ('data_as_of', $d), ('demo_seed', $s)",
                    {"d": as_of.isoformat(), "s": str(seed)},
                )
                for table in TABLES:
                    with _stage(bar, f"writing {table}"):
                        _insert(con, table, frames[table])
                counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
                with _stage(bar, "storing metrics"):
                    write_store(con, out)
            finally:
                con.close()
        if out.exists() and not force:
            raise FileExistsError(f"{out} appeared while the demo was being written; not replacing it.")
        # A stale write-ahead log next to the old file would be replayed into the new one.
        out.with_name(out.name + ".wal").unlink(missing_ok=True)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
        raise
    return counts
