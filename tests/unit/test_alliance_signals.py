"""Alliance signals (docs/methods.md §7) against hand calculations.

Every expected number is worked out by hand in the comment above its assertion, from the rules in
``alliance/metrics/alliance_events.py``: baseline(t) = mean of up to five earlier ratings,
sd_client their sample SD (ddof = 1), SD_ref = max(sd_client, sd_service), rupture when
score ≤ baseline − k · SD_ref, repair when a later rating (within 3) is ≥ baseline − 1 · SD_ref.
A plain per-episode loop written from the same rules cross-checks the vectorised code on random
data, and many episodes at once must give what one at a time gives.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from alliance.metrics import (
    ALLIANCE_EVENT_COLUMNS,
    AllianceRules,
    alliance_events,
    rupture_summary,
    service_change_sd,
)

TOL = 1e-9
SRS_CUTOFF = 36.0


def series(scores: list[float], sessions: list[int] | None = None, episode: str = "A") -> pd.DataFrame:
    """One episode in long form; sessions 1, 2, … unless given."""
    sessions = list(range(1, len(scores) + 1)) if sessions is None else sessions
    return pd.DataFrame(
        {"episode_id": episode, "session_number": sessions, "score": [float(s) for s in scores]}
    )


def events(ratings: pd.DataFrame, kind: str | None = None, **settings) -> pd.DataFrame:
    """alliance_events with sd_service 2 and the SRS cut-off unless told otherwise."""
    settings = {"sd_service": 2.0, "cutoff": SRS_CUTOFF, "instrument": "SRS"} | settings
    found = alliance_events(ratings, **settings)
    if kind is not None:
        found = found[found["event"] == kind].reset_index(drop=True)
    return found


def ruptures(ratings: pd.DataFrame, **settings) -> pd.DataFrame:
    return events(ratings, "rupture", **settings)


# --- ruptures and repair -------------------------------------------------------------------------


def test_repaired_v_shape():
    # SRS 38, 38, 39, 30, 37, sd_service 2.0.
    # Rating 3 (39): baseline (38+38)/2 = 38, client SD 0 → SD_ref 2; threshold 34; 39 > 34.
    # Rating 4 (30): baseline = (38+38+39)/3 = 38.333; deviations −1/3, −1/3, 2/3, squares sum
    #   6/9, / 2 = 1/3 → client SD = 0.57735; SD_ref = max(0.577, 2.0) = 2.0;
    #   threshold k=2: 38.333 − 4 = 34.333; 30 ≤ 34.333 → rupture.
    # Repair needs ≥ 38.333 − 1 × 2 = 36.333 → 37 at the next rating → repaired at session 5.
    found = ruptures(series([38, 38, 39, 30, 37]))
    assert len(found) == 1
    row = found.iloc[0]
    assert row["session_number"] == 4
    assert row["score"] == 30
    assert row["previous_score"] == 39
    assert row["baseline"] == pytest.approx(115 / 3, abs=TOL)
    assert row["sd_client"] == pytest.approx(math.sqrt(1 / 3), abs=TOL)
    assert row["sd_ref"] == pytest.approx(2.0, abs=TOL)
    assert row["threshold"] == pytest.approx(115 / 3 - 4, abs=TOL)
    assert row["k"] == 2.0
    assert row["repair_status"] == "repaired"
    assert row["repair_session"] == 5
    assert row["detail"] == (
        "SRS fell from a baseline of 38.3 to 30 (threshold 34.3 = baseline − 2 × SD_ref 2.00); "
        "repaired at session 5"
    )
    assert "Gumz et al. 2012" in row["rule"]


def test_unrepaired_drop_stays_low_for_the_repair_window():
    # SRS 38, 38, 38, 30, 31, 32, 33, sd_service 2.
    # Rating 4: baseline 38, client SD 0 → SD_ref 2; threshold 38 − 4 = 34; 30 ≤ 34 → rupture.
    # Repair needs ≥ 38 − 2 = 36; the next three ratings 31, 32, 33 are all below → unrepaired.
    # (Rating 5 would not fire anyway: baseline (38·3+30)/4 = 36, deviations 2, 2, 2, −6 → SD
    #  √(48/3) = 4 → threshold 36 − 8 = 28 < 31.)
    found = ruptures(series([38, 38, 38, 30, 31, 32, 33]))
    assert found["session_number"].tolist() == [4]
    assert found.loc[0, "repair_status"] == "unrepaired"
    assert pd.isna(found.loc[0, "repair_session"])
    assert found.loc[0, "detail"].endswith("not repaired within the next 3 ratings")


def test_open_when_the_episode_ends_before_the_repair_window():
    # Same drop (threshold 34, repair level 36); only one later rating (31 < 36) → open.
    found = ruptures(series([38, 38, 38, 30, 31]))
    assert found["repair_status"].tolist() == ["open"]
    assert found.loc[0, "detail"].endswith("open: not repaired in the 1 later rating so far")
    # The drop at the last rating: no later rating at all → open.
    found = ruptures(series([38, 38, 38, 30]))
    assert found["repair_status"].tolist() == ["open"]
    # A repair inside the short remainder still counts: 38 ≥ 36 → repaired, not open.
    found = ruptures(series([38, 38, 38, 30, 38]))
    assert found["repair_status"].tolist() == ["repaired"]


def test_a_drop_that_is_a_rupture_only_with_the_sensitive_k():
    # SRS 38, 38, 38, 35, sd_service 2: baseline 38, client SD 0 → SD_ref 2.
    # k = 2: threshold 38 − 4 = 34; 35 > 34 → no rupture.
    # k = 1: threshold 38 − 2 = 36; 35 ≤ 36 → rupture (open: no later rating).
    ratings = series([38, 38, 38, 35])
    assert ruptures(ratings).empty
    sensitive = ruptures(ratings, rules=AllianceRules(k=1.0))
    assert sensitive["session_number"].tolist() == [4]
    assert sensitive.loc[0, "threshold"] == pytest.approx(36.0, abs=TOL)
    assert sensitive.loc[0, "k"] == 1.0
    assert "k = 1, sensitive" in sensitive.loc[0, "rule"]


def test_score_exactly_at_the_threshold_is_a_rupture():
    # SRS 38, 38, 38, 34: threshold 38 − 2 × 2 = 34; 34 ≤ 34 (inclusive) → rupture.
    assert ruptures(series([38, 38, 38, 34]))["session_number"].tolist() == [4]
    # 34.5 > 34 → none.
    assert ruptures(series([38, 38, 38, 34.5])).empty
    # Decimal totals: baseline (38.1 + 38.2 + 38.3)/3 = 38.2, client SD 0.1 < 2 → SD_ref 2;
    # threshold 38.2 − 4 = 34.2; a score of 34.2 sits exactly on it → rupture, whatever the
    # floating-point rounding of the mean.
    assert ruptures(series([38.1, 38.2, 38.3, 34.2]))["session_number"].tolist() == [4]


def test_fewer_than_two_earlier_ratings_give_no_rupture():
    # SRS 38, 20: rating 2 has one earlier rating (< min_prior 2) → no rupture, however large
    # the drop; it is still a dip and below the cut-off.
    found = events(series([38, 20]))
    assert found["event"].tolist() == ["below_cutoff", "dip"]
    # With min_prior 3, SRS 38, 38, 30 (two earlier ratings) gives none either; with the default
    # 2 it does: baseline 38, SD_ref 2, threshold 34, 30 ≤ 34.
    assert ruptures(series([38, 38, 30]), rules=AllianceRules(min_prior=3)).empty
    assert ruptures(series([38, 38, 30]))["session_number"].tolist() == [3]


def test_baseline_uses_at_most_the_last_five_earlier_ratings():
    # SRS 20, 38, 38, 38, 38, 38, 33, sd_service 2.
    # Rating 7: the last five earlier ratings are 38 × 5 → baseline 38, client SD 0 → SD_ref 2;
    # threshold 34; 33 ≤ 34 → rupture. (With all six earlier ratings the baseline would be
    # (20 + 190)/6 = 35, SD √((225 + 5·9)/5) = 7.35, threshold 35 − 14.7 = 20.3: no rupture.)
    # Rating 3 (38): baseline (20+38)/2 = 29, SD 12.73 → threshold < 4: no rupture.
    found = ruptures(series([20, 38, 38, 38, 38, 38, 33]))
    assert found["session_number"].tolist() == [7]
    assert found.loc[0, "baseline"] == pytest.approx(38.0, abs=TOL)
    assert found.loc[0, "sd_client"] == pytest.approx(0.0, abs=TOL)
    # A window of six brings the 20 back in, and the rupture disappears.
    assert ruptures(series([20, 38, 38, 38, 38, 38, 33]), rules=AllianceRules(baseline_window=6)).empty


def test_client_sd_larger_than_service_sd_wins():
    # SRS 36, 40, 36, 40, then x; sd_service 1.
    # Rating 5: baseline (36+40+36+40)/4 = 38; deviations ±2 → SD √(16/3) = 2.3094 > 1 →
    # SD_ref 2.3094; threshold 38 − 4.6188 = 33.3812.
    # x = 33 ≤ 33.38 → rupture; x = 34 > 33.38 → none (the service SD alone would give 36).
    # Ratings 3 and 4: baseline 38 with SD 2.83 → threshold 32.3; 36 and 40 are above.
    found = ruptures(series([36, 40, 36, 40, 33]), sd_service=1.0)
    assert found["session_number"].tolist() == [5]
    assert found.loc[0, "sd_client"] == pytest.approx(math.sqrt(16 / 3), abs=TOL)
    assert found.loc[0, "sd_ref"] == pytest.approx(math.sqrt(16 / 3), abs=TOL)
    assert found.loc[0, "threshold"] == pytest.approx(38 - 2 * math.sqrt(16 / 3), abs=TOL)
    assert ruptures(series([36, 40, 36, 40, 34]), sd_service=1.0).empty


def test_gaps_report_real_session_numbers():
    # Sessions 1, 2, 4, 5 with SRS 38, 38, 30, 37 (session 3 unrated): rating 3 is session 4.
    # Baseline 38, SD_ref 2, threshold 34; 30 ≤ 34 → rupture at session 4. Repair level 36;
    # 37 at the next rating (session 5) → repaired at session 5.
    absent = series([38, 38, 30, 37], sessions=[1, 2, 4, 5])
    missing = series([38, 38, math.nan, 30, 37], sessions=[1, 2, 3, 4, 5])
    for ratings in (absent, missing):
        found = ruptures(ratings)
        assert found["session_number"].tolist() == [4]
        assert found.loc[0, "previous_score"] == 38
        assert found.loc[0, "repair_session"] == 5
    # The repair window counts ratings, not sessions: sessions 1–4, 8, 9, 10 with
    # SRS 38, 38, 38, 30, 31, 32, 37 → rupture at session 4; the third later rating (37 ≥ 36,
    # at session 10) repairs it although six sessions have passed.
    found = ruptures(series([38, 38, 38, 30, 31, 32, 37], sessions=[1, 2, 3, 4, 8, 9, 10]))
    assert found["repair_status"].tolist() == ["repaired"]
    assert found["repair_session"].tolist() == [10]


def test_one_rupture_is_counted_once():
    # SRS 38 × 5, 30, 22, 23, 24; sd_service 2.
    # Rating 6 (30): baseline 38, SD 0 → SD_ref 2; threshold 34 → rupture; repair level 36;
    #   ratings 7–9 (22, 23, 24) stay below → unrepaired; its span is ratings 7–9.
    # Rating 7 (22) on its own terms: baseline of (38, 38, 38, 38, 30) = 36.4; deviations 1.6 ×
    #   4 and −6.4 → SD √((4·2.56 + 40.96)/4) = √12.8 = 3.578; threshold 36.4 − 7.155 = 29.245;
    #   22 ≤ 29.2 would fire — but it lies inside the unresolved rupture, so it is not a new one.
    # Rating 8 (23): baseline 33.2, SD √51.2 = 7.16, threshold 18.9 → would not fire anyway.
    found = ruptures(series([38, 38, 38, 38, 38, 30, 22, 23, 24]))
    assert found["session_number"].tolist() == [6]
    assert found["repair_status"].tolist() == ["unrepaired"]


def test_a_new_rupture_after_a_repair_counts_again():
    # SRS 38, 38, 38, 30, 38, 38, 38, 38, 28; sd_service 2.
    # Rating 4: threshold 34 → rupture; 38 ≥ 36 at rating 5 → repaired at session 5.
    # Rating 9 (28): earlier five 30, 38, 38, 38, 38 → baseline 36.4, SD √12.8 = 3.578 →
    #   SD_ref 3.578; threshold 36.4 − 7.155 = 29.245; 28 ≤ 29.245 → a second rupture, open.
    # Ratings 5–8 (38) are never at or below their baselines' thresholds.
    ratings = series([38, 38, 38, 30, 38, 38, 38, 38, 28])
    found = ruptures(ratings)
    assert found["session_number"].tolist() == [4, 9]
    assert found["repair_status"].tolist() == ["repaired", "open"]
    assert found.loc[1, "baseline"] == pytest.approx(36.4, abs=TOL)
    assert found.loc[1, "sd_ref"] == pytest.approx(math.sqrt(12.8), abs=TOL)
    summary = rupture_summary(events(ratings))
    assert summary.to_dict("records") == [
        {
            "episode_id": "A",
            "n_ruptures": 2,
            "n_repaired": 1,
            "n_unrepaired": 0,
            "n_open": 1,
            "first_rupture_session": 4,
        }
    ]


# --- below cut-off and dips ----------------------------------------------------------------------


def test_below_cutoff_srs_is_strictly_below_36():
    # SRS 36, 35, 37, 35.5, 40: below 36 are 35 (session 2) and 35.5 (session 4); 36 is not.
    found = events(series([36, 35, 37, 35.5, 40]), "below_cutoff")
    assert found["session_number"].tolist() == [2, 4]
    assert found["threshold"].tolist() == [36.0, 36.0]
    assert found["previous_score"].tolist() == [36.0, 37.0]
    assert found.loc[0, "detail"] == "SRS 35 is below the cut-off 36"


def test_below_own_baseline_without_a_cutoff_wai_sr():
    # WAI-SR 50, 52, 54, 46, 45, 52; no cut-off; sd_service 2. First-three mean = 52.
    # Rating 4 (46): SD_ref from (50, 52, 54): SD 2 → SD_ref max(2, 2) = 2; threshold
    #   52 − 2 × 2 = 48; 46 ≤ 48 → below.
    # Rating 5 (45): earlier 50, 52, 54, 46 → mean 50.5; deviations −0.5, 1.5, 3.5, −4.5 →
    #   squares 35 → SD √(35/3) = 3.416; threshold 52 − 6.831 = 45.169; 45 ≤ 45.169 → below.
    # Rating 6 (52) is not below its first-three mean at all.
    wai = series([50, 52, 54, 46, 45, 52])
    found = events(wai, "below_cutoff", cutoff=None, instrument="WAI-SR")
    assert found["session_number"].tolist() == [4, 5]
    assert found["baseline"].tolist() == pytest.approx([52.0, 52.0], abs=TOL)
    assert found["sd_ref"].tolist() == pytest.approx([2.0, math.sqrt(35 / 3)], abs=TOL)
    assert found["threshold"].tolist() == pytest.approx([48.0, 52 - 2 * math.sqrt(35 / 3)], abs=TOL)
    # Only from the 4th rating on: WAI-SR 50, 40, 50, 50 flags nothing (rating 2 is part of the
    # baseline; rating 4: mean 46.67, 50 is above it).
    assert events(series([50, 40, 50, 50]), "below_cutoff", cutoff=None).empty


def test_dips_are_any_drop_from_the_previous_rating():
    # SRS 38, 37, 37, 39, 36 → dips at session 2 (from 38) and 5 (from 39); 37 after 37 is none.
    found = events(series([38, 37, 37, 39, 36]), "dip")
    assert found["session_number"].tolist() == [2, 5]
    assert found["previous_score"].tolist() == [38.0, 39.0]
    assert found.loc[1, "detail"] == "SRS 36 after 39 at the previous rating (−3)"
    # Across a gap the previous available rating counts: sessions 1, 3 with 38, 35.
    found = events(series([38, 35], sessions=[1, 3]), "dip")
    assert found["session_number"].tolist() == [3]
    assert found["previous_score"].tolist() == [38.0]


# --- ceiling and late decline --------------------------------------------------------------------


def test_ceiling():
    ratings = pd.concat(
        [
            # 39, 40, 40, 38, 40: four of five (80 %) at ≥ 39 → ceiling, at the last session 5.
            series([39, 40, 40, 38, 40], episode="A"),
            # 39, 40, 38, 38, 40: three of five (60 %) → none.
            series([39, 40, 38, 38, 40], episode="B"),
            # 40, 40: fewer than three ratings → not evaluated.
            series([40, 40], episode="C"),
            # Sessions 1, 2, 3, 6 with 40, 39, 40, 40: four of four → ceiling at session 6.
            series([40, 39, 40, 40], sessions=[1, 2, 3, 6], episode="D"),
        ]
    )
    found = events(ratings, "ceiling")
    assert found["episode_id"].tolist() == ["A", "D"]
    assert found["session_number"].tolist() == [5, 6]
    assert found["share"].tolist() == pytest.approx([0.8, 1.0], abs=TOL)
    assert found["threshold"].tolist() == [39.0, 39.0]
    assert found.loc[0, "detail"].startswith("4 of 5 SRS ratings (80%) at 39 or above")


def test_late_decline():
    ratings = pd.concat(
        [
            # A: 38, 39, 38, 37, 34, 31, 28 (sessions 1–7), sd_service 1.
            #   Last four: x = 4..7 (deviations −1.5, −0.5, 0.5, 1.5), y = 37, 34, 31, 28
            #   (deviations 4.5, 1.5, −1.5, −4.5): Sxy = −15, Sxx = 5 → slope −3.
            #   Before them: 38, 39, 38 → SD 0.577 → SD_ref max(0.577, 1) = 1; −3 < −1.
            #   Early alliance (38+39+38)/3 = 38.33 ≥ 36 → late decline at session 7.
            series([38, 39, 38, 37, 34, 31, 28], episode="A"),
            # B: 35, 35, 36, 35, 32, 29, 26: slope −3 too, but the early alliance
            #   (35+35+36)/3 = 35.33 < 36 is not high → none.
            series([35, 35, 36, 35, 32, 29, 26], episode="B"),
            # C: 38, 39, 38, 38, 37, 36, 35: slope exactly −1 = −SD_ref → not steeper → none.
            series([38, 39, 38, 38, 37, 36, 35], episode="C"),
            # D: 34, 40, 40, 37, 34, 31: slope −3, but the SD before the last four,
            #   SD(34, 40) = √18 = 4.243, is the SD_ref; −3 > −4.243 → none.
            series([34, 40, 40, 37, 34, 31], episode="D"),
            # E: sessions 1, 2, 3, 4, 6, 8, 10 with 38, 39, 38, 37, 34, 31, 28: x = 4, 6, 8, 10
            #   (deviations −3, −1, 1, 3), y deviations 4.5, 1.5, −1.5, −4.5: Sxy = −30, Sxx = 20
            #   → slope −1.5 per session < −1 → late decline at session 10.
            series([38, 39, 38, 37, 34, 31, 28], sessions=[1, 2, 3, 4, 6, 8, 10], episode="E"),
            # F: five ratings (< late_decline_n + 2 = 6) → not evaluated.
            series([39, 38, 35, 32, 29], episode="F"),
        ]
    )
    found = events(ratings, "late_decline", sd_service=1.0)
    assert found["episode_id"].tolist() == ["A", "E"]
    assert found["session_number"].tolist() == [7, 10]
    assert found["slope"].tolist() == pytest.approx([-3.0, -1.5], abs=TOL)
    assert found["sd_ref"].tolist() == pytest.approx([1.0, 1.0], abs=TOL)
    assert found["sd_client"].tolist() == pytest.approx([math.sqrt(1 / 3)] * 2, abs=TOL)
    assert found["threshold"].tolist() == pytest.approx([-1.0, -1.0], abs=TOL)
    assert found["baseline"].tolist() == pytest.approx([115 / 3] * 2, abs=TOL)
    # Without a cut-off (WAI-SR) there is no "high" to require: B's fall alone is flagged
    # (SD before the last four: SD(35, 35, 36) = 0.577 → SD_ref 1; −3 < −1).
    no_cutoff = events(ratings, "late_decline", sd_service=1.0, cutoff=None)
    assert no_cutoff["episode_id"].tolist() == ["A", "B", "E"]


# --- many episodes at once -----------------------------------------------------------------------


FIXTURES = {
    "v": ([38, 38, 39, 30, 37], None),
    "unrepaired": ([38, 38, 38, 30, 31, 32, 33], None),
    "open": ([38, 38, 38, 30, 31], None),
    "gaps": ([38, 38, 30, 37], [1, 2, 4, 5]),
    "once": ([38, 38, 38, 38, 38, 30, 22, 23, 24], None),
    "twice": ([38, 38, 38, 30, 38, 38, 38, 38, 28], None),
    "ceiling": ([39, 40, 40, 38, 40], None),
    "decline": ([38, 39, 38, 37, 34, 31, 28], None),
    "short": ([38, 20], None),
    "single": ([31], None),
}


@pytest.mark.parametrize("cutoff", [SRS_CUTOFF, None])
def test_many_episodes_together_equal_one_at_a_time(cutoff):
    one_by_one = pd.concat(
        [
            events(series(scores, sessions, episode=name), cutoff=cutoff)
            for name, (scores, sessions) in FIXTURES.items()
        ],
        ignore_index=True,
    )
    together = pd.concat(
        [series(scores, sessions, episode=name) for name, (scores, sessions) in FIXTURES.items()]
    )
    shuffled = together.sample(frac=1.0, random_state=7)  # row order must not matter
    batch = events(shuffled, cutoff=cutoff)
    expected = one_by_one.sort_values(["episode_id", "session_number", "event"], kind="stable")
    pd.testing.assert_frame_equal(
        batch.reset_index(drop=True), expected.reset_index(drop=True), check_categorical=False
    )


def _reference_ruptures(
    scores: list[float], sessions: list[int], rules: AllianceRules, sd_service: float
) -> list[tuple[int, str, int | None]]:
    """The rupture and repair rules read literally, one episode, one rating at a time."""
    found = []
    covered_to = -1  # last rating index inside a counted rupture's span
    for t in range(rules.min_prior, len(scores)):
        prior = scores[max(0, t - rules.baseline_window) : t]
        baseline = statistics.fmean(prior)
        sd_ref = max(statistics.stdev(prior), sd_service)
        if scores[t] > baseline - rules.k * sd_ref + TOL or t <= covered_to:
            continue
        status, at, span = None, None, 0
        for lead in range(1, rules.repair_window + 1):
            if t + lead < len(scores) and scores[t + lead] >= baseline - rules.repair_k * sd_ref - TOL:
                status, at, span = "repaired", sessions[t + lead], lead
                break
        if status is None:
            later = len(scores) - 1 - t
            status = "unrepaired" if later >= rules.repair_window else "open"
            span = min(later, rules.repair_window)
        covered_to = t + span
        found.append((sessions[t], status, at))
    return found


@pytest.mark.parametrize("rules", [AllianceRules(), AllianceRules(k=1.0, repair_window=2)])
def test_ruptures_match_a_plain_loop_on_random_episodes(rules):
    rng = np.random.default_rng(2024)
    frames, expected = [], []
    for number in range(400):
        n = int(rng.integers(1, 16))
        sessions = np.sort(rng.choice(np.arange(1, 25), size=n, replace=False)).tolist()
        # SRS-like: mostly 34–40 with occasional sharp drops.
        scores = np.clip(rng.integers(33, 41, n) - 8 * (rng.random(n) < 0.15), 0, 40).tolist()
        name = f"e{number:03d}"
        frames.append(series(scores, sessions, episode=name))
        expected += [(name, *event) for event in _reference_ruptures(scores, sessions, rules, 1.5)]
    found = ruptures(pd.concat(frames), rules=rules, sd_service=1.5)
    got = [
        (e, s, str(st), None if pd.isna(at) else int(at))
        for e, s, st, at in found[
            ["episode_id", "session_number", "repair_status", "repair_session"]
        ].itertuples(index=False)
    ]
    assert len(expected) > 50  # the random data does exercise the rules
    assert got == expected


# --- service SD, summary, description, validation ------------------------------------------------


def test_service_change_sd():
    # A: 30, 32, 31 → changes +2, −1. B: 38, (missing), 35 → one change −3 between consecutive
    # available ratings. C: one rating → no change.
    # Pooled changes 2, −1, −3: mean −2/3; deviations 8/3, −1/3, −7/3; squares 64/9 + 1/9 + 49/9
    # = 114/9; / (3 − 1) = 57/9 → SD √6.333 = 2.5166.
    ratings = pd.concat(
        [
            series([30, 32, 31], episode="A"),
            series([38, math.nan, 35], episode="B"),
            series([40], episode="C"),
        ]
    ).iloc[::-1]  # unsorted on purpose
    assert service_change_sd(ratings) == pytest.approx(math.sqrt(57 / 9), abs=TOL)
    assert math.isnan(service_change_sd(series([30, 32])))  # one change: no SD


def test_rupture_summary_lists_every_requested_episode():
    ratings = pd.concat(
        [
            series([38, 38, 39, 30, 37], episode="A"),  # repaired at 5
            series([38, 38, 38, 30, 31, 32, 33], episode="B"),  # unrepaired
            series([39, 40, 40, 38, 40], episode="C"),  # ceiling only, no rupture
        ]
    )
    summary = rupture_summary(events(ratings), episode_ids=["D", "C", "B", "A"])
    assert summary["episode_id"].tolist() == ["A", "B", "C", "D"]
    assert summary["n_ruptures"].tolist() == [1, 1, 0, 0]
    assert summary["n_repaired"].tolist() == [1, 0, 0, 0]
    assert summary["n_unrepaired"].tolist() == [0, 1, 0, 0]
    assert summary["n_open"].tolist() == [0, 0, 0, 0]
    assert summary["first_rupture_session"].tolist() == [4, 4, pd.NA, pd.NA]


def test_describe_names_the_rule_in_force_and_its_sources():
    text = AllianceRules().describe()
    assert text.startswith("rupture (k = 2, strict): a rating ≥ 2 SD_ref below the mean of up to 5")
    assert "repair: back within 1 SD_ref of that baseline within 3 ratings" in text
    assert "our rules, built on Stiles et al. 2004, Strauss et al. 2006, Gumz et al. 2012" in text
    assert "k = 1, sensitive" in AllianceRules(k=1.0).describe()
    found = events(series([38, 38, 39, 30, 37]))
    assert found.attrs["method"] == text


def test_output_shape_and_empty_input():
    found = events(series([38, 38, 39, 30, 37]))
    assert tuple(found.columns) == ALLIANCE_EVENT_COLUMNS
    # Order within a rating: below_cutoff, dip, rupture.
    assert found["event"].tolist() == ["below_cutoff", "dip", "rupture"]
    empty = events(series([], episode="A"))
    assert tuple(empty.columns) == ALLIANCE_EVENT_COLUMNS
    assert empty.empty


@pytest.mark.parametrize(
    ("ratings", "settings", "message"),
    [
        (series([38, 37], sessions=[1, 1]), {}, "more than one rating"),
        (series([38, 37], sessions=[1, 0]), {}, "whole numbers"),
        (series([38, 37]), {"sd_service": 0.0}, "sd_service"),
        (series([38, 37]), {"sd_service": math.nan}, "sd_service"),
        (series([38, 37]), {"clinical_side": "at_or_above"}, "clinical_side"),
        (series([38, 37], episode=None), {}, "episode_id"),
    ],
)
def test_invalid_input_is_refused(ratings, settings, message):
    with pytest.raises(ValueError, match=message):
        events(ratings, **settings)


@pytest.mark.parametrize(
    "settings",
    [{"k": 0.0}, {"min_prior": 1}, {"baseline_window": 1}, {"repair_k": 3.0}, {"repair_window": 0}],
)
def test_invalid_rules_are_refused(settings):
    with pytest.raises(ValueError):
        AllianceRules(**settings)
