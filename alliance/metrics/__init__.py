"""Clinical change statistics: reliable change, clinical significance, effect sizes, sudden gains.

Pure numpy/pandas/scipy, vectorised over cases; each rule is checked against published software in
``tests/unit/test_metrics_reference.py`` (reference files in ``tests/reference``).
"""

from alliance.metrics.alliance_signals import *  # noqa: F403 (re-exports its __all__)
from alliance.metrics.reliable_change import (
    CATEGORIES,
    Z_CRITICAL,
    AtCutoff,
    FixedThreshold,
    JacobsonTruax,
    StandardisedMeanChange,
    classify_change,
    d_z,
    improvement,
    jt_cutoffs,
    rci,
    s_diff,
    severity,
    smcr,
)
from alliance.metrics.sudden import (
    SCORE_COLUMNS,
    IntervalCheck,
    check_interval,
    events_by_episode,
    interval_criteria,
    sudden_changes,
)

__all__ = [
    "CATEGORIES",
    "SCORE_COLUMNS",
    "Z_CRITICAL",
    "AtCutoff",
    "FixedThreshold",
    "IntervalCheck",
    "JacobsonTruax",
    "StandardisedMeanChange",
    "check_interval",
    "classify_change",
    "d_z",
    "events_by_episode",
    "improvement",
    "interval_criteria",
    "jt_cutoffs",
    "rci",
    "s_diff",
    "severity",
    "smcr",
    "sudden_changes",
]
