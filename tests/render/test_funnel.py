"""The funnel plot colours and shapes each clinician by the better direction of the measure shown, and its
axis follows the measure: a planted worse clinician is red (and a downward triangle) wherever the funnel
finds them different, a planted better one green (an upward triangle); effect sizes are not drawn on 0–1."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from alliance import style
from alliance.clinician_comparison import MEASURES
from alliance.datastore import DataStore
from alliance.state import ComparisonState
from alliance.views.comparison import LOWER_IS_BETTER, FunnelPlot, funnel_verdict


@pytest.fixture(scope="module")
def planted(demo_db) -> dict[str, list[str]]:
    con = duckdb.connect(str(demo_db), read_only=True)
    try:
        rows = con.execute(
            "SELECT event_type, clinician_id FROM planted_events "
            "WHERE event_type IN ('clinician_better', 'clinician_worse')"
        ).fetchall()
    finally:
        con.close()
    out: dict[str, list[str]] = {"clinician_better": [], "clinician_worse": []}
    for kind, clinician in rows:
        out[kind].append(clinician)
    return out


@pytest.fixture()
def funnel(demo_db):
    state = ComparisonState(DataStore.open(demo_db))
    state.instrument = "ORS"
    return FunnelPlot(state=state)


def points(funnel: FunnelPlot, measure: str) -> pd.DataFrame:
    funnel.state.measure = measure
    return funnel.points(measure).set_index("clinician_id")


def test_direction_of_better():
    pos = pd.Series(["above 95 %", "inside", "below 99.8 %"])
    assert funnel_verdict(pos, "reliably_improved_rate").tolist() == [
        "better",
        "no evidence of a difference",
        "worse",
    ]
    assert funnel_verdict(pos, "dropout_rate").tolist() == ["worse", "no evidence of a difference", "better"]
    assert LOWER_IS_BETTER == {"deteriorated_rate", "dropout_rate"}


@pytest.mark.parametrize("measure", list(MEASURES))
def test_planted_clinicians_are_never_shown_on_the_wrong_side(funnel, planted, measure):
    p = points(funnel, measure)
    for clinician in planted["clinician_worse"]:
        if clinician in p.index:
            assert p.loc[clinician, "verdict"] != "better", (measure, clinician)
            if p.loc[clinician, "verdict"] == "worse":
                assert p.loc[clinician, "marker"] == "inverted_triangle"
                assert "worse" in p.loc[clinician, "label"]
            # Whatever the verdict, a planted worse clinician outside the limits on the worse side is red.
            side = "above" if measure in LOWER_IS_BETTER else "below"
            if p.loc[clinician, "position"].startswith(side):
                assert p.loc[clinician, "colour"] == style.STATUS_COLOURS["red"], (measure, clinician)
    for clinician in planted["clinician_better"]:
        if clinician in p.index:
            assert p.loc[clinician, "verdict"] != "worse", (measure, clinician)


def test_planted_clinicians_red_and_green_on_improvement(funnel, planted):
    p = points(funnel, "reliably_improved_rate")
    for clinician in planted["clinician_worse"]:
        assert p.loc[clinician, "verdict"] == "worse"
        assert p.loc[clinician, "colour"] == style.STATUS_COLOURS["red"]
        assert p.loc[clinician, "marker"] == "inverted_triangle"
        assert "worse" in p.loc[clinician, "label"]
    for clinician in planted["clinician_better"]:
        assert p.loc[clinician, "verdict"] == "better"
        assert p.loc[clinician, "colour"] == style.STATUS_COLOURS["green"]
        assert p.loc[clinician, "marker"] == "triangle"


def test_the_axis_follows_the_measure(funnel):
    """The value axis drawn is the measure's: effect sizes their own range, rates within 0–1."""
    funnel.state.measure = "es"
    values = funnel.points("es")["value"]
    low, high = funnel.figure.y_range.start, funnel.figure.y_range.end
    assert low <= values.min() and high >= values.max()
    assert high > 1.0 or low < 0.0 or values.max() - values.min() < 1.0
    assert funnel.figure.yaxis[0].axis_label == MEASURES["es"]
    drawn = funnel.sources["points"].data
    assert list(drawn["value"]) == list(values)  # what is drawn is the effect sizes
    funnel.state.measure = "dropout_rate"
    low, high = funnel.figure.y_range.start, funnel.figure.y_range.end
    assert 0.0 <= low and high <= 1.0
    assert funnel.figure.yaxis[0].axis_label == MEASURES["dropout_rate"]
