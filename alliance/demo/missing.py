"""Demo stage 'missing ratings': which ratings go missing (about 4 %, never near a planted event)."""

from __future__ import annotations

import numpy as np

from alliance.demo.alliance_ratings import Ruptures
from alliance.demo.episodes import RUPTURE_NONE, EpisodePlan, Sessions, _within_episode_index
from alliance.demo.outcome import DETERIORATION, SUDDEN_GAIN, SUDDEN_LOSS, OutcomeEvents
from alliance.demo.settings import (
    ALLIANCE_MODELS,
    EVENT_GUARD_SESSIONS,
    MISSING_ONE_INSTRUMENT_SHARE,
    MISSING_SESSION_SHARE,
    RUPTURE_BASELINE_RATINGS,
)


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
