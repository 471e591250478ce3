"""Reliable change, clinical significance and pre–post effect sizes.

Jacobson & Truax (1991), J Consult Clin Psychol 59(1): the reliable change index (RCI), the cut-offs
a, b and c, and the categories recovered / improved / unchanged / deteriorated (+ harmed). The
reference results are those of the R package clinicalsignificance 2.1
(``cs_combined(..., rci_method = "JT")``), reproduced exactly by
``tests/unit/test_metrics_reference.py``; see ``tests/reference/README.md``.

Sign conventions, kept deliberately distinct because each follows its reference:

- ``change`` and :func:`rci` are in the raw direction, ``post - pre`` (as clinicalsignificance
  reports).
- ``improvement`` is in the healthy direction (positive = better) whatever the instrument's
  direction.
- :func:`d_z` is ``mean(pre - post) / sd(pre - post)`` (effectsize's paired Cohen's d with
  ``x = pre``): positive when scores fall.
- :func:`smcr` is ``(mean(post) - mean(pre)) / sd(pre)`` with the small-sample correction (metafor's
  ``escalc("SMCR", m1i = post, m2i = pre, sd1i = sd(pre))``): positive when scores rise.

Everything here is vectorised: inputs may be scalars, lists, numpy arrays or pandas Series (a
Series' index is kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special, stats

# Two-tailed 5 % critical value of the standard normal: clinicalsignificance's qnorm(1 - .05 / 2).
Z_CRITICAL: float = float(stats.norm.ppf(0.975))

CATEGORIES: tuple[str, ...] = ("recovered", "improved", "unchanged", "deteriorated", "harmed")

AtCutoff = Literal["clinical", "healthy", "neither"]
"""Where a score exactly at the clinical cut-off belongs.

