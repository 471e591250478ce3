"""Demo stage 'alliance': SRS and WAI-SR trajectories, with the planted ruptures applied."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alliance.demo.episodes import (
    RUPTURE_NONE,
    RUPTURE_REPAIRED,
    EpisodePlan,
    Sessions,
    _rupture_is_observed,
    _within_episode_index,
)
from alliance.demo.items import InstrumentRatings, _decimals, _items_from_total, _total
from alliance.demo.service import Service
from alliance.demo.settings import (
    ALLIANCE_MODELS,
    ALLIANCE_OUTCOME_LATENT_R,
    RUPTURE_BASELINE_RATINGS,
    SRS_DEFICIT_LOG_SD,
    SRS_DEFICIT_MEDIAN,
    WAI_DEFICIT_BASE,
    WAI_DEFICIT_SCALE,
)
from alliance.registry import Registry


# ---------------------------------------------------------------------------------------------------------
# Alliance trajectories and ruptures
# ---------------------------------------------------------------------------------------------------------
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
