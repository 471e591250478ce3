"""The demo's named figures, with their sources, and the registry it rates with.

Grouped as the generator uses them: the service, episodes and sessions, missing ratings, outcome instruments
and planted outcome events, alliance instruments and ruptures.
"""

from __future__ import annotations

from dataclasses import dataclass

from alliance import config
from alliance.registry import Registry, load_registry

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
