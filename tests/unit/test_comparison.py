"""Comparing clinicians (docs/methods.md §10) against published values, hand calculations and independent software.

Expected numbers come from: Newcombe (1998, Stat Med 17, Table I, Wilson score method) for the Wilson interval,
with statsmodels' ``proportion_confint(method="wilson")`` as a second implementation; hand arithmetic written
out next to each assertion for the funnel limits, effect sizes and variance components; scipy's binomial
distribution (called directly) for the exact funnel limits; statsmodels' MixedLM (REML) for the random-
intercept model where REML and the method of moments coincide (balanced groups); and a simulated service with
two planted better clinicians.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from alliance.metrics.comparison_stats import (
    EFFECT_SIZE_COLUMNS,
    MIN_EPISODES_RANKED,
    SHRINKAGE_COLUMNS,
    effect_size_episodes,
    effect_sizes,
    funnel_limits,
    funnel_limits_mean,
    funnel_n_grid,
    funnel_position,
    funnel_positions,
    rank_eligible,
    rate_table,
    shrunken_estimates,
    wilson_interval,
)

TOL = 1e-9
Z95 = 1.959964  # standard normal 97.5th percentile, as printed in tables
Z998 = 3.090232  # 99.9th percentile
T3_975 = 3.182446  # t distribution, 3 df, 97.5th percentile (printed t tables: 3.182)


def limits_at(frame: pd.DataFrame, level: float) -> pd.DataFrame:
    return frame[frame["level"] == level].set_index("n")


# -- Wilson interval --------------------------------------------------------------------------------------
# Newcombe (1998), Table I, method 3 (score interval without continuity correction), 95 %, 4 decimals.
NEWCOMBE_WILSON = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
]


@pytest.mark.parametrize(("x", "n", "low", "high"), NEWCOMBE_WILSON)
def test_wilson_matches_newcombe_table_1(x: int, n: int, low: float, high: float) -> None:
    got_low, got_high = wilson_interval(x, n)
    assert round(got_low, 4) == low
    assert round(got_high, 4) == high


def test_wilson_zero_successes_by_hand() -> None:
    # x = 0: p = 0, so centre = (z²/2n)/(1 + z²/n) = half and the interval is [0, z²/(n + z²)].
    # n = 20: 1.959964² = 3.841459; 3.841459 / 23.841459 = 0.161124.
    low, high = wilson_interval(0, 20)
    assert low == 0.0
    assert high == pytest.approx(3.841459 / 23.841459, abs=1e-6)


def test_wilson_agrees_with_statsmodels_vectorised() -> None:
    x = np.array([0, 1, 2, 5, 7, 13, 20, 33, 50, 99, 100])
    n = np.array([5, 5, 9, 10, 40, 13, 60, 34, 200, 100, 100])
    for level in (0.90, 0.95, 0.998):
        low, high = wilson_interval(x, n, level)
        ref_low, ref_high = proportion_confint(x, n, alpha=1 - level, method="wilson")
        np.testing.assert_allclose(low, ref_low, atol=1e-12)
        np.testing.assert_allclose(high, ref_high, atol=1e-12)


def test_wilson_edges_and_shapes() -> None:
    low, high = wilson_interval(0, 0)
    assert math.isnan(low) and math.isnan(high)
    low, high = wilson_interval(7, 7)
    assert high == 1.0 and 0 < low < 1
    x = pd.Series([1, 0], index=["c1", "c2"])
    low, high = wilson_interval(x, pd.Series([4, 0], index=["c1", "c2"]))
    assert list(low.index) == ["c1", "c2"] and math.isnan(high["c2"])
    with pytest.raises(ValueError):
        wilson_interval(5, 4)


# -- rate table -------------------------------------------------------------------------------------------
def test_rate_table_counts_n_and_intervals() -> None:
    flags = pd.DataFrame(
        {
            "clinician_id": ["a", "a", "a", "a", "b", "b", "c"],
            # a: 2 of 3 known (one single-rating episode has no reliable change); b: 2 of 2; c: 0 of 1.
            "reliable_improvement": pd.array([True, False, True, pd.NA, True, True, False], dtype="boolean"),
            # 0/1 are accepted as well: a 1 of 4, b 0 of 2, c 1 of 1.
            "dropout": [0, 0, 1, 0, 0, 0, 1],
        }
    )
    table = rate_table(flags, "clinician_id", ["reliable_improvement", "dropout"])
    assert list(table.columns) == [
        "clinician_id",
        "measure",
        "count",
        "n",
        "rate",
        "low",
        "high",
        "service_rate",
        "method",
    ]
    assert list(table["clinician_id"]) == ["a", "a", "b", "b", "c", "c"]
    assert list(table["measure"]) == ["reliable_improvement", "dropout"] * 3
    assert list(table["count"]) == [2, 1, 2, 0, 0, 1]
    assert list(table["n"]) == [3, 4, 2, 2, 1, 1]
    np.testing.assert_allclose(table["rate"], [2 / 3, 1 / 4, 1.0, 0.0, 0.0, 1.0])
    ref_low, ref_high = proportion_confint(table["count"], table["n"], alpha=0.05, method="wilson")
    np.testing.assert_allclose(table["low"], ref_low, atol=1e-12)
    np.testing.assert_allclose(table["high"], ref_high, atol=1e-12)
    # Service rates pool the episodes: reliable improvement 4 of 6, dropout 2 of 7.
    assert table.attrs["service_rate"] == pytest.approx({"reliable_improvement": 4 / 6, "dropout": 2 / 7})
    np.testing.assert_allclose(table["service_rate"], [4 / 6, 2 / 7] * 3)


def test_rate_table_measure_with_no_known_values() -> None:
    flags = pd.DataFrame({"clinician_id": ["a", "b"], "recovered": pd.array([pd.NA, True], dtype="boolean")})
    table = rate_table(flags, "clinician_id", ["recovered"]).set_index("clinician_id")
    assert (
        table.loc["a", "n"] == 0 and math.isnan(table.loc["a", "rate"]) and math.isnan(table.loc["a", "low"])
    )


# -- funnel limits ----------------------------------------------------------------------------------------
def test_normal_funnel_limits_by_hand() -> None:
    # p0 = 0.2, n = 25: SE = √(0.2·0.8/25) = √0.0064 = 0.08.
    # 95 %:   0.2 ± 1.959964·0.08 = 0.2 ± 0.15679712 → 0.04320288, 0.35679712.
    # 99.8 %: 0.2 ± 3.090232·0.08 = 0.2 ± 0.24721856 → −0.04721856 clipped to 0, 0.44721856.
    frame = funnel_limits([25], 0.2, method="normal")
    at95, at998 = limits_at(frame, 0.95).loc[25], limits_at(frame, 0.998).loc[25]
    assert at95["lower"] == pytest.approx(0.04320288, abs=1e-6)
    assert at95["upper"] == pytest.approx(0.35679712, abs=1e-6)
    assert at998["lower"] == 0.0
    assert at998["upper"] == pytest.approx(0.44721856, abs=1e-6)
    assert set(frame["limit"]) == {"95 %", "99.8 %"}
    assert (frame["target"] == 0.2).all()
    assert "normal approximation" in frame.attrs["method"]


def test_exact_funnel_limits_by_hand() -> None:
    # R ~ Binomial(25, 0.2). Lower 95 % limit, q = 0.025:
    #   P(R = 0) = 0.8^25 = 0.00377789;  P(R ≤ 1) = 0.8^25 + 25·0.2·0.8^24 = 0.00377789 + 0.02361183 = 0.02738973
    #   so r_q = 1 (the first r with P(R ≤ r) ≥ 0.025), and Spiegelhalter's interpolation
    #   α = (0.02738973 − 0.025) / (0.02738973 − 0.00377789) = 0.00238973 / 0.02361183 = 0.101209,
    #   limit = (1 − 0.101209) / 25 = 0.035952.
    # Lower 99.8 %, q = 0.001: P(R = 0) = 0.00378 ≥ 0.001, r_q = 0, α = (0.00378 − 0.001)/0.00378 = 0.7353,
    #   limit = −0.7353/25 < 0, clipped to 0.
    # Upper 95 %, q = 0.975, from a printed cumulative binomial table (n = 25, p = 0.20):
    #   P(R ≤ 8) = 0.9532, P(R ≤ 9) = 0.9827 → r_q = 9, α = (0.9827 − 0.975)/(0.9827 − 0.9532) = 0.261,
    #   limit = (9 − 0.261)/25 = 0.3496 (table rounding: ±0.0005).
    p_0, p_le1 = 0.8**25, 0.8**25 + 25 * 0.2 * 0.8**24
    alpha = (p_le1 - 0.025) / (p_le1 - p_0)
    frame = funnel_limits([25], 0.2)
    at95, at998 = limits_at(frame, 0.95).loc[25], limits_at(frame, 0.998).loc[25]
    assert at95["lower"] == pytest.approx((1 - alpha) / 25, abs=1e-9)
    assert at95["lower"] == pytest.approx(0.035952, abs=1e-6)
    assert at998["lower"] == 0.0
    assert at95["upper"] == pytest.approx(0.3496, abs=5e-4)
    assert "exact binomial" in frame.attrs["method"]


def test_exact_upper_limit_small_n_by_hand() -> None:
    # n = 5, p0 = 0.2, 99.8 % upper (q = 0.999): P(R ≥ 4) = 5·0.2⁴·0.8 + 0.2⁵ = 0.0064 + 0.00032 = 0.00672,
    # so P(R ≤ 3) = 0.99328 < 0.999 ≤ P(R ≤ 4) = 1 − 0.2⁵ = 0.99968 and r_q = 4;
    # α = (0.99968 − 0.999)/(0.99968 − 0.99328) = 0.00068/0.0064 = 0.10625, limit = (4 − 0.10625)/5 = 0.77875.
    # 4/5 = 0.8 lies above it, although an in-control clinician scores 4 or 5 with probability 0.67 %.
    at998 = limits_at(funnel_limits([5], 0.2), 0.998).loc[5]
    assert at998["upper"] == pytest.approx(0.77875, abs=1e-9)
    # 95 % upper: P(R ≤ 2) = 0.94208, P(R ≤ 3) = 0.99328 → r_q = 3, α = 0.01828/0.0512 = 0.357, limit 0.5286:
    # 3/5 = 0.6 is above 95 %, 2/5 = 0.4 inside.
    got = funnel_position([0.8, 0.6, 0.4], [5, 5, 5], target=0.2)
    assert got.tolist() == ["above 99.8 %", "above 95 %", "inside"]


@pytest.mark.parametrize("p0", [0.05, 0.2, 0.5, 0.83])
def test_exact_funnel_limits_against_scipy_quantiles(p0: float) -> None:
    n = np.arange(1, 301)
    frame = funnel_limits(n, p0)
    for level in (0.95, 0.998):
        at = limits_at(frame, level)
        for q, side in (((1 - level) / 2, "lower"), (1 - (1 - level) / 2, "upper")):
            r = stats.binom.ppf(q, n, p0)  # smallest r with P(R ≤ r) ≥ q
            f_r, f_below = stats.binom.cdf(r, n, p0), stats.binom.cdf(r - 1, n, p0)
            expected = np.clip((r - (f_r - q) / (f_r - f_below)) / n, 0, 1)
            np.testing.assert_allclose(at[side].to_numpy(), expected, atol=1e-12)
            # The interpolated limit lies between the neighbouring whole-count proportions.
            assert np.all(at[side].to_numpy() <= r / n + 1e-12)
            assert np.all(at[side].to_numpy() >= np.clip((r - 1) / n, 0, 1) - 1e-12)


def test_exact_limits_approach_normal_for_large_n() -> None:
    n = np.array([2000, 10000])
    exact, normal = funnel_limits(n, 0.2), funnel_limits(n, 0.2, method="normal")
    np.testing.assert_allclose(exact["upper"], normal["upper"], atol=2e-3)
    np.testing.assert_allclose(exact["lower"], normal["lower"], atol=2e-3)


def test_funnel_limits_shape_and_edges() -> None:
    grid = funnel_n_grid(1000, points=50)
    assert grid[0] == 1 and grid[-1] == 1000 and np.all(np.diff(grid) > 0) and grid.dtype.kind == "i"
    assert list(funnel_n_grid(12)) == list(range(1, 13))
    frame = funnel_limits(grid, 0.3)
    assert list(frame.columns) == ["n", "level", "limit", "target", "lower", "upper", "method"]
    assert len(frame) == 2 * len(grid)
    # The funnel narrows as n grows: upper limits fall, lower limits rise (weakly, clipped at 0).
    at = limits_at(frame, 0.998)
    assert at["upper"].is_monotonic_decreasing or np.all(np.diff(at["upper"]) <= 1e-12)
    assert np.all(np.diff(at["lower"]) >= -1e-12)
    zero = funnel_limits([0, 10], 0.3)
    assert zero.loc[zero["n"] == 0, ["lower", "upper"]].isna().all().all()
    with pytest.raises(ValueError):
        funnel_limits([2.5], 0.3)


def test_mean_funnel_limits_by_hand() -> None:
    # target 0, sd 1, n = 16: 95 % ±1.959964/4 = ±0.48999; 99.8 % ±3.090232/4 = ±0.772558.
    frame = funnel_limits_mean([16], 0.0, 1.0)
    at95, at998 = limits_at(frame, 0.95).loc[16], limits_at(frame, 0.998).loc[16]
    assert at95["upper"] == pytest.approx(Z95 / 4, abs=1e-6) and at95["lower"] == pytest.approx(
        -Z95 / 4, abs=1e-6
    )
    assert at998["upper"] == pytest.approx(Z998 / 4, abs=1e-6)
    assert at998["lower"] == pytest.approx(-Z998 / 4, abs=1e-6)


def test_funnel_position_for_rates_by_hand() -> None:
    # Normal limits at p0 = 0.2, n = 25 (see above): 95 % 0.0432–0.3568, 99.8 % 0–0.4472.
    # 12/25 = 0.48 > 0.4472: above 99.8 %. 10/25 = 0.40: above 95 % only. 5/25: inside.
    # 0/25 = 0 < 0.0432 but not below the 99.8 % limit clipped at 0: below 95 %.
    value = pd.Series([0.48, 0.40, 0.20, 0.0], index=["w", "x", "y", "z"])
    got = funnel_position(value, 25, target=0.2, method="normal")
    assert list(got) == ["above 99.8 %", "above 95 %", "inside", "below 95 %"]
    assert list(got.index) == ["w", "x", "y", "z"]
    assert list(got.cat.categories) == ["above 99.8 %", "above 95 %", "inside", "below 95 %", "below 99.8 %"]
    assert got.cat.ordered
    # Exact limits: lower 95 % = 0.035952 (above), 0/25 is below it; a missing rate or n = 0 has no position.
    exact = funnel_position([0.0, np.nan, 0.5], [25, 25, 0], target=0.2)
    assert exact.iloc[0] == "below 95 %" and exact.iloc[1:].isna().all()


def test_funnel_position_for_means_and_per_row_targets() -> None:
    # target 0, sd 1, n 16: limits ±0.48999 and ±0.772558 (hand values above).
    got = funnel_position([0.8, 0.5, 0.48, -0.6, -0.78], 16, target=0.0, sd=1.0)
    assert list(got) == ["above 99.8 %", "above 95 %", "inside", "below 95 %", "below 99.8 %"]
    # One target per row, as for a rate table with several measures: 0.6 is far above a 0.1 target at n = 40
    # and inside around 0.55.
    both = funnel_position([0.6, 0.6], [40, 40], target=[0.1, 0.55])
    assert list(both) == ["above 99.8 %", "inside"]
    assert funnel_positions() == ["above 99.8 %", "above 95 %", "inside", "below 95 %", "below 99.8 %"]


# -- effect sizes -----------------------------------------------------------------------------------------
def caseload_data() -> pd.DataFrame:
    """PHQ-9-like (lower is better): improvement = intake − latest, built as 0.5·intake − 2 + e.

    A (mild)    intakes 10 12 14 16 (mean 13), e = +1 −1 −1 +1 → improvements 4 3 4 7   (mean 4.5)
    B (medium)  intakes 14 16 18 20 (mean 17), e = +1 −1 −1 +1 → improvements 6 5 6 9   (mean 6.5)
    C (severe)  intakes 18 20 22 24 (mean 21), e = +1 −1 −1 +1 → improvements 8 7 8 11  (mean 8.5)
    Within each clinician e sums to 0 and is orthogonal to intake (10 − 12 − 14 + 16 = 0), so OLS over all
    12 episodes recovers slope 0.5 and intercept −2 exactly and the residuals are e.
    """
    intake = [10, 12, 14, 16, 14, 16, 18, 20, 18, 20, 22, 24]
    e = [1, -1, -1, 1] * 3
    return pd.DataFrame(
        {
            "episode_id": [f"E{i}" for i in range(12)],
            "clinician_id": list("AAAABBBBCCCC"),
            "instrument": "PHQ-9",
            "intake": [float(x) for x in intake],
            "improvement": [0.5 * x - 2 + r for x, r in zip(intake, e, strict=True)],
        }
    )


def test_effect_sizes_by_hand() -> None:
    # Service intake SD: mean 17, deviations −7 −5 −3 −1 −3 −1 1 3 1 3 5 7, squares sum to 188,
    # SD = √(188/11) = 4.13411.
    sd = math.sqrt(188 / 11)
    out = effect_sizes(caseload_data())
    assert list(out.columns) == list(EFFECT_SIZE_COLUMNS)
    assert list(out.index) == ["A", "B", "C"] and out.index.name == "clinician_id"
    assert out.attrs["sd_intake"] == pytest.approx(sd, abs=TOL)
    assert out.attrs["coefficients"]["intercept"] == pytest.approx(-2.0, abs=TOL)
    assert out.attrs["coefficients"]["intake"] == pytest.approx(0.5, abs=TOL)
    # Service mean improvement (4 + 3 + 4 + 7 + 6 + 5 + 6 + 9 + 8 + 7 + 8 + 11) / 12 = 78 / 12 = 6.5.
    assert out.attrs["service_mean_improvement"] == pytest.approx(6.5, abs=TOL)
    assert list(out["n"]) == [4, 4, 4]
    np.testing.assert_allclose(out["mean_intake"], [13, 17, 21], atol=TOL)
    np.testing.assert_allclose(out["mean_improvement"], [4.5, 6.5, 8.5], atol=TOL)
    # Raw ES = mean improvement / SD: 4.5/4.13411 = 1.0885, 6.5/4.13411 = 1.5723, 8.5/4.13411 = 2.0561.
    np.testing.assert_allclose(out["es"], [4.5 / sd, 6.5 / sd, 8.5 / sd], atol=TOL)
    # Regression to the mean: every mean residual is 0, so every clinician's adjusted improvement is the
    # service's 6.5 and SAES = 6.5 / 4.13411 = 1.5723 — C's raw advantage (2.06 vs 1.09) disappears.
    np.testing.assert_allclose(out["adjusted_improvement"], [6.5, 6.5, 6.5], atol=TOL)
    np.testing.assert_allclose(out["saes"], [6.5 / sd] * 3, atol=TOL)
    assert out.loc["C", "es"] > out.loc["A", "es"]
    # Intervals: each clinician's improvements deviate −0.5 −1.5 −0.5 +2.5 from the mean: SS 9, SD √3;
    # ES ± t(3)·√3/√4 / SD. Residuals +1 −1 −1 +1: SS 4, SD √(4/3); SAES ± t(3)·√(4/3)/2 / SD.
    es_half = T3_975 * math.sqrt(3) / 2 / sd
    saes_half = T3_975 * math.sqrt(4 / 3) / 2 / sd
    np.testing.assert_allclose(out["es_high"] - out["es"], [es_half] * 3, atol=1e-6)
    np.testing.assert_allclose(out["es"] - out["es_low"], [es_half] * 3, atol=1e-6)
    np.testing.assert_allclose(out["saes_high"] - out["saes"], [saes_half] * 3, atol=1e-6)
    np.testing.assert_allclose(out["saes"] - out["saes_low"], [saes_half] * 3, atol=1e-6)
    assert (out["method"] == out.attrs["method"]).all()


def test_saes_keeps_a_real_difference_between_equal_caseloads() -> None:
    # A and B both see intakes 10 14 18 22 (SD: deviations ±6 ±2 twice, SS 160, SD = √(160/7) = 4.78091).
    # A improves 0.5·intake − 2 + (1 −1 −1 1) = 4 4 6 10 (mean 6); B improves 2 more: 6 6 8 12 (mean 8).
    # Equal mean intakes, so the slope stays 0.5 and the intercept is 7 − 0.5·16 = −1; A's residuals are
    # 0 −2 −2 0 (mean −1), B's 2 0 0 2 (mean +1): adjusted 7 − 1 = 6 and 7 + 1 = 8, as the raw means.
    intake = [10.0, 14.0, 18.0, 22.0] * 2
    gain = [4.0, 4.0, 6.0, 10.0, 6.0, 6.0, 8.0, 12.0]
    out = effect_sizes(
        pd.DataFrame({"clinician_id": list("AAAABBBB"), "intake": intake, "improvement": gain})
    )
    sd = math.sqrt(160 / 7)
    np.testing.assert_allclose(out["saes"], [6 / sd, 8 / sd], atol=TOL)
    np.testing.assert_allclose(out["es"], [6 / sd, 8 / sd], atol=TOL)
    assert out.attrs["coefficients"]["intercept"] == pytest.approx(-1.0, abs=TOL)


def test_saes_with_a_case_mix_covariate() -> None:
    # C's clients are all 'complex' and improve 2 points more (C: 10 9 10 13, mean 10.5). Intake alone
    # leaves C ahead; adding the covariate, the fit is exact again (coefficient 2) and all residual means
    # are 0: every SAES = service mean / SD = (18 + 26 + 42) / 12 / √(188/11) = 7.1667 / 4.13411.
    data = caseload_data()
    data["complex"] = (data["clinician_id"] == "C").astype(float)
    data["improvement"] += 2 * data["complex"]
    sd = math.sqrt(188 / 11)
    intake_only = effect_sizes(data)
    assert intake_only.loc["C", "saes"] > intake_only.loc["A", "saes"] + 0.1
    adjusted = effect_sizes(data, covariates=["complex"])
    assert adjusted.attrs["coefficients"]["complex"] == pytest.approx(2.0, abs=TOL)
    np.testing.assert_allclose(adjusted["saes"], [86 / 12 / sd] * 3, atol=TOL)
    assert "intake + complex" in adjusted.attrs["method"]


def test_effect_sizes_inputs() -> None:
    data = caseload_data()
    # A given SD replaces the service's: ES = 4.5 / 5.
    assert effect_sizes(data, sd_intake=5.0).loc["A", "es"] == pytest.approx(0.9, abs=TOL)
    # Rows missing the improvement are left out; one episode gives no interval.
    extra = pd.DataFrame(
        {
            "clinician_id": ["D", "D"],
            "instrument": "PHQ-9",
            "intake": [15.0, 16.0],
            "improvement": [3.0, np.nan],
        }
    )
    out = effect_sizes(pd.concat([data, extra], ignore_index=True))
    assert out.loc["D", "n"] == 1 and np.isnan(out.loc["D", "es_low"]) and np.isfinite(out.loc["D", "es"])
    mixed = data.assign(instrument=["PHQ-9"] * 11 + ["GAD-7"])
    with pytest.raises(ValueError, match="per instrument"):
        effect_sizes(mixed)


def test_effect_size_episodes_applies_the_section_10_filter() -> None:
    change = pd.DataFrame(
        {
            "episode_id": ["E1", "E2", "E3", "E4", "E5", "E1"],
            "instrument": ["ORS", "ORS", "ORS", "ORS", "ORS", "SRS"],
            "n_ratings": [5, 1, 6, 4, 3, 5],
            "clinical_pre": pd.array([True, True, False, True, pd.NA, True], dtype="boolean"),
        }
    )
    end = pd.DataFrame(
        {"episode_id": ["E1", "E2", "E3", "E4", "E5"], "closed": [True, True, True, False, True]}
    )
    # E2 one rating, E3 non-clinical intake, E4 still open, E5 unknown intake range, the SRS row another instrument.
    assert list(effect_size_episodes(change, end, "ORS")["episode_id"]) == ["E1"]


# -- shrinkage --------------------------------------------------------------------------------------------
BALANCED = pd.DataFrame(
    {
        "clinician_id": list("AAAABBBBCCCC"),
        # A 1 5 3 3 (mean 3), B 2 6 4 4 (mean 4), C 3 7 5 5 (mean 5); each SS within = 4 + 4 + 0 + 0 = 8.
        "improvement": [1.0, 5, 3, 3, 2, 6, 4, 4, 3, 7, 5, 5],
    }
)


def test_shrinkage_balanced_by_hand() -> None:
    # N = 12, k = 3, n = 4. SSW = 24, MSW = 24/9 = 8/3 = σ². Grand mean 4; SSB = 4·(1 + 0 + 1) = 8,
    # MSB = 8/2 = 4. τ² = (MSB − MSW)/n = (4 − 8/3)/4 = 1/3. ICC = (1/3)/(1/3 + 8/3) = 1/9.
    # Shrinkage factor B = τ²/(τ² + σ²/n) = (1/3)/(1/3 + 2/3) = 1/3.
    # EB: 4 + (3 − 4)/3 = 11/3, 4, 4 + (5 − 4)/3 = 13/3.
    # Posterior variance: B·σ²/n + (1 − B)²·Var(μ̂), Var(μ̂) = (τ² + σ²/n)/k = 1/3:
    #   (1/3)(2/3) + (4/9)(1/3) = 2/9 + 4/27 = 10/27.
    fit = shrunken_estimates(BALANCED["improvement"], BALANCED["clinician_id"])
    table = fit.table
    assert list(table.columns) == list(SHRINKAGE_COLUMNS)
    assert list(table.index) == ["A", "B", "C"] and table.index.name == "clinician_id"
    assert fit.sigma2 == pytest.approx(8 / 3, abs=TOL)
    assert fit.tau2 == pytest.approx(1 / 3, abs=TOL)
    assert fit.icc == pytest.approx(1 / 9, abs=TOL)
    assert fit.grand_mean == pytest.approx(4.0, abs=TOL)
    np.testing.assert_allclose(table["raw_mean"], [3, 4, 5], atol=TOL)
    np.testing.assert_allclose(table["shrinkage_factor"], [1 / 3] * 3, atol=TOL)
    np.testing.assert_allclose(table["eb_estimate"], [11 / 3, 4, 13 / 3], atol=TOL)
    np.testing.assert_allclose(table["posterior_sd"], [math.sqrt(10 / 27)] * 3, atol=TOL)
    np.testing.assert_allclose(
        table["high"] - table["eb_estimate"], [Z95 * math.sqrt(10 / 27)] * 3, atol=1e-6
    )
    assert table.attrs["icc"] == fit.icc and "method of moments" in fit.method


def test_shrinkage_matches_statsmodels_mixedlm_when_balanced() -> None:
    smf = pytest.importorskip("statsmodels.formula.api")
    ref = smf.mixedlm("improvement ~ 1", BALANCED, groups=BALANCED["clinician_id"]).fit(reml=True)
    fit = shrunken_estimates(BALANCED["improvement"], BALANCED["clinician_id"])
    # Balanced one-way design: REML equals the ANOVA estimator when positive (up to the optimiser).
    assert fit.tau2 == pytest.approx(float(ref.cov_re.iloc[0, 0]), rel=1e-3)
    assert fit.sigma2 == pytest.approx(ref.scale, rel=1e-3)
    blup = ref.fe_params["Intercept"] + np.array([ref.random_effects[c].iloc[0] for c in "ABC"])
    np.testing.assert_allclose(fit.table["eb_estimate"], blup, atol=1e-3)
    # MixedLM's conditional variance of u_j treats the fixed mean as known: B·σ²/n = (1/3)(2/3) = 2/9.
    conditional = [float(np.asarray(ref.random_effects_cov[c])[0, 0]) for c in "ABC"]
    np.testing.assert_allclose(conditional, [2 / 9] * 3, atol=1e-3)


def test_shrinkage_unbalanced_by_hand() -> None:
    # A 1 3 (n 2, mean 2, SS 2); B 3 5 4 4 (n 4, mean 4, SS 2); C 5 7 6 6 5 7 (n 6, mean 6, SS 4).
    # N = 12, k = 3. σ² = MSW = 8/9. Grand mean (4 + 16 + 36)/12 = 14/3.
    # SSB = 2(2 − 14/3)² + 4(4 − 14/3)² + 6(6 − 14/3)² = 2·64/9 + 4·4/9 + 6·16/9 = 240/9 = 80/3; MSB = 40/3.
    # n₀ = (N − Σn²/N)/(k − 1) = (12 − 56/12)/2 = 11/3. τ² = (40/3 − 8/9)/(11/3) = (112/9)(3/11) = 112/33.
    values = [1.0, 3, 3, 5, 4, 4, 5, 7, 6, 6, 5, 7]
    groups = ["A"] * 2 + ["B"] * 4 + ["C"] * 6
    fit = shrunken_estimates(values, groups)
    tau2, sigma2 = 112 / 33, 8 / 9
    assert fit.sigma2 == pytest.approx(sigma2, abs=TOL)
    assert fit.tau2 == pytest.approx(tau2, abs=TOL)
    assert fit.icc == pytest.approx(tau2 / (tau2 + sigma2), abs=TOL)
    n = np.array([2.0, 4.0, 6.0])
    factor = tau2 / (tau2 + sigma2 / n)
    np.testing.assert_allclose(fit.table["shrinkage_factor"], factor, atol=TOL)
    # The GLS grand mean weights each clinician by 1/(τ² + σ²/n).
    w = 1 / (tau2 + sigma2 / n)
    mu = float(np.sum(w * [2.0, 4.0, 6.0]) / np.sum(w))
    np.testing.assert_allclose(
        fit.table["eb_estimate"], mu + factor * (np.array([2.0, 4.0, 6.0]) - mu), atol=TOL
    )
    # Fewer episodes, more shrinkage: the factor (weight on the clinician's own mean) grows with n.
    assert factor[0] < factor[1] < factor[2]


def test_shrinkage_pulls_small_caseloads_harder_and_keeps_order() -> None:
    rng = np.random.default_rng(7)
    sizes = rng.integers(3, 60, size=30)
    truth = rng.normal(0, 0.4, size=30)
    groups = np.repeat([f"T{i:02d}" for i in range(30)], sizes)
    values = np.repeat(truth, sizes) + rng.normal(0, 1, size=sizes.sum())
    fit = shrunken_estimates(values, groups)
    t = fit.table
    assert fit.tau2 > 0
    distance_raw = (t["raw_mean"] - fit.grand_mean).abs()
    distance_eb = (t["eb_estimate"] - fit.grand_mean).abs()
    assert np.all(distance_eb <= distance_raw + 1e-12)  # every estimate is pulled towards the grand mean
    # Same side of the grand mean, and at equal n the order of the raw means is kept.
    assert np.all(np.sign(t["eb_estimate"] - fit.grand_mean) == np.sign(t["raw_mean"] - fit.grand_mean))
    pulled = 1 - t["shrinkage_factor"]
    assert np.all(np.diff(pulled[t["n"].sort_values().index].to_numpy()) <= 1e-12)
    same_n = shrunken_estimates(
        np.concatenate([values, [5.0, 5.0, 0.0, 0.0]]), np.concatenate([groups, ["X", "X", "Y", "Y"]])
    )
    assert same_n.table.loc["X", "eb_estimate"] > same_n.table.loc["Y", "eb_estimate"]


def test_shrinkage_with_no_between_clinician_variance() -> None:
    # A 1 5 3 3 (mean 3), B 1.5 5.5 3.5 3.5 (mean 3.5): SSW = 16, MSW = 16/6 = 8/3; grand mean 3.25,
    # SSB = 4·(0.25² + 0.25²) = 0.5, MSB = 0.5 < MSW, so τ² = 0: everyone at the grand mean 3.25, ICC 0,
    # posterior SD = √(σ²/N) = √((8/3)/8) = √(1/3).
    values = [1.0, 5, 3, 3, 1.5, 5.5, 3.5, 3.5]
    fit = shrunken_estimates(values, list("AAAABBBB"))
    assert fit.tau2 == 0.0 and fit.icc == 0.0
    np.testing.assert_allclose(fit.table["eb_estimate"], [3.25, 3.25], atol=TOL)
    np.testing.assert_allclose(fit.table["shrinkage_factor"], [0.0, 0.0], atol=TOL)
    np.testing.assert_allclose(fit.table["posterior_sd"], [math.sqrt(1 / 3)] * 2, atol=TOL)


def test_shrinkage_not_estimable() -> None:
    fit = shrunken_estimates([1.0, 2.0, 3.0], ["A", "A", "A"])  # one clinician
    assert math.isnan(fit.icc) and fit.table["eb_estimate"].isna().all()
    assert list(fit.table["raw_mean"]) == [2.0]


# -- planted truth ----------------------------------------------------------------------------------------
def test_planted_better_clinicians_stand_out() -> None:
    # 40 clinicians × 40 episodes, improvement ~ N(0, 1); clinicians P00 and P01 shifted by +1 SD.
    rng = np.random.default_rng(20240611)
    clinicians = [f"P{i:02d}" for i in range(40)]
    shift = np.where(np.isin(clinicians, ["P00", "P01"]), 1.0, 0.0)
    groups = np.repeat(clinicians, 40)
    gain = np.repeat(shift, 40) + rng.normal(0.0, 1.0, size=1600)
    data = pd.DataFrame({"clinician_id": groups, "improvement": gain})

    per = data.groupby("clinician_id")["improvement"].agg(["mean", "size"])
    position = funnel_position(per["mean"], per["size"], target=gain.mean(), sd=gain.std(ddof=1))
    # Limits at n = 40: ±3.09·1/√40 = ±0.49 around ~0.05; a +1 shift lies about 6 standard errors out.
    assert position["P00"] == "above 99.8 %" and position["P01"] == "above 99.8 %"
    ordinary = position.drop(["P00", "P01"])
    assert (~ordinary.isin(["above 99.8 %", "below 99.8 %"])).mean() >= 0.90

    fit = shrunken_estimates(data["improvement"], data["clinician_id"])
    top_two = fit.table["eb_estimate"].nlargest(2).index
    assert set(top_two) == {"P00", "P01"}
    assert set(fit.table.index[fit.table["low"] > fit.grand_mean]) >= {"P00", "P01"}
    # True between-clinician variance: 2 of 40 shifted by 1 → (2/40)(38/40) = 0.0475, ICC ≈ 0.045.
    assert 0.01 < fit.icc < 0.15
    smf = pytest.importorskip("statsmodels.formula.api")
    ref = smf.mixedlm("improvement ~ 1", data, groups=data["clinician_id"]).fit(reml=True)
    assert fit.tau2 == pytest.approx(float(ref.cov_re.iloc[0, 0]), rel=1e-2)


# -- ranks ------------------------------------------------------------------------------------------------
def test_rank_eligible_leaves_small_caseloads_unranked() -> None:
    score = pd.Series([0.9, 1.5, 0.8, 1.2, np.nan, 0.8], index=list("abcdef"))
    n = pd.Series([10, 4, 5, 3, 20, 7], index=list("abcdef"))
    # Eligible (n ≥ 5, score known): a 0.9, c 0.8, f 0.8. b (1.5) and d (1.2) score higher but are unranked.
    rank = rank_eligible(score, n)
    assert MIN_EPISODES_RANKED == 5
    assert rank["a"] == 1 and rank["c"] == 2 and rank["f"] == 2  # ties share the best rank
    assert rank[["b", "d", "e"]].isna().all()
    # Lower is better (e.g. dropout rate): c and f first.
    low = rank_eligible(score, n, higher_is_better=False)
    assert list(low[["a", "c", "f"]]) == [3, 1, 1]
    assert list(np.isnan(rank_eligible([1.0, 2.0], [4, 4], minimum=4))) == [False, False]


# -- scale ------------------------------------------------------------------------------------------------
def test_two_thousand_clinicians_in_one_pass() -> None:
    """Shapes for a 2,000-clinician comparison (speed is measured by the benchmark, not here)."""
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 40, size=2000)
    groups = np.repeat([f"C{i:04d}" for i in range(2000)], sizes)
    intake = rng.normal(19, 7, size=sizes.sum())
    data = pd.DataFrame(
        {
            "clinician_id": groups,
            "intake": intake,
            "improvement": 0.3 * (25 - intake) + rng.normal(0, 5, size=sizes.sum()),
            "recovered": rng.random(sizes.sum()) < 0.3,
        }
    )
    es = effect_sizes(data)
    fit = shrunken_estimates(data["improvement"], data["clinician_id"])
    rates = rate_table(data, "clinician_id", ["recovered"])
    position = funnel_position(rates["rate"], rates["n"], target=rates["service_rate"])
    ranks = rank_eligible(es["saes"], es["n"])
    assert len(es) == len(fit.table) == len(rates) == len(position) == len(ranks) == 2000
