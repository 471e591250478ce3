"""Views build their Bokeh models without a browser: both charts, linked session axis, hover tooltips in
clinical words, and updates patch the same plots."""

import holoviews as hv
import pytest
from bokeh.models import HoverTool

from alliance.pages import ClientPage, ProblemView, client_page
from alliance.trajectory import instrument_trajectory


@pytest.fixture
def page(demo_db):
    p = client_page(demo_db)
    assert isinstance(p, ClientPage)
    return p


def _figures(page):
    plot = hv.renderer("bokeh").get_plot(page.charts.layout)
    return plot, [sp.state for sp in plot.subplots.values() if sp is not None]


def test_both_charts_render_with_a_shared_session_axis(page):
    plot, figs = _figures(page)
    assert len(figs) == 2
    outcome, alliance = figs
    assert outcome.x_range is alliance.x_range  # zoom one, the other follows
    assert outcome.y_range is not alliance.y_range
    assert outcome.xaxis[0].axis_label == "Session"


def test_hover_tooltips_speak_clinically(page):
    _, figs = _figures(page)
    for fig in figs:
        hovers = [t for t in fig.tools if isinstance(t, HoverTool)]
        assert hovers, "every chart has a hover tool"
    descriptions = page.selection.outcome["description"].tolist()
    assert all(d.startswith("Session ") for d in descriptions)
    assert any(page.selection.outcome_instrument in d for d in descriptions)


def test_cutoff_line_is_drawn_at_the_instruments_cutoff(page):
    ratings = page.selection.ratings
    code = page.selection.outcome_instrument
    cutoff = ratings.loc[ratings["instrument"] == code, "cutoff"].iloc[0]
    element = page.charts.outcome.cutoff[()]
    assert set(element.dimension_values(1)) == {cutoff}


def test_choosing_another_client_patches_the_same_plot(page):
    dmap, layout = page.charts.outcome.points, page.charts.layout
    sel = page.selection
    first = sel.episode
    other = next(c for c in sel.param.client.objects if c != sel.client)
    sel.client = other
    assert sel.episode != first and sel.episode_info["client_id"] == other
    # Same DynamicMap and layout: the plot is patched, not rebuilt.
    assert page.charts.outcome.points is dmap and page.charts._pane.object is layout
    shown = list(dmap[()].dimension_values("outcome_score"))
    assert shown == sel.outcome.dropna(subset=["score"])["score"].tolist() and shown


def test_hover_text_for_a_clinical_and_a_gap_session(edge_db):
    from alliance.service import Service

    ratings = Service.open(edge_db).episode_ratings("X-GAPS-1")
    ors = instrument_trajectory(ratings, "ORS").set_index("session_number")["description"]
    assert ors[1] == "Session 1 · 03 Mar 2026 · ORS 15 (clinical range, below 25 [cut-off unverified])"
    assert ors[2] == "Session 2 · 10 Mar 2026 · ORS not rated (gap)"
    assert ors[3] == "Session 3 · ORS not rated (gap)"
    assert (
        ors[5] == "Session 5 · 31 Mar 2026 · ORS 27 (non-clinical range, at or above 25 [cut-off unverified])"
    )
    srs = instrument_trajectory(ratings, "SRS").set_index("session_number")["description"]
    assert srs[1] == "Session 1 · 03 Mar 2026 · SRS 38 (at or above 36)"


def test_problem_pages_for_missing_and_empty_databases(tmp_path, empty_db):
    missing = client_page(tmp_path / "nowhere.duckdb")
    assert isinstance(missing, ProblemView) and "not found" in missing.problem
    empty = client_page(empty_db)
    assert isinstance(empty, ProblemView) and "holds no ratings" in empty.problem
    for view in (missing, empty):
        view.page().get_root()  # renders without a traceback


def test_edge_cases_say_what_is_missing(edge_db):
    p = client_page(edge_db)
    sel = p.selection
    sel.clinician = "CL90"
    sel.client = "X-ONE"
    assert any("single rating" in n for n in sel.notes)
    sel.client = "X-NOALL"
    assert "No alliance measure was rated in this episode." in sel.notes
    assert sel.alliance.empty and not sel.outcome.empty
    hv.renderer("bokeh").get_plot(p.charts.layout)
    sel.clinician = "CL91"
    assert sel.client == "X-ONLYALL"
    assert "No outcome measure was rated in this episode." in sel.notes
    hv.renderer("bokeh").get_plot(p.charts.layout)