- ``"clinical"``: at the cut-off counts as clinical, before and after (PHQ-9 "10 or more is a case";
  the registry's ``clinical_side = "at_or_above"`` on a lower-is-better scale).
- ``"healthy"``: at the cut-off counts as non-clinical, before and after (ORS "below 25 is
  clinical"; the registry's ``clinical_side = "below"`` on a higher-is-better scale).
- ``"neither"``: clinicalsignificance 2.1's convention. Both of its tests are strict — clinical
  before means strictly beyond the cut-off on the ill side, functional after means strictly beyond
  it on the healthy side — so a score exactly at the cut-off is neither clinical at intake nor
  functional at the end (it cannot make a client recovered, and it can make a client harmed).
"""


def _values(x: ArrayLike) -> np.ndarray | pd.Series:
    """Floats; a Series stays a Series (index kept) so results line up with the caller's rows."""
    if isinstance(x, pd.Series):
        return x.astype(float)
    return np.asarray(x, dtype=float)


def severity(
    score: ArrayLike, minimum: float, maximum: float, higher_is_better: bool
) -> np.ndarray | pd.Series:
    """Distance from the healthy end of the scale (docs/methods.md §4).

    ``score - minimum`` for lower-is-better instruments, ``maximum - score`` for higher-is-better
    ones, so that 0 is the healthiest possible score and proportional rules (sudden gains) can
    apply.
    """
    score = _values(score)
    return maximum - score if higher_is_better else score - minimum


def improvement(pre: ArrayLike, post: ArrayLike, higher_is_better: bool) -> np.ndarray | pd.Series:
    """Change in the healthy direction: ``post - pre`` if higher is better, else ``pre - post``."""
    pre, post = _values(pre), _values(post)
    return post - pre if higher_is_better else pre - post


def s_diff(sd: float, reliability: float) -> float:
    """Standard error of the difference of two scores (Jacobson & Truax 1991).

    SE = sd·√(1 − r) and S_diff = √(2·SE²), computed in that order as clinicalsignificance does.
    """
    se = sd * np.sqrt(1.0 - reliability)
    return float(np.sqrt(2.0 * se**2))


def rci(pre: ArrayLike, post: ArrayLike, sd: float, reliability: float) -> np.ndarray | pd.Series:
    """Jacobson–Truax reliable change index ``(post - pre) / S_diff``, in the raw direction.

    For a lower-is-better instrument an improvement therefore has a negative RCI, as
    clinicalsignificance reports it; compare ``|RCI|`` (or the sign-adjusted value) with
    :data:`Z_CRITICAL`.
    """
    pre, post = _values(pre), _values(post)
    return (post - pre) / s_diff(sd, reliability)


def jt_cutoffs(
    m_clin: float,
    sd_clin: float,
    m_func: float | None = None,
    sd_func: float | None = None,
    *,
    higher_is_better: bool,
) -> dict[str, float | None]:
    """Jacobson & Truax's clinical cut-offs a, b and c.

    a: two clinical SDs from the clinical mean, towards health. b: two functional SDs from the
    functional mean, towards illness. c: the point between the two means weighted by the SDs,
    ``(sd_clin·m_func + sd_func·m_clin) / (sd_clin + sd_func)``. Use c when both norms exist. b and
    c are None without functional norms.

    clinicalsignificance computes b with the *clinical* SD; this follows Jacobson & Truax
    (functional SD).
    """
    toward_health = 1.0 if higher_is_better else -1.0
    a = m_clin + toward_health * 2.0 * sd_clin
    if m_func is None or sd_func is None:
        return {"a": a, "b": None, "c": None}
    b = m_func - toward_health * 2.0 * sd_func
    c = (sd_clin * m_func + sd_func * m_clin) / (sd_clin + sd_func)
    return {"a": a, "b": b, "c": c}


@dataclass(frozen=True)
class JacobsonTruax:
    """Reliable change by the Jacobson–Truax RCI: reliable when ``|RCI| > critical_value`` (strict).

    ``sd`` is the SD of the norm (clinicalsignificance uses the sample's pre-treatment SD),
    ``reliability`` the instrument's reliability (e.g. Cronbach's alpha or test–retest r).
    """

    sd: float
    reliability: float
    critical_value: float = Z_CRITICAL

    @property
    def s_diff(self) -> float:
        """Standard error of the difference, see :func:`s_diff`."""
        return s_diff(self.sd, self.reliability)

    @property
    def minimum_change(self) -> float:
        """The smallest raw change that is reliable (strictly more than this)."""
        return self.critical_value * self.s_diff

    def describe(self) -> str:
        """The rule in plain words, for the UI and reports."""
        return f"Jacobson–Truax RCI, S_diff {self.s_diff:.2f}, |RCI| > {self.critical_value:.2f}"


@dataclass(frozen=True)
class FixedThreshold:
    """Reliable change by a published threshold: reliable when the change is at least ``points``.

    Inclusive (``>=``), the NHS Talking Therapies (IAPT) convention, e.g. PHQ-9 6, GAD-7 4.
    ``source`` names where the threshold comes from and is shown in the description.
    """

    points: float
    source: str | None = None

    def describe(self) -> str:
        """The rule in plain words, for the UI and reports."""
        where = f" ({self.source})" if self.source else ""
        return f"fixed threshold {self.points:g} points{where}"


def _boolean(values: np.ndarray, missing: np.ndarray) -> pd.arrays.BooleanArray:
    return pd.arrays.BooleanArray(np.where(missing, False, values), missing.copy())


def classify_change(
    pre: ArrayLike,
    post: ArrayLike,
    *,
    higher_is_better: bool,
    cutoff: float | None,
    method: JacobsonTruax | FixedThreshold,
    at_cutoff: AtCutoff,
) -> pd.DataFrame:
    """Reliable change and clinical significance per case (docs/methods.md §5).

    Categories: **recovered** = clinical before, not clinical after and reliably improved;
    **improved** = reliably improved otherwise; **harmed** = not clinical before, clinical after and
    reliably worse; **deteriorated** = reliably worse otherwise; **unchanged** otherwise. Without a
    cut-off (``cutoff`` None, e.g. WAI-SR) there is no clinical range, so nobody is recovered or
    harmed.

    ``at_cutoff`` says where a score equal to the cut-off belongs (see :data:`AtCutoff`); use
    ``"neither"`` to reproduce clinicalsignificance.

    Returns one row per case (the index of ``pre`` if it is a Series) with columns ``pre``,
    ``post``, ``change`` (post − pre), ``improvement`` (healthy direction), ``rci`` (NaN for a fixed
    threshold), ``reliable_improvement``, ``reliable_deterioration``, ``clinical_pre``,
    ``clinical_post`` (nullable booleans, NA where a score is missing or there is no cut-off),
    ``category`` (categorical, NaN where a score is missing) and ``method`` (the rule in force, also
    in ``.attrs["method"]``).
    """
    if at_cutoff not in ("clinical", "healthy", "neither"):
        raise ValueError(f"at_cutoff must be 'clinical', 'healthy' or 'neither', got {at_cutoff!r}")
    index = pre.index if isinstance(pre, pd.Series) else None
    pre_v = np.asarray(pre, dtype=float)
    post_v = np.asarray(post, dtype=float)
    if pre_v.shape != post_v.shape or pre_v.ndim != 1:
        raise ValueError("pre and post must be one-dimensional and of the same length")
    incomplete = np.isnan(pre_v) | np.isnan(post_v)

    change = post_v - pre_v
    gain = improvement(pre_v, post_v, higher_is_better)
    if isinstance(method, JacobsonTruax):
        index_values = change / method.s_diff
        # clinicalsignificance compares direction * RCI with the critical value, strictly.
        healthy_rci = index_values if higher_is_better else -index_values
        better = healthy_rci > method.critical_value
        worse = healthy_rci < -method.critical_value
    elif isinstance(method, FixedThreshold):
        index_values = np.full_like(change, np.nan)
        better = gain >= method.points
        worse = -gain >= method.points
    else:
        raise TypeError(f"method must be JacobsonTruax or FixedThreshold, got {type(method).__name__}")

    if cutoff is None:
        no_range = np.ones_like(incomplete)
        clinical_pre = _boolean(np.zeros_like(incomplete), no_range)
        clinical_post = _boolean(np.zeros_like(incomplete), no_range)
        recovered = harmed = np.zeros_like(incomplete)
    else:
        # Distance beyond the cut-off on the ill side: > 0 clinical, == 0 exactly at the cut-off.
        ill_pre = cutoff - pre_v if higher_is_better else pre_v - cutoff
        ill_post = cutoff - post_v if higher_is_better else post_v - cutoff
        pre_flag = (ill_pre >= 0) if at_cutoff == "clinical" else (ill_pre > 0)
        post_flag = (ill_post > 0) if at_cutoff == "healthy" else (ill_post >= 0)
        clinical_pre = _boolean(pre_flag, np.isnan(pre_v))
        clinical_post = _boolean(post_flag, np.isnan(post_v))
        recovered = pre_flag & ~post_flag & better
        harmed = ~pre_flag & post_flag & worse

    codes = np.select(
        [recovered, better, harmed, worse],
        [0, 1, 4, 3],
        default=2,
    )
    codes = np.where(incomplete, -1, codes)
    category = pd.Categorical.from_codes(codes, categories=list(CATEGORIES))
    description = method.describe()

    out = pd.DataFrame(
        {
            "pre": pre_v,
            "post": post_v,
            "change": change,
            "improvement": gain,
            "rci": index_values,
            "reliable_improvement": _boolean(better, incomplete),
            "reliable_deterioration": _boolean(worse, incomplete),
            "clinical_pre": clinical_pre,
            "clinical_post": clinical_post,
            "category": category,
            "method": description,
        },
        index=index,
    )
    out.attrs["method"] = description
    return out


def _complete_pairs(pre: ArrayLike, post: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    pre_v = np.asarray(pre, dtype=float)
    post_v = np.asarray(post, dtype=float)
    if pre_v.shape != post_v.shape:
        raise ValueError("pre and post must have the same length")
    keep = ~(np.isnan(pre_v) | np.isnan(post_v))
    return pre_v[keep], post_v[keep]


def d_z(pre: ArrayLike, post: ArrayLike) -> float:
    """Paired Cohen's d_z: ``mean(pre - post) / sd(pre - post)`` over complete pairs.

    Positive when scores fall (an improvement on a lower-is-better scale), as effectsize's
    ``cohens_d(pre, post, paired = TRUE)`` reports it.
    """
    pre_v, post_v = _complete_pairs(pre, post)
    diff = pre_v - post_v
    return float(diff.mean() / diff.std(ddof=1))


class StandardisedMeanChange(NamedTuple):
    """Becker's standardised mean change with its large-sample sampling variance."""

    estimate: float
    variance: float
    n: int


def smcr(pre: ArrayLike, post: ArrayLike) -> StandardisedMeanChange:
    """Standardised mean change using the pre-treatment SD (Becker 1988; metafor
    ``escalc("SMCR")``).

    estimate = c(n − 1)·(mean(post) − mean(pre)) / sd(pre), with the exact small-sample correction
    c(m) = Γ(m/2) / (√(m/2)·Γ((m − 1)/2)); variance = 2(1 − r)/n + estimate²/(2n), r the pre–post
    correlation (metafor's default "LS" variance). Complete pairs only. Positive when scores rise:
    take the negative for a lower-is-better instrument to read it as improvement.
    """
    pre_v, post_v = _complete_pairs(pre, post)
    n = pre_v.size
    m = n - 1
    correction = np.exp(special.gammaln(m / 2) - np.log(np.sqrt(m / 2)) - special.gammaln((m - 1) / 2))
    estimate = correction * (post_v.mean() - pre_v.mean()) / pre_v.std(ddof=1)
    r = np.corrcoef(pre_v, post_v)[0, 1]
    variance = 2 * (1 - r) / n + estimate**2 / (2 * n)
    return StandardisedMeanChange(float(estimate), float(variance), int(n))
