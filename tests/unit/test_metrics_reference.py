"""The change statistics against published software (tests/reference) and hand calculations.

Reference files are the R packages' own data and output (see tests/reference/README.md): suddengains
0.7.2 for sudden gains and losses, clinicalsignificance 2.1 for Jacobson–Truax, effectsize 0.8.3 and
metafor 3.8-1 for effect sizes. Reals are compared to 1e-9; headline numbers quoted in the packages' documentation
are compared to the precision printed there. Every expected number here comes from those files or
from a hand calculation written out next to it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliance.metrics import (
    CATEGORIES,
    SCORE_COLUMNS,
    FixedThreshold,
    JacobsonTruax,
    check_interval,
    classify_change,
    d_z,
    events_by_episode,
    improvement,
    interval_criteria,
    jt_cutoffs,
    rci,
    s_diff,
    severity,
    smcr,
    sudden_changes,
)

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference"
SESSIONS = range(1, 13)  # sgdata's bdi_s1 … bdi_s12; bdi_s0 is a baseline that identify_sg was not given
EXAMINED = range(2, 11)  # intervals 2→3 … 10→11 in the details files
TOL = 1e-9


def oracle_dir() -> Path:
    """The reference files shipped with the tests (tests/reference; its README names each file's source)."""
    where = REFERENCE_DIR
    if not (where / "README.md").is_file():
        pytest.fail(f"reference files not found in {where}: the repository is incomplete.")
    return where


@pytest.fixture(scope="module")
def oracles() -> Path:
    return oracle_dir()


def read(oracles: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(oracles / name)


def cell(value) -> bool | None:
    """An oracle cell as True / False / None (an empty cell is R's NA)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, str):
        return {"TRUE": True, "FALSE": False}[value]
    return bool(value)


@pytest.fixture(scope="module")
def sgdata(oracles: Path) -> pd.DataFrame:
    return read(oracles, "sgdata.csv")


@pytest.fixture(scope="module")
def ratings(sgdata: pd.DataFrame) -> pd.DataFrame:
    """sgdata in long form: one row per patient and session 1–12, NaN where a rating is missing."""
    long = sgdata.melt(
        id_vars="id",
        value_vars=[f"bdi_s{s}" for s in SESSIONS],
        var_name="column",
        value_name="severity",
    )
    long["session_number"] = long["column"].str.removeprefix("bdi_s").astype(int)
    # BDI-II runs from 0 (healthy) upwards, so the score is already the severity.
    return long.rename(columns={"id": "episode_id"})[["episode_id", "session_number", "severity"]]


def gains(ratings: pd.DataFrame, **rule) -> pd.DataFrame:
    settings = {"cutoff": 7} | rule
    return sudden_changes(ratings, kinds=("gain",), **settings)


# --- sudden gains and losses: every interval, every criterion ------------------------------------


def as_details(table: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Our interval table in the shape of suddengains' crit123_details output (True/False/None, and
    0/1/None for the combined flag)."""
    wide: dict[str, pd.Series] = {}
    for crit in ("crit1", "crit2", "crit3"):
        for n in EXAMINED:
            rows = table[table["session"] == n].set_index("episode_id")[crit]
            wide[f"{prefix}_{crit}_{n}to{n + 1}"] = pd.Series(
                [cell(v) for v in rows.tolist()], index=rows.index, dtype=object
            )
    for n in EXAMINED:
        rows = table[table["session"] == n].set_index("episode_id")
        wide[f"{prefix}_{n}to{n + 1}"] = pd.Series(
            [int(e) if ok else None for e, ok in zip(rows["event"], rows["evaluable"], strict=True)],
            index=rows.index,
            dtype=object,
        )
    return pd.DataFrame(wide)


def oracle_details(oracles: Path, name: str) -> pd.DataFrame:
    raw = read(oracles, name).set_index("id")
    out = {}
    for column in raw.columns:
        if "crit" in column:
            values = [cell(v) for v in raw[column].tolist()]
        else:
            values = [None if pd.isna(v) else int(v) for v in raw[column].tolist()]
        out[column] = pd.Series(values, index=raw.index, dtype=object)
    return pd.DataFrame(out)


def assert_same_cells(ours: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(ours.columns) == list(expected.columns)
    assert list(ours.index) == list(expected.index)
    mismatches = [
        (episode, column, ours.at[episode, column], expected.at[episode, column])
        for column in expected.columns
        for episode in expected.index
        if ours.at[episode, column] != expected.at[episode, column]
    ]
    assert not mismatches, f"{len(mismatches)} cells differ, first: {mismatches[:5]}"


def test_intervals_examined_are_2_to_10_for_every_patient(ratings):
    table = interval_criteria(ratings, cutoff=7)
    assert len(table) == 43 * 9
    assert set(table["session"]) == set(EXAMINED)
    assert table.groupby("episode_id")["session"].apply(list).map(lambda s: s == list(EXAMINED)).all()


def test_gain_criteria_match_identify_sg_details(oracles, ratings):
    table = interval_criteria(ratings, kind="gain", cutoff=7, pct=0.25, crit3=True)
    expected = oracle_details(oracles, "sgdata_identify_sg_crit123_details.csv")
    assert_same_cells(as_details(table, "sg"), expected)


def test_loss_criteria_match_identify_sl_details(oracles, ratings):
    # suddengains' own second loss criterion (the vacuous one), reproduced for reference only.
    table = interval_criteria(
        ratings, kind="loss", cutoff=7, pct=0.25, crit3=True, loss_pct_rule="suddengains"
    )
    expected = oracle_details(oracles, "sgdata_identify_sl_crit123_details.csv")
    assert_same_cells(as_details(table, "sl"), expected)


def test_mirrored_loss_rule_differs_only_in_criterion_2_and_finds_the_same_losses(oracles, ratings):
    """Deliberate difference: the project mirrors criterion 2 for losses (worsening >= 25 % of the
    pregain severity); suddengains' rule holds whenever criterion 1 does, so it never decides."""
    ours = as_details(interval_criteria(ratings, kind="loss", cutoff=7), "sl")
    expected = oracle_details(oracles, "sgdata_identify_sl_crit123_details.csv")
    same = [c for c in expected.columns if "crit2" not in c]
    assert_same_cells(ours[same], expected[same])
    crit2 = [c for c in expected.columns if "crit2" in c]
    assert not ours[crit2].equals(expected[crit2])
    # Patient 1, 2→3: 37 → 34 is an improvement. Mirrored: worsening -3 >= 0.25 * 37? No.
    # suddengains: 37 - 34 = 3 <= 0.25 * 37 = 9.25, so its criterion 2 holds.
    assert ours.at[1, "sl_crit2_2to3"] is False
    assert expected.at[1, "sl_crit2_2to3"] is True


def test_headline_counts_for_gains(ratings):
    table = interval_criteria(ratings, cutoff=7)
    assert table["crit1"].sum() == 34
    assert table["crit2"].sum() == 45
    assert table["crit3"].sum() == 81
    events = gains(ratings)
    assert len(events) == 24
    assert events["episode_id"].nunique() == 15


@pytest.mark.parametrize(
    ("rule", "n_gains", "n_patients"),
    [
        ({"crit3": False}, 30, 18),
        ({"alpha": 0.01}, 17, 11),
        ({"pct": None, "crit3": False}, 34, 19),
        ({"critical_value": 2.776}, 26, None),
    ],
    ids=["crit3-off", "alpha-.01", "crit1-only", "fixed-2.776"],
)
def test_variant_counts(ratings, rule, n_gains, n_patients):
    events = gains(ratings, **rule)
    assert len(events) == n_gains
    if n_patients is not None:
        assert events["episode_id"].nunique() == n_patients


def test_the_three_sudden_losses(ratings):
    losses = sudden_changes(ratings, cutoff=7, kinds=("loss",))
    found = list(losses[["episode_id", "session", "magnitude"]].itertuples(index=False, name=None))
    assert found == [(4, 9, -9.0), (34, 7, -12.0), (35, 7, -18.0)]


def test_both_kinds_together(ratings):
    events = sudden_changes(ratings, cutoff=7)
    assert events["kind"].value_counts().to_dict() == {"gain": 24, "loss": 3}


# --- sudden gains and losses: per event and per person ------------------------------------------

BYSG_COLUMNS = {
    "sg_session_n": "session",
    "sg_freq_byperson": "events_in_episode",
    "sg_bdi_2n": "severity_n_minus_2",
    "sg_bdi_1n": "severity_n_minus_1",
    "sg_bdi_n": "severity_n",
    "sg_bdi_n1": "severity_n_plus_1",
    "sg_bdi_n2": "severity_n_plus_2",
    "sg_bdi_n3": "severity_n_plus_3",
    "sg_magnitude": "magnitude",
    "sg_bdi_tx_change": "tx_change",
    "sg_change_proportion": "change_proportion",
    "sg_reversal_value": "reversal_value",
    "sg_reversal": "reversal",
}


def assert_matches_bysg(ours: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(ours["episode_id"]) == list(expected["id"])
    for theirs, mine in BYSG_COLUMNS.items():
        np.testing.assert_allclose(
            ours[mine].to_numpy(dtype=float),
            expected[theirs].to_numpy(dtype=float),
            rtol=0,
            atol=TOL,
            equal_nan=True,
            err_msg=f"{mine} differs from {theirs}",
        )


@pytest.mark.parametrize(("kind", "name"), [("gain", "sgdata_bysg.csv"), ("loss", "sgdata_bysl.csv")])
def test_events_match_create_bysg(oracles, ratings, kind, name):
    # tx_start = bdi_s1, tx_end = bdi_s12: session 1 and every patient's last session (12).
    events = sudden_changes(ratings, cutoff=7, kinds=(kind,))
    assert_matches_bysg(events, read(oracles, name))


def test_first_gain_per_person_matches_create_byperson(oracles, ratings, sgdata):
    events = gains(ratings)
    ours = events_by_episode(events, kind="gain", select="first", episode_ids=sgdata["id"])
    expected = read(oracles, "sgdata_byperson_first.csv")
    assert list(ours["has_event"].astype(int)) == list(expected["sg_crit123"])
    assert_matches_bysg(ours, expected)


def test_gain_descriptives(ratings):
    events = gains(ratings)
    # README: magnitude mean 11 (SD 3.43); 4 of 24 reverse; 70.83 % in patients with several gains.
    assert events["magnitude"].mean() == pytest.approx(11, abs=TOL)
    assert events["magnitude"].std() == pytest.approx(3.43, abs=0.005)
    assert events["reversal"].sum() == 4
    assert (events["events_in_episode"] > 1).mean() == pytest.approx(17 / 24, abs=TOL)
    assert 100 * 17 / 24 == pytest.approx(70.83, abs=0.005)
    first = events_by_episode(events, kind="gain", select="first")
    assert len(first) == 15
    assert first["magnitude"].mean() == pytest.approx(11.4, abs=TOL)
    assert first["magnitude"].std() == pytest.approx(3.98, abs=0.005)


def test_last_event_per_episode(ratings):
    last = events_by_episode(gains(ratings), kind="gain", select="last").set_index("episode_id")
    # From sgdata_bysg.csv: patient 40 has gains at 2, 5 and 8; patient 1 at 3 and 7.
    assert last.at[40, "session"] == 8
    assert last.at[1, "session"] == 7


def test_check_interval_examples_from_suddengains():
    first = check_interval([32, 31, 33], [5, 6, 7], cutoff=7, pct=0.25, alpha=0.05)
    assert first.event is True
    assert (first.crit1, first.crit2, first.crit3) == (True, True, True)
    assert first.critical_value == pytest.approx(2.776, abs=5e-4)  # t(.975, 4)

    second = check_interval([np.nan, 31, 33], [5, np.nan, 7], cutoff=None, pct=None, crit3=True, alpha=0.01)
    assert second.event is True
    assert (second.crit1, second.crit2, second.crit3) == (None, None, True)
    assert second.critical_value == pytest.approx(9.925, abs=5e-4)  # t(.995, 2)
    assert (second.n_pre, second.n_post) == (2, 2)


def test_check_interval_needs_two_ratings_each_side():
    # One rating after the interval: criterion 3 cannot be evaluated, so no gain whatever the drop.
    result = check_interval([30, 30, 30], [5], cutoff=7)
    assert result.crit1 is True and result.crit2 is True
    assert result.crit3 is None
    assert result.evaluable is False and result.event is False


def test_criterion_3_is_strict():
    # Identical windows: mean difference 0, pooled SD 0, and 0 > t · 0 is false.
    result = check_interval([10, 10, 10], [10, 10, 10], cutoff=None, pct=None)
    assert result.pooled_sd == 0
    assert result.crit3 is False and result.event is False


def test_check_interval_fixed_critical_value():
    result = check_interval([32, 31, 33], [5, 6, 7], cutoff=7, critical_value=2.776)
    assert result.critical_value == 2.776
    assert result.event is True


def test_check_interval_loss():
    # Worsening 10 -> 20: 10 >= 7, 10 >= 0.25 * 10; windows (10, 11, 10) vs (20, 21, 20).
    result = check_interval([10, 11, 10], [20, 21, 20], kind="loss", cutoff=7)
    assert (result.crit1, result.crit2, result.crit3, result.event) == (True, True, True, True)


# --- sudden gains: hand-calculated cases for the project's own choices ---------------------------


def episode(scores: list[float], episode_id: str = "e1") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "episode_id": episode_id,
            "session_number": range(1, len(scores) + 1),
            "severity": scores,
        }
    )


def test_absent_row_and_missing_rating_are_the_same_gap():
    with_nan = episode([26, np.nan, 26, 27, 17, 19, 11, 10, 3])
    absent = with_nan.dropna()
    pd.testing.assert_frame_equal(interval_criteria(with_nan, cutoff=7), interval_criteria(absent, cutoff=7))


def test_intervals_follow_each_episodes_own_length():
    both = pd.concat([episode([30] * 5, "short"), episode([30] * 8, "long")])
    table = interval_criteria(both, cutoff=7)
    # Sessions 1–5 give intervals 2→3 and 3→4; sessions 1–8 give 2→3 … 6→7.
    assert table.groupby("episode_id")["session"].apply(list).to_dict() == {
        "long": [2, 3, 4, 5, 6],
        "short": [2, 3],
    }


def test_reversal_counts_from_session_n_plus_2():
    """Project rule (docs/methods.md §6): reversal from session n+2 on. suddengains 0.7.2's code starts at
    n+3; the reference data do not tell the two apart, this case does.

    Gain 3→4: 40 → 10, magnitude 30, reversal value 10 + 30 / 2 = 25; session 5 (n+2) is 26 > 25.
    Criterion 3: pre (40, 40, 40) mean 40, SD 0; post (10, 26, 10) mean 15.33, variance 85.33;
    pooled SD √((0 + 2 · 85.33) / 4) = 6.53; 40 − 15.33 = 24.67 > 2.776 · 6.53 = 18.13.
    """
    events = gains(episode([40, 40, 40, 10, 26, 10]))
    assert list(events["session"]) == [3]
    assert events.loc[0, "reversal_value"] == 25
    assert bool(events.loc[0, "reversal"]) is True


def test_change_proportion_is_missing_when_there_is_no_total_change():
    """Deliberate difference: suddengains means NA here but only replaces -Inf, so reports +Inf.

    Gain 3→4: 20 → 10 (magnitude 10, 50 % of 20; both windows constant, pooled SD 0 < 10); total
    change session 1 → 7 is 20 − 20 = 0. Reversal value 15, session 7 is 20 > 15.
    """
    events = gains(episode([20, 20, 20, 10, 10, 10, 20]))
    assert list(events["session"]) == [3]
    row = events.iloc[0]
    assert row["tx_change"] == 0
    assert math.isnan(row["change_proportion"])
    assert bool(row["reversal"]) is True


def test_event_columns():
    events = gains(episode([40, 40, 40, 10, 10, 10]))
    assert list(events.columns) == [
        "episode_id",
        "kind",
        "session",
        *SCORE_COLUMNS,
        "magnitude",
        "tx_change",
        "change_proportion",
        "reversal_value",
        "reversal",
        "events_in_episode",
    ]


# --- reliable change and clinical significance ---------------------------------------------------

CS_CASES = {
    "das": dict(
        data="cs_jacobson_1989.csv",
        result="cs_jacobson1989_das_combined_JT_rel084_a_higher.csv",
        id="subject",
        outcome="das",
        pre="pre",
        post="post",
        reliability=0.84,
        higher_is_better=True,
        cutoff_type="a",
        functional=None,
    ),
    "hamd": dict(
        data="cs_claus_2020.csv",
        result="cs_claus2020_hamd_combined_JT_rel080_c_m8_sd8.csv",
        id="id",
        outcome="hamd",
        pre=1,
        post=4,
        reliability=0.80,
        higher_is_better=False,
        cutoff_type="c",
        functional=(8, 8),
    ),
    "bdi": dict(
        data="cs_claus_2020.csv",
        result="cs_claus2020_bdi_combined_JT_rel080_c_m7_sd7.csv",
        id="id",
        outcome="bdi",
        pre=1,
        post=4,
        reliability=0.80,
        higher_is_better=False,
        cutoff_type="c",
        functional=(7, 7),
    ),
}


def cs_inputs(oracles: Path, case: dict) -> tuple[pd.DataFrame, JacobsonTruax, float]:
    """Complete pre/post pairs, the J&T rule and the cut-off as clinicalsignificance sets them up:
    the clinical norms are the sample's pre-treatment mean and SD."""
    long = read(oracles, case["data"])
    wide = long.pivot(index=case["id"], columns="time", values=case["outcome"])
    pairs = wide[[case["pre"], case["post"]]].dropna()
    pairs.columns = ["pre", "post"]
    m_pre, sd_pre = pairs["pre"].mean(), pairs["pre"].std()
    functional = case["functional"] or (None, None)
    cutoffs = jt_cutoffs(m_pre, sd_pre, *functional, higher_is_better=case["higher_is_better"])
    return (
        pairs,
        JacobsonTruax(sd=sd_pre, reliability=case["reliability"]),
        cutoffs[case["cutoff_type"]],
    )


def cs_result(oracles: Path, case: dict) -> pd.DataFrame:
    pairs, method, cutoff = cs_inputs(oracles, case)
    return classify_change(
        pairs["pre"],
        pairs["post"],
        higher_is_better=case["higher_is_better"],
        cutoff=cutoff,
        method=method,
        at_cutoff="neither",
    )


@pytest.mark.parametrize("name", CS_CASES)
def test_jacobson_truax_matches_clinicalsignificance(oracles, name):
    case = CS_CASES[name]
    ours = cs_result(oracles, case)
    expected = read(oracles, case["result"]).set_index("id")
    assert list(ours.index) == list(expected.index)
    for column in ("pre", "post", "change", "rci"):
        np.testing.assert_allclose(
            ours[column].to_numpy(), expected[column].to_numpy(), rtol=0, atol=TOL, err_msg=column
        )
    assert list(ours["category"].astype(str)) == list(expected["category"].str.lower())
    for category in CATEGORIES:
        assert list(ours["category"] == category) == list(expected[category]), category


def category_counts(result: pd.DataFrame) -> list[int]:
    counts = result["category"].value_counts()
    return [int(counts[c]) for c in CATEGORIES]


def test_hamd_headline_numbers(oracles):
    pairs, method, cutoff = cs_inputs(oracles, CS_CASES["hamd"])
    assert len(pairs) == 40
    assert pairs["pre"].mean() == pytest.approx(24.85, abs=TOL)
    assert method.sd == pytest.approx(3.340121, abs=5e-7)
    assert method.s_diff == pytest.approx(2.112478, abs=5e-7)
    assert cutoff == pytest.approx(19.887, abs=5e-4)
    result = cs_result(oracles, CS_CASES["hamd"])
    assert category_counts(result) == [26, 3, 10, 1, 0]
    assert result.attrs["method"] == "Jacobson–Truax RCI, S_diff 2.11, |RCI| > 1.96"
    assert (result["method"] == result.attrs["method"]).all()


def test_bdi_headline_numbers(oracles):
    _, _, cutoff = cs_inputs(oracles, CS_CASES["bdi"])
    assert cutoff == pytest.approx(20.14926, abs=5e-6)
    assert category_counts(cs_result(oracles, CS_CASES["bdi"])) == [10, 8, 22, 0, 0]


def test_das_headline_numbers(oracles):
    _, method, cutoff = cs_inputs(oracles, CS_CASES["das"])
    assert cutoff == pytest.approx(105.2347, abs=5e-5)
    assert method.s_diff == pytest.approx(6.689604, abs=5e-7)
    result = cs_result(oracles, CS_CASES["das"])
    by = result.groupby("category", observed=False).groups
    assert list(by["recovered"]) == [2, 7, 13, 19, 20, 21, 22, 23, 24, 26]
    assert list(by["improved"]) == [4, 5, 8, 10, 12, 15, 16, 30]
    assert len(by["unchanged"]) == 11
    assert list(by["deteriorated"]) == [29]
    assert len(by["harmed"]) == 0


def test_jacobson_truax_worked_example():
    # J&T 1991: clinical mean 40, functional mean 60, both SD 7.5, reliability .80, higher better.
    assert s_diff(7.5, 0.80) == pytest.approx(4.743416, abs=5e-7)  # √(2 · (7.5 · √.2)²) = √22.5
    assert rci(40, 55, 7.5, 0.80) == pytest.approx(3.162278, abs=5e-7)  # 15 / √22.5 = √10
    cutoffs = jt_cutoffs(40, 7.5, 60, 7.5, higher_is_better=True)
    assert cutoffs == pytest.approx({"a": 55, "b": 45, "c": 50}, abs=TOL)


def test_cutoffs_point_towards_health_on_lower_is_better_scales():
    # Clinical 30 (SD 5), functional 10 (SD 5): a = 30 − 10 = 20, b = 10 + 10 = 20, c = 20.
    assert jt_cutoffs(30, 5, 10, 5, higher_is_better=False) == pytest.approx(
        {"a": 20, "b": 20, "c": 20}, abs=TOL
    )
    assert jt_cutoffs(30, 5, higher_is_better=False) == {"a": 20, "b": None, "c": None}


def test_severity_and_improvement_by_direction():
    # ORS 0–40, higher is better: 30 is 10 from the healthy end. PHQ-9 0–27, lower is better.
    assert severity(30, 0, 40, higher_is_better=True) == 10
    assert severity(12, 0, 27, higher_is_better=False) == 12
    assert improvement(19, 27, higher_is_better=True) == 8
    assert improvement(18, 9, higher_is_better=False) == 9
    scores = pd.Series([40.0, 25.0], index=["a", "b"])
    pd.testing.assert_series_equal(
        severity(scores, 0, 40, higher_is_better=True), pd.Series([0.0, 15.0], index=["a", "b"])
    )


# --- fixed thresholds and the boundary convention (hand calculations) ----------------------------


def test_phq9_fixed_threshold_is_inclusive():
    # PHQ-9: case at 10 or more, reliable change 6 (IAPT). Pairs and their expected category:
    # 10 → 4: improvement 6 >= 6, case before, not after → recovered
    # 15 → 10: improvement 5 < 6 → unchanged
    # 20 → 14: improvement 6, still a case (14 >= 10) → improved
    # 9 → 15: worse by 6, not a case before, a case after → harmed
    # 12 → 18: worse by 6, a case before → deteriorated
    result = classify_change(
        [10, 15, 20, 9, 12],
        [4, 10, 14, 15, 18],
        higher_is_better=False,
        cutoff=10,
        method=FixedThreshold(6, source="IAPT"),
        at_cutoff="clinical",
    )
    assert list(result["category"]) == [
        "recovered",
        "unchanged",
        "improved",
        "harmed",
        "deteriorated",
    ]
    assert result["rci"].isna().all()
    assert list(result["change"]) == [-6, -5, -6, 6, 6]
    assert list(result["improvement"]) == [6, 5, 6, -6, -6]
    assert result.attrs["method"] == "fixed threshold 6 points (IAPT)"


@pytest.mark.parametrize(
    ("at_cutoff", "clinical_pre", "clinical_post"),
    [("healthy", False, False), ("clinical", True, True), ("neither", False, True)],
)
def test_score_at_the_cutoff(at_cutoff, clinical_pre, clinical_post):
    # ORS (higher is better), cut-off 25: a score of exactly 25 before and after.
    result = classify_change(
        [25], [25], higher_is_better=True, cutoff=25, method=FixedThreshold(5), at_cutoff=at_cutoff
    )
    assert bool(result.loc[0, "clinical_pre"]) is clinical_pre
    assert bool(result.loc[0, "clinical_post"]) is clinical_post


def test_ors_recovery_at_the_cutoff_depends_on_the_convention():
    # ORS 20 → 25: improvement 5 >= 5. "Below 25 is clinical" (healthy at 25) → recovered;
    # clinicalsignificance's strict functional test (25 is not above 25) → improved only.
    kwargs = dict(higher_is_better=True, cutoff=25, method=FixedThreshold(5))
    assert classify_change([20], [25], at_cutoff="healthy", **kwargs)["category"][0] == "recovered"
    assert classify_change([20], [25], at_cutoff="neither", **kwargs)["category"][0] == "improved"


def test_reliable_change_index_is_strict():
    # A change of exactly the critical value times S_diff is not reliable (|RCI| > critical value).
    rule = JacobsonTruax(sd=5, reliability=0.8)
    exact = JacobsonTruax(sd=5, reliability=0.8, critical_value=10 / rule.s_diff)
    kwargs = dict(higher_is_better=False, cutoff=None, at_cutoff="clinical")
    assert classify_change([30], [20], method=exact, **kwargs)["category"][0] == "unchanged"
    assert classify_change([30], [19.9], method=exact, **kwargs)["category"][0] == "improved"
    assert classify_change([20], [30], method=exact, **kwargs)["category"][0] == "unchanged"


def test_missing_scores_and_no_cutoff():
    result = classify_change(
        [20, np.nan, 30],
        [10, 5, 31],
        higher_is_better=False,
        cutoff=None,
        method=JacobsonTruax(sd=5, reliability=0.8),
        at_cutoff="clinical",
    )
    # S_diff = √(2 · 5² · 0.2) = √10 = 3.1623; 20 → 10 is 3.16 S_diff better; 30 → 31 is not.
    assert result.loc[0, "rci"] == pytest.approx(-10 / math.sqrt(10), abs=TOL)
    assert pd.isna(result.loc[1, "category"])
    assert pd.isna(result.loc[1, "reliable_improvement"])
    assert list(result["category"].astype(object).fillna("-")) == ["improved", "-", "unchanged"]
    assert result["clinical_pre"].isna().all()


# --- effect sizes -------------------------------------------------------------------------------


def test_effect_sizes_das(oracles):
    data = read(oracles, "cs_jacobson_1989.csv").pivot(index="subject", columns="time", values="das")
    assert d_z(data["pre"], data["post"]) == pytest.approx(-0.993915, abs=5e-7)
    change = smcr(data["pre"], data["post"])
    assert change.estimate == pytest.approx(1.356074, abs=5e-7)
    assert change.variance == pytest.approx(0.062801, abs=5e-7)
    assert change.n == 30


def test_effect_sizes_claus_bdi(oracles):
    data = read(oracles, "cs_claus_2020.csv").pivot(index="id", columns="time", values="bdi")
    change = smcr(data[1], data[4])  # incomplete pairs are dropped: n 40
    assert change.n == 40
    assert change.estimate == pytest.approx(-1.174901, abs=5e-7)
    assert change.variance == pytest.approx(0.039090, abs=5e-7)
    assert d_z(data[1], data[4]) == pytest.approx(0.884710, abs=5e-7)
