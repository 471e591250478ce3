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

The generator lives in one module per stage, in the order it runs them: ``settings`` (the named figures and
their sources), ``service`` (teams and clinicians), ``episodes`` (episode plans, planned ruptures, sessions,
clients), ``outcome`` (outcome trajectories and planted outcome events), ``alliance_ratings`` (alliance
trajectories and ruptures), ``items`` (items and totals of the stored ratings), ``missing`` (missing
ratings), ``planted`` (the planted_events truth table), ``frames`` (the table frames), ``pipeline``
(``generate``, the stages in order) and ``write`` (``write_demo``).
"""

from alliance.demo.pipeline import STAGES, generate
from alliance.demo.settings import (
    EVENT_SPACING,
    INSTRUMENT_ORDER,
    MIN_CLINICIANS,
    PLANNED_SESSIONS_RANGE,
    START_WINDOW_DAYS,
    TABLES,
    shipped_registry,
)
from alliance.demo.write import write_demo

__all__ = [
    "EVENT_SPACING",
    "INSTRUMENT_ORDER",
    "MIN_CLINICIANS",
    "PLANNED_SESSIONS_RANGE",
    "STAGES",
    "START_WINDOW_DAYS",
    "TABLES",
    "generate",
    "shipped_registry",
    "write_demo",
]
