"""Demo stages 'episodes', 'sessions' and 'clients': episode plans with their planned ruptures, session
dates up to as_of, open and closed episodes, and returning clients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alliance.demo.items import _decimals
from alliance.demo.service import Service
from alliance.demo.settings import (
    ALLIANCE_MODELS,
    DROPOUT_SHARE,
    EARLY_DROPOUT_SHARE,
    EARLY_DROPOUT_WEIGHTS,
    INACTIVITY_DAYS,
    LOW_ALLIANCE_RUPTURE_FACTOR,
    MIN_ALLIANCE_RATINGS_FOR_RUPTURE,
    ORS_POPULATION_SHARES,
    PLANNED_SESSIONS_MEDIAN,
    PLANNED_SESSIONS_RANGE,
    POPULATIONS,
    RUPTURE_DROPOUT_SHARE,
    RUPTURE_REPAIRED_SHARE,
    RUPTURE_UNREPAIRED_SHARE,
    SECOND_EPISODE_SHARE,
    STABLE_BASELINE_SHARE,
    START_WINDOW_DAYS,
    TRANSFER_SHARE,
    UNRECORDED_DROPOUT_SHARE,
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
