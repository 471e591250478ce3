"""Comparing clinicians fairly (docs/methods.md §10): rates with Wilson intervals, funnel plots, pre–post and
severity-adjusted effect sizes, empirical-Bayes shrinkage with the therapist-effect ICC, and ranks only for
clinicians with enough closed episodes.

Every function works on all clinicians at once (numpy and pandas group-bys, no per-clinician Python loop),
so a service of 2,000 clinicians compares in well under a second. Each result carries the rule in force in
``.attrs["method"]`` (and, for per-clinician tables, a ``method`` column), as the other metrics do.

Methods, with the reasons for each choice:

- **Rates** (:func:`wilson_interval`, :func:`rate_table`): the Wilson score interval without continuity
  correction (Wilson 1927; Newcombe 1998, Stat Med 17, method 3). Unlike the Wald interval it stays inside
  [0, 1] and keeps close to its nominal coverage for the small n and extreme rates of one clinician's
  caseload.
- **Funnel plots** (:func:`funnel_limits`, :func:`funnel_limits_mean`, :func:`funnel_position`):
  Spiegelhalter (2005), Stat Med 24: 1185–1202. Control limits at 95 % and 99.8 % around the service's
  rate or mean; a clinician outside them is the only kind of "different" there is. For proportions the
  default is Spiegelhalter's exact binomial limits with his interpolation (see :func:`funnel_limits`),
  which he recommends when the numbers are small, as one clinician's are; the normal approximation is
  available too. Continuous indicators (mean improvement, effect size) use ``target ± z·sd/√n``.
  No over-dispersion adjustment is made: with a therapist effect of about 5 % (Baldwin & Imel 2013) some
  clinicians will lie just outside the 95 % limits by chance alone; the 99.8 % limit is the one to act on.
- **Effect sizes** (:func:`effect_sizes`): pre–post ES = mean improvement / SD of intake, and the ACORN
  severity-adjusted ES (Brown, Simon, Cameron & Minami 2015): improvement regressed on intake by OLS across
  the service, SAES = (service mean improvement + the clinician's mean residual) / SD of intake.
- **Shrinkage** (:func:`shrunken_estimates`): a random-intercept model of improvement by clinician, fitted
  by the closed-form one-way random-effects ANOVA (method of moments for unbalanced groups), with
  empirical-Bayes (BLUP) estimates, their intervals and the therapist-effect ICC.
- **Minimum n** (:func:`rank_eligible`): fewer than 5 closed episodes, no rank (ACORN's rule).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

LEVELS: tuple[float, ...] = (0.95, 0.998)
"""Funnel control limits: about 2 and 3 standard errors (Spiegelhalter 2005), 'alert' and 'alarm'."""

MIN_EPISODES_RANKED: int = 5
"""Closed episodes a clinician needs to be ranked (ACORN: at least 5 a year; docs/methods.md §10)."""

FunnelMethod = Literal["exact", "normal"]

EFFECT_SIZE_COLUMNS: tuple[str, ...] = (
    "n",
    "mean_intake",
    "mean_improvement",
    "adjusted_improvement",
    "es",
    "es_low",
    "es_high",
    "saes",
    "saes_low",
    "saes_high",
    "method",
)
SHRINKAGE_COLUMNS: tuple[str, ...] = (
    "n",
    "raw_mean",
    "eb_estimate",
    "low",
    "high",
    "posterior_sd",
    "shrinkage_factor",
)
RATE_COLUMNS: tuple[str, ...] = ("measure", "count", "n", "rate", "low", "high", "service_rate", "method")


# -- small helpers ----------------------------------------------------------------------------------------
def _z(level: float) -> float:
    """Two-sided standard-normal critical value for a central ``level`` interval."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")
    return float(stats.norm.ppf(0.5 + level / 2.0))


def _percent(level: float) -> str:
    """0.95 → '95 %', 0.998 → '99.8 %' (the labels the page shows)."""
    return f"{level * 100:g} %"


def _index_of(*candidates: object) -> pd.Index | None:
    """The index of the first pandas Series among the inputs, so results line up with the caller's rows."""
    for candidate in candidates:
        if isinstance(candidate, pd.Series):
            return candidate.index
    return None


