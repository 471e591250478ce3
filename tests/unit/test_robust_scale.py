"""The service scale of alliance change for the rupture rule (docs/methods.md §7) is robust to ruptures.

The plain SD of session-to-session change counts the ruptures themselves: the more episodes hold one, the
larger the SD, the higher the bar, and the fewer ruptures are found — a service with many ruptures becomes
blind to them. :func:`service_change_scale` leaves out the changes that belong to ruptures (found by the
strict rule itself, iterated) and the pairs of ratings both at the scale's top. Here it is checked by hand on
a small case and, on :func:`alliance_series` below, at two rupture prevalences (10 % and 50 % of episodes).
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from alliance.metrics.alliance_signals import (
    AllianceRules,
    alliance_events,
    service_change_scale,
    service_change_sd,
)

TOL = 1e-9
NOISE_SD = 1.0  # rating noise: the change between two ratings then has SD √2
CHANGE_SD = math.sqrt(2) * NOISE_SD


def alliance_series(n_episodes: int, prevalence: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Alliance ratings with ruptures planted in a given share of episodes (seeded, deterministic).

    Each episode has 6–15 ratings (one per session) around its own level (normal, mean 34, SD 2.5) with
    rating noise of SD 1, so the session-to-session change has SD √2 ≈ 1.41 without ruptures. In
    ``prevalence`` of the episodes a rupture is planted at a rating from the 4th to the second-to-last: the
    ratings drop by 2.5–3 SDs of change (3.5–4.2 points) — ruptures a strict rule (k = 2) should find — for 1
    or 2 ratings (70 %, repaired) or to the end (30 %). Ratings are rounded to 0.1 and not clipped.
    Returns (ratings: episode_id, session_number, score; planted: episode_id, session_number).
    """
    rng = np.random.default_rng(seed)
    length = rng.integers(6, 16, n_episodes)
    level = rng.normal(34, 2.5, n_episodes)
    ruptured = rng.random(n_episodes) < prevalence
    at = rng.integers(3, length - 1)  # 0-based rating index of the drop
    drop = rng.uniform(2.5, 3.0, n_episodes) * CHANGE_SD
    lasting = np.where(rng.random(n_episodes) < 0.7, rng.integers(1, 3, n_episodes), 99)
    episode = np.repeat(np.arange(n_episodes), length)
    index = np.arange(episode.size) - np.repeat(np.cumsum(length) - length, length)
    score = level[episode] + NOISE_SD * rng.standard_normal(episode.size)
    low = ruptured[episode] & (index >= at[episode]) & (index < at[episode] + lasting[episode])
    score = np.round(score - np.where(low, drop[episode], 0.0), 1)
    ids = np.char.add("E", np.char.zfill(episode.astype(str), 5))
    ratings = pd.DataFrame({"episode_id": ids, "session_number": index + 1, "score": score})
    planted = pd.DataFrame(
        {
            "episode_id": np.char.add("E", np.char.zfill(np.flatnonzero(ruptured).astype(str), 5)),
            "session_number": at[ruptured] + 1,
        }
    )
    return ratings, planted


def recall(ratings: pd.DataFrame, planted: pd.DataFrame, sd_service: float) -> float:
    found = alliance_events(ratings, sd_service=sd_service)
    found = found[found["event"] == "rupture"]
    return len(planted.merge(found, on=["episode_id", "session_number"])) / len(planted)


@pytest.fixture(scope="module")
def services() -> dict[float, tuple[pd.DataFrame, pd.DataFrame]]:
    return {p: alliance_series(3000, p, seed=11) for p in (0.10, 0.50)}


def test_threshold_is_the_same_whether_10_or_50_percent_of_episodes_hold_a_rupture(services):
    scales = {p: service_change_scale(r) for p, (r, _) in services.items()}
    robust = {p: s.sd for p, s in scales.items()}
    plain = {p: s.sd_all for p, s in scales.items()}
    print(
        f"service SD of change, 10 % / 50 % of episodes with a rupture: plain {plain[0.1]:.3f} / "
        f"{plain[0.5]:.3f}, robust {robust[0.1]:.3f} / {robust[0.5]:.3f} (noise alone: {CHANGE_SD:.3f}); "
        f"1.4826 × MAD {scales[0.1].mad_sd:.3f} / {scales[0.5].mad_sd:.3f}"
    )
    # The rupture threshold is baseline − k · max(sd_client, SD): the same within 5 % at both prevalences …
    assert robust[0.5] / robust[0.1] == pytest.approx(1, abs=0.05)
    # … and close to the noise alone, where the plain SD drifts up with the ruptures (the issue: 1.85 vs 1.41).
    for p in robust:
        assert robust[p] == pytest.approx(CHANGE_SD, rel=0.05)
    assert plain[0.5] / plain[0.1] > 1.10
    assert plain[0.5] > 1.2 * CHANGE_SD
    for s in scales.values():  # one or two iterations are rarely enough; it stops at a fixed point
        assert 2 <= s.iterations < 50 and s.n + s.n_in_ruptures + s.n_at_limit == s.n_all


