"""Demo stage 'outcome': outcome trajectories (ORS, PHQ-9, GAD-7) and the planted outcome events —
sudden gains, sudden losses and steady deterioration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alliance.demo.episodes import (
    RUPTURE_NONE,
    RUPTURE_UNREPAIRED,
    EpisodePlan,
    Sessions,
    _rupture_is_observed,
)
from alliance.demo.items import InstrumentRatings, _decimals, _items_from_total, _total
from alliance.demo.service import Service
from alliance.demo.settings import (
    DETERIORATION_SHARE,
    EVENT_NOISE_DAMPING,
    EVENT_SPACING,
    OUTCOME_MODELS,
    PHQ_GAD_CORRELATION,
    POPULATIONS,
    SLOPE_CLIENT_SD,
    SLOPE_MEAN,
    SLOPE_SEVERITY,
    SUDDEN_GAIN_SHARE,
    SUDDEN_LOSS_SHARE,
    OutcomeModel,
)
from alliance.registry import Registry


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