def _shaped(
    values: np.ndarray, index: pd.Index | None, name: str | None = None
) -> np.ndarray | pd.Series | float:
    """A Series on the caller's index, a float for scalar input, an array otherwise."""
    if index is not None:
        return pd.Series(values, index=index, name=name)
    if values.ndim == 0:
        return float(values)
    return values


# -- rates ------------------------------------------------------------------------------------------------
def wilson_interval(
    successes: ArrayLike, n: ArrayLike, level: float = 0.95
) -> tuple[np.ndarray | pd.Series | float, np.ndarray | pd.Series | float]:
    """Wilson score interval for a proportion ``successes / n`` (no continuity correction).

    With p = x/n and z the two-sided critical value for ``level``::

        centre = (p + z²/2n) / (1 + z²/n)
        half   = z·√(p(1 − p)/n + z²/4n²) / (1 + z²/n)

    The interval is ``centre ± half``; its lower end is exactly 0 when x = 0 and its upper end exactly 1 when
    x = n (the formula gives these in exact arithmetic; they are set so rounding cannot leave 1e-17). ``n``
    of 0 or missing gives NaN. Vectorised: scalars give floats, a Series gives Series on its index.
    """
    index = _index_of(successes, n)
    x = np.asarray(successes, dtype=float)
    m = np.asarray(n, dtype=float)
    x, m = np.broadcast_arrays(x, m)
    if np.any((x < 0) | (x > m)):
        raise ValueError("successes must lie between 0 and n")
    z = _z(level)
    z2 = z * z
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / m
        scale = 1.0 + z2 / m
        centre = (p + z2 / (2.0 * m)) / scale
        half = z * np.sqrt(p * (1.0 - p) / m + z2 / (4.0 * m * m)) / scale
    low = np.where(x == 0, 0.0, np.clip(centre - half, 0.0, 1.0))
    high = np.where(x == m, 1.0, np.clip(centre + half, 0.0, 1.0))
    undefined = ~(m > 0)
    low = np.where(undefined, np.nan, low)
    high = np.where(undefined, np.nan, high)
    return _shaped(low, index, "low"), _shaped(high, index, "high")


