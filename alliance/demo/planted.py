"""The planted truth: planted_events rows for the planted clinicians, outcome events and ruptures."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alliance.demo.alliance_ratings import Ruptures
from alliance.demo.episodes import RUPTURE_REPAIRED, RUPTURE_UNREPAIRED, EpisodePlan
from alliance.demo.items import InstrumentRatings
from alliance.demo.outcome import DETERIORATION, SUDDEN_GAIN, SUDDEN_LOSS, OutcomeEvents, OutcomeTrack
from alliance.demo.service import Service
from alliance.demo.settings import (
    INSTRUMENT_ORDER,
    LOW_ALLIANCE_DEFICIT,
    LOW_ALLIANCE_RUPTURE_FACTOR,
    OUTCOME_MODELS,
    PLANNED_SESSIONS_MEDIAN,
    SLOPE_PLANTED_BETTER,
    SLOPE_PLANTED_WORSE,
)


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
