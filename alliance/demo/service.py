"""Demo stage 'service': teams and clinicians, with each clinician's instruments and planted role."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alliance.demo.settings import (
    CLINICIAN_ALLIANCE_SD,
    CLINICIANS_PER_TEAM,
    EPISODES_PER_CLINICIAN,
    LOW_ALLIANCE_DEFICIT,
    MIN_CLINICIANS,
    PHQ_CLINICIAN_SHARE,
    SLOPE_CLINICIAN_SD,
    SLOPE_PLANTED_BETTER,
    SLOPE_PLANTED_WORSE,
    SUPERVISOR_CASELOAD,
)


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