def rate_table(
    flags: pd.DataFrame, group_col: str, rate_cols: Sequence[str], *, level: float = 0.95
) -> pd.DataFrame:
    """Per clinician and measure: count, n, rate and Wilson interval (docs/methods.md §10: rates always with
    both).

    ``flags`` has one row per episode, a ``group_col`` (e.g. ``clinician_id``) and one true/false column per
    measure — e.g. ``reliable_improvement`` and ``reliable_deterioration`` from episode_change.csv,
    ``recovered`` (``category == "recovered"``) and ``dropout`` from episode_end.csv. Booleans, nullable
    booleans or 0/1 are accepted; a missing value (e.g. no reliable change with a single rating) counts in
    neither the count nor n of that measure, so n can differ between measures.

    Returns a tidy frame, one row per clinician and measure (measures in the order given): ``group_col``,
    ``measure``, ``count``, ``n``, ``rate`` (NaN when n is 0), ``low``, ``high`` (Wilson, ``level``),
    ``service_rate`` (the pooled rate of that measure over all clinicians: the funnel's target) and
    ``method``. ``.attrs["service_rate"]`` maps each measure to its service rate.
    """
    missing = [c for c in (group_col, *rate_cols) if c not in flags.columns]
    if missing:
        raise KeyError(f"columns not in flags: {missing}")
    measures = list(rate_cols)
    # One column per measure, as booleans with NA; the loop runs over the few measures, not over clinicians.
    as_bool = pd.DataFrame({c: flags[c].astype("boolean") for c in measures}, index=flags.index)
    hits = as_bool.fillna(False).astype(int)
    valid = as_bool.notna().astype(int)
    keys = flags[group_col]
    counts = hits.groupby(keys, sort=True).sum()
    totals = valid.groupby(keys, sort=True).sum()
    long = pd.DataFrame(
        {
            group_col: np.repeat(counts.index.to_numpy(), len(measures)),
            "measure": np.tile(measures, len(counts)),
            "count": counts.to_numpy().ravel(),
            "n": totals.to_numpy().ravel(),
        }
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        long["rate"] = np.where(long["n"] > 0, long["count"] / long["n"], np.nan)
    long["low"], long["high"] = wilson_interval(long["count"], long["n"], level)
    pooled = counts.sum() / totals.sum().replace(0, np.nan)
    long["service_rate"] = long["measure"].map(pooled).astype(float)
    method = f"Wilson score interval, {_percent(level)} (Newcombe 1998 method 3)"
    long["method"] = method
    long.attrs["method"] = method
    long.attrs["service_rate"] = {m: float(pooled[m]) for m in measures}
    return long


# -- funnel plots -----------------------------------------------------------------------------------------
def funnel_n_grid(n_max: int, *, n_min: int = 1, points: int = 200) -> np.ndarray:
    """Whole numbers of episodes from ``n_min`` to ``n_max`` for drawing a smooth funnel.

    Every integer up to ``points`` values, else about ``points`` values spaced evenly on a log scale (the
    funnel changes fastest at small n), always including both ends. Whole numbers, because the exact
    binomial limits are defined only there.
    """
    if n_max < n_min or n_min < 1:
        raise ValueError("need 1 <= n_min <= n_max")
    if n_max - n_min + 1 <= points:
        return np.arange(n_min, n_max + 1)
    grid = np.unique(np.round(np.geomspace(n_min, n_max, points)).astype(int))
    return np.unique(np.concatenate([[n_min], grid, [n_max]]))


def _binomial_limit(n: np.ndarray, p0: np.ndarray, q: float) -> np.ndarray:
    """Spiegelhalter's interpolated binomial quantile, as a proportion: (r_q − α) / n.

    r_q is the smallest r with P(R ≤ r) ≥ q for R ~ Binomial(n, p0), and
    α = (P(R ≤ r_q) − q) / (P(R ≤ r_q) − P(R ≤ r_q − 1)) ∈ [0, 1) slides the limit between (r_q − 1)/n and
    r_q/n as q moves through the jump of the distribution function at r_q, so the plotted funnel is smooth
    in n instead of a staircase (Spiegelhalter 2005, appendix A.1.1).
    """
    r = stats.binom.ppf(q, n, p0)
    at_r = stats.binom.cdf(r, n, p0)
    below_r = stats.binom.cdf(r - 1.0, n, p0)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = (at_r - q) / (at_r - below_r)
        return (r - alpha) / n


def _proportion_limits(
    n: ArrayLike, p0: ArrayLike, level: float, method: FunnelMethod
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper control limits for a proportion at each n (NaN where n is not positive)."""
    n_v, p_v = np.broadcast_arrays(np.asarray(n, dtype=float), np.asarray(p0, dtype=float))
    if np.any((p_v < 0) | (p_v > 1)):
        raise ValueError("the target rate must lie between 0 and 1")
    usable = (n_v > 0) & np.isfinite(n_v) & np.isfinite(p_v)
    safe_n = np.where(usable, n_v, 1.0)
    safe_p = np.where(usable, p_v, 0.5)
    if method == "normal":
        se = np.sqrt(safe_p * (1.0 - safe_p) / safe_n)
        z = _z(level)
        low, high = safe_p - z * se, safe_p + z * se
    elif method == "exact":
        if np.any(safe_n != np.round(safe_n)):
            raise ValueError("exact binomial limits need whole numbers of episodes")
        tail = (1.0 - level) / 2.0
        low = _binomial_limit(safe_n, safe_p, tail)
        high = _binomial_limit(safe_n, safe_p, 1.0 - tail)
        # A target of exactly 0 or 1 leaves no variation to draw limits around.
        degenerate = (safe_p == 0.0) | (safe_p == 1.0)
        low, high = np.where(degenerate, safe_p, low), np.where(degenerate, safe_p, high)
    else:
        raise ValueError(f"method must be 'exact' or 'normal', got {method!r}")
    low = np.where(usable, np.clip(low, 0.0, 1.0), np.nan)
    high = np.where(usable, np.clip(high, 0.0, 1.0), np.nan)
    return low, high


def _mean_limits(
    n: ArrayLike, target: ArrayLike, sd: ArrayLike, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """``target ± z·sd/√n`` (NaN where n is not positive)."""
    n_v, t_v, s_v = np.broadcast_arrays(
        np.asarray(n, dtype=float), np.asarray(target, dtype=float), np.asarray(sd, dtype=float)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        half = _z(level) * s_v / np.sqrt(n_v)
    usable = n_v > 0
    return np.where(usable, t_v - half, np.nan), np.where(usable, t_v + half, np.nan)


def _limits_frame(
    n: ArrayLike,
    target: float,
    levels: Sequence[float],
    limits: Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]],
    method: str,
) -> pd.DataFrame:
    """One row per n and level: the tidy frame both funnel functions return."""
    n_v = np.atleast_1d(np.asarray(n))
    parts = []
    for level in levels:  # two levels, not a loop over clinicians
        low, high = limits(n_v, level)
        parts.append(
            pd.DataFrame(
                {
                    "n": n_v,
                    "level": float(level),
                    "limit": _percent(level),
                    "target": float(target),
                    "lower": low,
                    "upper": high,
                }
            )
        )
    out = pd.concat(parts, ignore_index=True)
    out["method"] = method
    out.attrs["method"] = method
    return out


def funnel_limits(
    n: ArrayLike, target_rate: float, levels: Sequence[float] = LEVELS, *, method: FunnelMethod = "exact"
) -> pd.DataFrame:
    """Funnel-plot control limits for a proportion around the service rate ``target_rate`` (Spiegelhalter
    2005).

    ``method="normal"``: ``p0 ± z·√(p0(1 − p0)/n)``, clipped to [0, 1]. ``method="exact"`` (default): the
    central ``level`` limits of Binomial(n, p0) divided by n, with Spiegelhalter's interpolation between the
    whole-number quantiles (``(r_q − α)/n``, see :func:`_binomial_limit`), clipped to [0, 1]. He recommends
    the exact limits when n is small, which is the usual case for one clinician (5–40 closed episodes): there
    the normal limits are symmetric where the binomial is not and run below 0. The interpolation makes the
    funnel smooth; it does not make a discrete test exact. With whole counts, lying above an interpolated
    upper limit means a count of r_q or more, which an in-control clinician reaches with probability
    P(R ≥ r_q) — at least the nominal tail, and for very small n several times it (n = 5, p0 = 0.2, 99.8 %:
    0.67 % against 0.1 %); lying below a lower limit means r_q − 1 or fewer, at most the nominal tail.
    Clinicians under :data:`MIN_EPISODES_RANKED` are shown greyed anyway.

    ``n`` is a grid (see :func:`funnel_n_grid`) or the clinicians' own numbers of episodes; whole numbers for
    the exact method. Returns a tidy frame, one row per n and level: ``n``, ``level`` (0.95), ``limit``
    ('95 %'), ``target``, ``lower``, ``upper``, ``method``. NaN limits where n is 0.
    """
    how = (
        "exact binomial with Spiegelhalter's interpolation"
        if method == "exact"
        else "normal approximation p0 ± z·√(p0(1 − p0)/n)"
    )
    description = (
        f"funnel limits {', '.join(_percent(v) for v in levels)} around the service rate {target_rate:.3f} "
        f"({how}; Spiegelhalter 2005)"
    )
    return _limits_frame(
        n,
        target_rate,
        levels,
        lambda n_v, level: _proportion_limits(n_v, target_rate, level, method),
        description,
    )


def funnel_limits_mean(
    n: ArrayLike, target_mean: float, sd: float, levels: Sequence[float] = LEVELS
) -> pd.DataFrame:
    """Funnel-plot control limits for a mean of a continuous indicator: ``target ± z·sd/√n``.

    For mean improvement, ``sd`` is the SD of one episode's improvement across the service (for a mean
    effect size, that SD divided by the SD of intake, the ES's own scale) and ``target_mean`` the service
    mean. The SD is taken as known, as Spiegelhalter does for a normal indicator; with hundreds of episodes
    in the service its own uncertainty is negligible next to a clinician's ±z·sd/√n. Same tidy frame as
    :func:`funnel_limits`.
    """
    description = (
        f"funnel limits {', '.join(_percent(v) for v in levels)} around the service mean {target_mean:.3f}: "
        f"target ± z·{sd:.3f}/√n (Spiegelhalter 2005)"
    )
    return _limits_frame(
        n, target_mean, levels, lambda n_v, level: _mean_limits(n_v, target_mean, sd, level), description
    )


def funnel_positions(levels: Sequence[float] = LEVELS) -> list[str]:
    """The ordered labels of :func:`funnel_position`: 'above 99.8 %', 'above 95 %', 'inside', 'below 95 %',
    'below 99.8 %' for the default levels (outermost above first)."""
    outer_first = sorted(levels, reverse=True)
    return (
        [f"above {_percent(v)}" for v in outer_first]
        + ["inside"]
        + [f"below {_percent(v)}" for v in reversed(outer_first)]
    )


def funnel_position(
    value: ArrayLike,
    n: ArrayLike,
    *,
    target: ArrayLike,
    sd: ArrayLike | None = None,
    levels: Sequence[float] = LEVELS,
    method: FunnelMethod = "exact",
) -> pd.Series:
    """Where each clinician lies on the funnel: 'above 99.8 %', 'above 95 %', 'inside', 'below 95 %' or
    'below 99.8 %' (for the default levels).

    Without ``sd``, ``value`` is a proportion (a rate) and the limits are those of :func:`funnel_limits`
    with ``method``; with ``sd``, ``value`` is a mean (mean improvement, effect size) and the limits are
    those of :func:`funnel_limits_mean`. ``target`` (and ``sd``) may be scalars or one value per row, so a
    whole :func:`rate_table` with several measures is placed in one call (``target=table["service_rate"]``).
    Outside means strictly beyond a limit; a value on it is inside. "Above" is about the number, not about
    better or worse: above on deterioration or dropout is worse, and the page words it so.

    Returns an ordered categorical Series (categories :func:`funnel_positions`), NA where the value is
    missing or n is 0; on the index of ``value`` if it is a Series.
    """
    index = _index_of(value, n)
    v = np.asarray(value, dtype=float)
    n_v = np.asarray(n, dtype=float)
    v, n_v = np.broadcast_arrays(v, n_v)
    outer_first = sorted(levels, reverse=True)
    conditions, labels = [], []
    bounds = {}
    for level in outer_first:
        if sd is None:
            bounds[level] = _proportion_limits(n_v, target, level, method)
        else:
            bounds[level] = _mean_limits(n_v, target, sd, level)
    for level in outer_first:  # outermost first: np.select takes the first condition that holds
        conditions.append(v > bounds[level][1])
        labels.append(f"above {_percent(level)}")
    for level in outer_first:
        conditions.append(v < bounds[level][0])
        labels.append(f"below {_percent(level)}")
    codes_of = {label: code for code, label in enumerate(funnel_positions(levels))}
    codes = np.select(conditions, [codes_of[label] for label in labels], default=codes_of["inside"])
    undefined = np.isnan(v) | np.isnan(bounds[outer_first[0]][0])
    codes = np.where(undefined, -1, codes)
    position = pd.Categorical.from_codes(codes, categories=funnel_positions(levels), ordered=True)
    out = pd.Series(position, index=index, name="funnel_position")
    out.attrs["method"] = f"position against funnel limits {', '.join(_percent(x) for x in levels)} " + (
        "(mean: target ± z·sd/√n)" if sd is not None else f"(proportion: {method})"
    )
    return out


# -- effect sizes -----------------------------------------------------------------------------------------
def effect_size_episodes(change: pd.DataFrame, end: pd.DataFrame, instrument: str) -> pd.DataFrame:
    """The episodes docs/methods.md §10 counts for effect sizes, for one instrument.

    Rows of ``change`` (episode_change.csv) for ``instrument`` with at least two ratings and a clinical-range
    intake (``clinical_pre``), whose episode is closed in ``end`` (episode_end.csv, column ``closed``).
    """
    closed = end.loc[end["closed"].astype("boolean").fillna(False).astype(bool), "episode_id"]
    keep = (
        (change["instrument"] == instrument)
        & (change["n_ratings"] >= 2)
        & change["clinical_pre"].astype("boolean").fillna(False).astype(bool)
        & change["episode_id"].isin(closed)
    )
    return change.loc[keep]


def effect_sizes(
    change: pd.DataFrame,
    *,
    group_col: str = "clinician_id",
    sd_intake: float | None = None,
    covariates: Sequence[str] = (),
    level: float = 0.95,
) -> pd.DataFrame:
    """Pre–post and severity-adjusted effect sizes per clinician, for one instrument (docs/methods.md §10).

    **Input.** One row per episode with ``group_col``, ``intake`` and ``improvement`` (episode_change.csv
    columns; improvement in the better direction), already restricted by the caller to closed episodes with
    at least two ratings and a clinical-range intake of one instrument (:func:`effect_size_episodes` does
    this). Rows missing any used column are left out. Several instruments in ``instrument`` is an error: the
    regression and the SD are per instrument.

    **Pre–post ES** = clinician's mean improvement / SD of intake. The SD (``ddof = 1``) is that of intake
    scores across the *service* (all rows given), not the clinician's own: a common denominator makes the ES
    a rescaling of mean improvement, so clinicians are compared on one yardstick; a clinician's own SD from
    5–20 episodes is unstable, and a clinician whose caseload happens to be homogeneous would look better
    merely for a small SD. ACORN likewise standardises by one intake SD per questionnaire. Pass
    ``sd_intake`` to use another (e.g. episode_change's ``effect_size`` denominator, or a published clinical
    norm SD): restricting to clinical-range intakes narrows the intake SD and inflates every ES equally.

    **Severity-adjusted ES (SAES)**, ACORN (Brown et al. 2015): improvement is regressed on intake (and on
    any numeric ``covariates``; dummy-code categorical case mix first) by OLS across the service;
    SAES = (service mean improvement + clinician's mean residual) / SD of intake. Without covariates the
    adjusted mean improvement is ``mean_improvement − b·(mean_intake − service mean intake)``: a clinician
    whose clients start more severe, and so improve more by regression to the mean, is not credited for it.
    The raw intake works for either scale direction: the slope's sign follows the scale.

    **Intervals** (``level``, t with n − 1 df, since n is often 5–20): ES ± t·SE with SE = SD of the
    clinician's improvements / √n / SD of intake; SAES likewise with the SD of the clinician's residuals.
    The intake SD and the service regression are treated as known (they rest on the whole service's
    episodes). One episode: no interval.

    Returns one row per clinician (index ``group_col``) with the columns in :data:`EFFECT_SIZE_COLUMNS`:
    ``n``, ``mean_intake``, ``mean_improvement``, ``adjusted_improvement``, ``es``, ``es_low``, ``es_high``,
    ``saes``, ``saes_low``, ``saes_high``, ``method``. ``.attrs`` holds ``sd_intake``,
    ``service_mean_improvement``, ``coefficients`` (intercept, intake, covariates) and ``method``.
    """
    columns = [group_col, "intake", "improvement", *covariates]
    missing = [c for c in columns if c not in change.columns]
    if missing:
        raise KeyError(f"columns not in change: {missing}")
    if "instrument" in change.columns and change["instrument"].nunique() > 1:
        raise ValueError("effect sizes are per instrument: pass the episodes of one instrument")
    data = change[columns].dropna()
    intake = data["intake"].to_numpy(dtype=float)
    gain = data["improvement"].to_numpy(dtype=float)
    if sd_intake is None:
        sd_intake = float(np.std(intake, ddof=1)) if intake.size > 1 else np.nan
    sd = float(sd_intake) if sd_intake > 0 else np.nan  # NaN (not inf) when intakes do not vary

    design = np.column_stack([np.ones_like(intake), intake, data[list(covariates)].to_numpy(dtype=float)])
    if gain.size > design.shape[1]:
        coef = np.linalg.lstsq(design, gain, rcond=None)[0]
    else:  # too few episodes to fit the regression: no adjustment possible
        coef = np.full(design.shape[1], np.nan)
    residual = gain - design @ coef
    service_mean = float(gain.mean()) if gain.size else np.nan

    per_episode = pd.DataFrame(
        {"intake": intake, "improvement": gain, "residual": residual}, index=data[group_col].to_numpy()
    )
    per_episode.index.name = group_col
    g = per_episode.groupby(level=0, sort=True)
    out = g.agg(
        n=("improvement", "size"),
        mean_intake=("intake", "mean"),
        mean_improvement=("improvement", "mean"),
        sd_improvement=("improvement", "std"),
        mean_residual=("residual", "mean"),
        sd_residual=("residual", "std"),
    )
    n = out["n"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        t = np.where(n > 1, stats.t.ppf(0.5 + level / 2.0, np.maximum(n - 1.0, 1.0)), np.nan)
    root_n = np.sqrt(n)
    out["adjusted_improvement"] = service_mean + out["mean_residual"]
    out["es"] = out["mean_improvement"] / sd
    es_half = t * out["sd_improvement"] / root_n / sd
    out["es_low"], out["es_high"] = out["es"] - es_half, out["es"] + es_half
    out["saes"] = out["adjusted_improvement"] / sd
    saes_half = t * out["sd_residual"] / root_n / sd
    out["saes_low"], out["saes_high"] = out["saes"] - saes_half, out["saes"] + saes_half

    adjusted_for = " + ".join(["intake", *covariates])
    method = (
        f"pre–post ES = mean improvement / service SD of intake ({sd:.2f}); severity-adjusted ES (ACORN) = "
        f"(service mean improvement + mean residual of improvement ~ {adjusted_for}, OLS) / SD of intake; "
        f"{_percent(level)} t intervals"
    )
    out["method"] = method
    out = out[list(EFFECT_SIZE_COLUMNS)]
    out.attrs.update(
        method=method,
        sd_intake=sd,
        service_mean_improvement=service_mean,
        coefficients=dict(zip(["intercept", "intake", *covariates], map(float, coef), strict=True)),
    )
    return out


# -- shrinkage --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShrunkenEstimates:
    """Empirical-Bayes estimates per clinician and the variance components behind them.

    ``table``: one row per clinician with the columns in :data:`SHRINKAGE_COLUMNS`. ``tau2`` the between-
    clinician variance, ``sigma2`` the within-clinician (episode) variance, ``icc`` = tau2 / (tau2 + sigma2)
    — the therapist effect, the share of outcome variance that lies between clinicians (about 5 % in
    Baldwin & Imel 2013). ``grand_mean`` the estimated service mean the estimates shrink towards.
    """

    table: pd.DataFrame
    icc: float
    tau2: float
    sigma2: float
    grand_mean: float
    method: str


def shrunken_estimates(values: ArrayLike, groups: ArrayLike, *, level: float = 0.95) -> ShrunkenEstimates:
    """Random-intercept model of an outcome by clinician: variance components, the therapist-effect ICC and
    empirical-Bayes (BLUP) estimates with intervals, for a caterpillar plot (docs/methods.md §10).

    Model: y_ij = μ + u_j + e_ij, u_j ~ N(0, τ²), e_ij ~ N(0, σ²); ``values`` one per episode (e.g.
    improvement or per-episode effect size), ``groups`` the clinician of each. Missing values are left out.

    **Variance components**: the one-way random-effects ANOVA (method-of-moments) estimator for unbalanced
    groups (Searle, Casella & McCulloch 1992, ch. 3): with N episodes, k clinicians,
    MSW = Σ(y_ij − ȳ_j)² / (N − k) = σ², MSB = Σ n_j(ȳ_j − ȳ)² / (k − 1), n₀ = (N − Σn_j²/N) / (k − 1),
    τ² = max(0, (MSB − MSW) / n₀). Chosen over an iterative REML fit (statsmodels MixedLM) because it is
    closed form — instant and loop-free for thousands of clinicians, and free of the convergence and
    boundary warnings REML gives when τ² is near 0, which a 5 % therapist effect often is. For balanced
    groups it equals REML whenever REML's τ² is positive; for unbalanced ones it is unbiased, a little less
    efficient.

    **Estimates**: B_j = τ² / (τ² + σ²/n_j) is the *shrinkage factor* — the weight on the clinician's own
    mean (1: no shrinkage; 0: all the way to the grand mean); smaller for clinicians with few episodes.
    μ̂ = Σ w_j ȳ_j / Σ w_j with w_j = 1 / (τ² + σ²/n_j) (the GLS mean), EB_j = μ̂ + B_j(ȳ_j − μ̂). Posterior
    SD² = B_j·σ²/n_j + (1 − B_j)²·Var(μ̂), Var(μ̂) = 1/Σw_j (the prediction error variance of the BLUP,
    so the interval also carries the uncertainty of the grand mean); interval EB_j ± z·SD. τ² and σ² are
    plugged in as known, so intervals are slightly narrow when there are few clinicians (Morris 1983).
    If τ² estimates as 0, every estimate is the grand mean (weighted by n) and the ICC is 0. With fewer
    than two clinicians, or no clinician with two episodes, the components cannot be estimated: NaN.

    Returns :class:`ShrunkenEstimates`; its ``table`` is indexed by clinician with ``n``, ``raw_mean``,
    ``eb_estimate``, ``low``, ``high``, ``posterior_sd``, ``shrinkage_factor`` (and the ICC, τ², σ² and
    method in ``table.attrs``).
    """
    group_name = groups.name if isinstance(groups, pd.Series) and groups.name is not None else "group"
    y = np.asarray(values, dtype=float)
    g = np.asarray(groups)
    if y.shape != g.shape or y.ndim != 1:
        raise ValueError("values and groups must be one-dimensional and of the same length")
    frame = pd.DataFrame({"group": g, "value": y}).dropna()
    by = frame.groupby("group", sort=True)["value"]
    n_j = by.size().astype(float)
    mean_j = by.mean()
    deviation = frame["value"] - by.transform("mean")
    ss_within = float((deviation**2).sum())
    total = float(n_j.sum())
    k = len(n_j)
    grand = float(frame["value"].mean()) if total else np.nan
    ss_between = float((n_j * (mean_j - grand) ** 2).sum())

    z = _z(level)
    if k >= 2 and total - k >= 1:
        sigma2 = ss_within / (total - k)
        ms_between = ss_between / (k - 1)
        n0 = (total - float((n_j**2).sum()) / total) / (k - 1)
        tau2 = max(0.0, (ms_between - sigma2) / n0)
    else:
        sigma2 = tau2 = np.nan

    if np.isnan(tau2):
        grand_mean = icc = np.nan
        factor = eb = posterior_sd = np.full(k, np.nan)
    elif tau2 == 0.0:
        # No between-clinician variance: the model says every clinician's true mean is the service mean.
        grand_mean, icc = grand, 0.0
        factor = np.zeros(k)
        eb = np.full(k, grand)
        posterior_sd = np.full(k, np.sqrt(sigma2 / total))
    else:
        error_var = sigma2 / n_j.to_numpy()
        weight = 1.0 / (tau2 + error_var)
        grand_mean = float(np.sum(weight * mean_j.to_numpy()) / np.sum(weight))
        var_grand_mean = 1.0 / float(np.sum(weight))
        factor = tau2 / (tau2 + error_var)
        eb = grand_mean + factor * (mean_j.to_numpy() - grand_mean)
        posterior_sd = np.sqrt(factor * error_var + (1.0 - factor) ** 2 * var_grand_mean)
        icc = tau2 / (tau2 + sigma2)

    method = (
        "random intercept by clinician, one-way random-effects ANOVA (method of moments, unbalanced n₀), "
        f"τ² truncated at 0; empirical-Bayes estimate μ̂ + B·(mean − μ̂), B = τ²/(τ² + σ²/n); "
        f"{_percent(level)} interval ± z·posterior SD"
    )
    table = pd.DataFrame(
        {
            "n": n_j.astype(int).to_numpy(),
            "raw_mean": mean_j.to_numpy(),
            "eb_estimate": eb,
            "low": eb - z * posterior_sd,
            "high": eb + z * posterior_sd,
            "posterior_sd": posterior_sd,
            "shrinkage_factor": factor,
        },
        index=pd.Index(mean_j.index, name=group_name),
    )
    table.attrs.update(icc=icc, tau2=tau2, sigma2=sigma2, grand_mean=grand_mean, method=method)
    return ShrunkenEstimates(
        table=table, icc=icc, tau2=tau2, sigma2=sigma2, grand_mean=grand_mean, method=method
    )


# -- ranks ------------------------------------------------------------------------------------------------
def rank_eligible(
    score: ArrayLike,
    n: ArrayLike,
    minimum: int = MIN_EPISODES_RANKED,
    *,
    higher_is_better: bool = True,
) -> np.ndarray | pd.Series:
    """Rank 1 = best among clinicians with at least ``minimum`` closed episodes; NaN for the rest.

    Clinicians under the minimum (ACORN: 5 a year) are shown greyed with no rank (docs/methods.md §10), and
    they do not take up ranks: the eligible ones are ranked 1, 2, … among themselves. A missing score has no
    rank.
    Ties share the best rank of the tie (1, 2, 2, 4). ``higher_is_better=False`` for measures where lower is
    better (deterioration, dropout). On the index of ``score`` if it is a Series.
    """
    index = _index_of(score, n)
    s = np.asarray(score, dtype=float)
    count = np.asarray(n, dtype=float)
    s, count = np.broadcast_arrays(s, count)
    eligible = (count >= minimum) & ~np.isnan(s)
    ranked = pd.Series(np.where(eligible, s, np.nan)).rank(
        method="min", ascending=not higher_is_better, na_option="keep"
    )
    values = ranked.to_numpy(dtype=float)
    return pd.Series(values, index=index, name="rank") if index is not None else values