def test_ruptures_are_found_as_often_in_a_service_with_many_of_them(services):
    found = {}
    for p, (ratings, planted) in services.items():
        scale = service_change_scale(ratings)
        found[p] = (recall(ratings, planted, scale.sd), recall(ratings, planted, scale.sd_all))
    print(
        "recall of 2.5–3 SD ruptures (k = 2), 10 % / 50 % of episodes: "
        f"robust {found[0.1][0]:.2f} / {found[0.5][0]:.2f}, plain {found[0.1][1]:.2f} / {found[0.5][1]:.2f}"
    )
    robust_10, robust_50 = found[0.1][0], found[0.5][0]
    plain_50 = found[0.5][1]
    assert robust_50 >= robust_10 - 0.05  # not blinded by its own ruptures
    assert robust_50 >= 0.75
    assert plain_50 <= robust_50 - 0.15  # the plain SD misses many more of them


def test_hand_calculation():
    """Two episodes and one at the ceiling; scale SRS 0–40, strict screening rule (k = 2).

    A: 36, 37, 36, 37, 28, 36, 37 → changes +1, −1, +1, −9, +8, +1.
    B: 35, 36, 35, 36, 35        → changes +1, −1, +1, −1.
    C: 40, 40, 40, 39            → changes 0, 0 (both ratings at the top: left out), −1.
    Start: the plain SD of the 11 usable changes 1, −1, 1, −9, 8, 1, 1, −1, 1, −1, −1: sum 0, mean 0; squares
    1+1+1+81+64+1+1+1+1+1+1 = 154; / 10 → SD √15.4 = 3.924.
    A's 5th rating (28): baseline (36+37+36+37)/4 = 36.5, client SD 0.577 → SD_ref 3.924; threshold
    36.5 − 7.849 = 28.65; 28 ≤ 28.65: a rupture, repaired at the next rating (36 ≥ 36.5 − 3.924). The change
    into it (−9) and into its repair rating (+8) are left out: 1, −1, 1, 1, 1, −1, 1, −1, −1: sum 1, mean 1/9;
    squares of deviations: 5 × (8/9)² + 4 × (10/9)² = 320/81 + 400/81 = 720/81; / 8 → SD √(10/9) = 1.054.
    Second pass with SD 1.054: A's 28 is still a rupture (threshold 34.39); no other rating is (the lowest
    others — B's 35s after a baseline of 35.5, A's 36s after 36.5 — stay above their thresholds 33.39 and
    34.39; C's 39 after a baseline of 40 and client SD 0 has threshold 37.89). The same changes are left out:
    a fixed point at √(10/9).
    """
    ratings = pd.concat(
        [
            pd.DataFrame(
                {"episode_id": "A", "session_number": range(1, 8), "score": [36, 37, 36, 37, 28, 36, 37]}
            ),
            pd.DataFrame({"episode_id": "B", "session_number": range(1, 6), "score": [35, 36, 35, 36, 35]}),
            pd.DataFrame({"episode_id": "C", "session_number": range(1, 5), "score": [40, 40, 40, 39]}),
        ]
    ).astype({"score": float})
    scale = service_change_scale(ratings, min_score=0, max_score=40)
    assert scale.sd == pytest.approx(math.sqrt(10 / 9), abs=TOL)
    assert (scale.n, scale.n_in_ruptures, scale.n_at_limit, scale.n_all) == (9, 2, 2, 13)
    assert scale.iterations == 2
    assert scale.sd_all == pytest.approx(service_change_sd(ratings), abs=TOL)
    changes = [1, -1, 1, -9, 8, 1, 1, -1, 1, -1, 0, 0, -1]
    assert scale.sd_all == pytest.approx(statistics.stdev(changes), abs=TOL)
    # Without the scale's limits, C's two zeros count as changes: 11 left, the same rupture left out.
    unbounded = service_change_scale(ratings)
    kept = [1, -1, 1, 1, 1, -1, 1, -1, 0, 0, -1]
    assert unbounded.sd == pytest.approx(statistics.stdev(kept), abs=TOL)
    assert unbounded.n_at_limit == 0


def test_order_gaps_and_too_little_data():
    ratings, _ = alliance_series(200, 0.3, seed=3)
    shuffled = ratings.sample(frac=1, random_state=1)
    assert service_change_scale(shuffled).sd == service_change_scale(ratings).sd
    # A missing rating is a gap, bridged as for the plain SD: NaN rows change nothing.
    with_gaps = pd.concat(
        [ratings, ratings.head(20).assign(session_number=lambda d: d["session_number"] + 100, score=np.nan)]
    )
    assert service_change_scale(with_gaps).sd == service_change_scale(ratings).sd
    one = pd.DataFrame({"episode_id": "A", "session_number": [1, 2], "score": [30.0, 32.0]})
    assert math.isnan(service_change_scale(one).sd)


def test_the_rule_in_force_names_the_scale(services):
    ratings, _ = services[0.5]
    scale = service_change_scale(ratings)
    found = alliance_events(ratings, sd_service=scale.sd)
    rule = str(found.loc[found["event"] == "rupture", "rule"].iloc[0])
    assert f"the service SD of session-to-session change outside ruptures ({scale.sd:.2f})" in rule
    plain = alliance_events(ratings, sd_service=scale.sd_all, scale="plain")
    rule = str(plain.loc[plain["event"] == "rupture", "rule"].iloc[0])
    assert "every change, ruptures included" in rule and f"({scale.sd_all:.2f})" in rule
    assert AllianceRules().describe("rupture", sd_service=1.0).count("outside ruptures") == 1
    with pytest.raises(ValueError, match="scale"):
        AllianceRules().describe("rupture", scale="mad")
