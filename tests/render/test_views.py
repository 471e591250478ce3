"""Views build their Bokeh models without a browser: both charts, linked session axis, hover tooltips in
clinical words, and updates patch the same plots."""

import holoviews as hv
import pytest
from bokeh.models import HoverTool

from alliance.pages import ClientPage, ProblemView, client_page
from alliance.trajectory import instrument_trajectory


@pytest.fixture
def client(demo_db):
    p = client_page(demo_db)
    assert isinstance(p, ClientPage)
    # Start on a client with a real trajectory (the most recently seen may have had one session).
    sel = p.selection
    for client_id in sel.param.client.objects:
        sel.client = client_id
        if sel.outcome["score"].notna().sum() >= 4 and sel.alliance["score"].notna().sum() >= 4:
            return p
    raise AssertionError("no client with four outcome and alliance ratings in the demo")


def _figures(client):
    """The Bokeh figures of the client charts, top to bottom."""
    grid = hv.render(client.charts.layout, backend="bokeh")
    return [child[0] for child in sorted(grid.children, key=lambda c: c[1])]


def test_both_charts_render_with_a_shared_session_axis(client):
    figs = _figures(client)
    assert len(figs) == 2
    outcome, alliance = figs
    assert outcome.x_range is alliance.x_range  # zoom one, the other follows
    assert outcome.y_range is not alliance.y_range
    assert outcome.xaxis[0].axis_label == "Session"


def test_hover_tooltips_speak_clinically(client):
    figs = _figures(client)
    for fig in figs:
        hovers = [t for t in fig.tools if isinstance(t, HoverTool)]
        assert hovers, "every chart has a hover tool"
    descriptions = client.selection.outcome["description"].tolist()
    assert all(d.startswith("Session ") for d in descriptions)
    assert any(client.selection.outcome_instrument in d for d in descriptions)


def test_cutoff_line_is_drawn_at_the_instruments_cutoff(client):
    ratings = client.selection.ratings
    code = client.selection.outcome_instrument
    cutoff = ratings.loc[ratings["instrument"] == code, "cutoff"].iloc[0]
    element = client.charts.outcome.cutoff[()]
    assert set(element.dimension_values(1)) == {cutoff}


def test_choosing_another_client_patches_the_same_plot(client):
    dmap, layout = client.charts.outcome.points, client.charts.layout
    sel = client.selection
    first = sel.episode
    before = sel.outcome["score"].tolist()
    for other in [c for c in sel.param.client.objects if c != sel.client]:
        sel.client = other
        if sel.outcome["score"].notna().sum() >= 2:
            break
    assert sel.episode != first and sel.episode_info["client_id"] == other
    assert sel.outcome["score"].tolist() != before
    # Same DynamicMap and layout: the plot is patched, not rebuilt.
    assert client.charts.outcome.points is dmap and client.charts._pane.object is layout
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
