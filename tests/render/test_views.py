"""Views build their Bokeh models without a browser: outcome, alliance and events share the session axis,
every chart has clinical hover text, and choosing another episode patches the same plots — with one story
build per choice, the old episode kept whole under the loading indicator until everything swaps together, and
the charts spanning the new episode as on a freshly opened page."""

import collections

import panel as pn
import pytest
from bokeh.models import DatetimeAxis, HoverTool, Plot

from alliance import state
from alliance.db import Database
from alliance.pages import ClientPage, ProblemView, client_page
from alliance.service import Service
from alliance.store import StoredMetrics
from alliance.trajectory import instrument_trajectory


@pytest.fixture
def client(demo_db):
    p = client_page(demo_db)
    assert isinstance(p, ClientPage)
    # Start on a client with a real trajectory (the most recently seen may have had one session).
    sel = p.selection
    for client_id in sel.param.client.objects:
        sel.client = client_id
        if sel.story.outcome["score"].notna().sum() >= 4 and sel.story.alliance["score"].notna().sum() >= 4:
            return p
    raise AssertionError("no client with four outcome and alliance ratings in the demo")


def _count_queries(monkeypatch) -> collections.Counter:
    """Every query run from now on (not answered from the process's kept answers), by name."""
    queries = collections.Counter()
    real_run = Database._run

    def run(self, q, params):
        queries.update([q.name])
        return real_run(self, q, params)

    monkeypatch.setattr(Database, "_run", run)
    return queries


def _figures(client):
    """The Bokeh figures of the client charts, top to bottom."""
    grid = client.charts.grid
    return [child[0] for child in sorted(grid.children, key=lambda c: c[1])]


def _outcome_points(client) -> dict:
    """The data of the outcome chart's points (the source with each score's status)."""
    (points,) = [r for r in _figures(client)[0].renderers if "status" in r.data_source.data]
    return points.data_source.data


def test_panels_share_the_session_axis(client):
    figs = _figures(client)
    assert len(figs) == 3  # outcome, alliance, events strip
    assert figs[0].x_range is figs[1].x_range is figs[2].x_range  # zoom one, the others follow
    assert figs[0].y_range is not figs[1].y_range
    assert [f.xaxis[0].axis_label for f in figs] == ["Session"] * 3


def test_every_chart_has_hover_in_clinical_words(client):
    for fig in _figures(client):
        assert any(isinstance(t, HoverTool) for t in fig.tools)
    descriptions = client.selection.story.outcome["description"].tolist()
    assert all(d.startswith("Session ") for d in descriptions)
    assert any(client.selection.outcome_instrument in d for d in descriptions)


def test_cutoff_and_bands_follow_the_registry_and_the_metrics(client):
    story = client.selection.story
    ratings = client.selection.ratings
    code = client.selection.outcome_instrument
    assert story.cutoffs["outcome"] == ratings.loc[ratings["instrument"] == code, "cutoff"].iloc[0]
    rc = ratings.loc[ratings["instrument"] == code, "reliable_change"].iloc[0]
    intake = story.outcome.dropna(subset=["score"])["score"].iloc[0]
    lo, hi = story.scales["outcome"]
    assert set(story.rc_band["low"]) == {max(lo, intake - rc)} and set(story.rc_band["high"]) == {
        min(hi, intake + rc)
    }
    if len(story.band):
        assert (story.band["p10"] <= story.band["p25"]).all() and (
            story.band["p75"] <= story.band["p90"]
        ).all()


def test_choosing_another_client_patches_the_same_plots(client):
    grid, figures = client.charts.grid, _figures(client)
    sel = client.selection
    first, before = sel.episode, sel.story.outcome["score"].tolist()
    for other in [c for c in sel.param.client.objects if c != sel.client]:
        sel.client = other
        if sel.story.outcome["score"].notna().sum() >= 2:
            break
    assert sel.episode != first and sel.episode_info["client_id"] == other
    assert sel.story.outcome["score"].tolist() != before
    assert client.charts.grid is grid and _figures(client) == figures  # the same figures, new data
    shown = list(_outcome_points(client)["outcome_score"])
    assert shown == sel.story.outcome.dropna(subset=["score"])["score"].tolist()


def test_date_axis_and_item_breakdown_swap_layouts(client):
    sel = client.selection
    sel.x_axis = "date"
    figs = _figures(client)
    assert isinstance(figs[0].xaxis[0], DatetimeAxis) and figs[0].x_range is figs[1].x_range
    sel.breakdown = "items as heat strip"
    assert len(_figures(client)) == 4
    sel.x_axis, sel.breakdown = "session", "items as lines"
    assert len(_figures(client)) == 4 and not isinstance(_figures(client)[0].xaxis[0], DatetimeAxis)


def test_item_scores_are_read_only_for_a_breakdown_that_draws_them(client, monkeypatch):
    """The total (the page's default) draws no item, so a client switch reads none; choosing a breakdown
    rebuilds the story with the episode's items, and the item chart draws them."""
    sel = client.selection
    queries = _count_queries(monkeypatch)
    service = client.service
    assert sel.breakdown == "total"
    for client_id in sel.param.client.objects:  # a client of this clinician's with item scores
        sel.client = client_id
        if sel.alliance_instrument and len(service.episode_items(sel.episode, sel.alliance_instrument)):
            break
    else:
        raise AssertionError(f"no client of {sel.clinician} has item scores of their alliance measure")
    queries.clear()
    sel.client = next(c for c in sel.param.client.objects if c != sel.client)
    sel.client = client_id  # back to the one with items, drawing the total
    assert queries["episode_items"] == 0 and sel.story.items.empty, queries
    sel.breakdown = "items as lines"
    assert queries["episode_items"] == 1 and len(sel.story.items) > 0
    legend = _figures(client)[2].legend[0].items  # one line per item or subscale, named in the legend
    assert sorted(i.label.value for i in legend) == sorted(sel.story.items["label"].unique())
    # From one item breakdown to the other: the story holds the items already, nothing is read or rebuilt.
    story = sel.story
    sel.breakdown = "items as heat strip"
    assert sel.story is story and queries["episode_items"] == 1
    assert len(_figures(client)) == 4  # the heat strip drawn instead of the lines
    sel.breakdown = "total"
    assert sel.story.items.empty


def test_hover_text_for_a_clinical_and_a_gap_session(edge_db):
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


def test_edge_cases_show_what_they_can_and_say_what_is_missing(edge_db):
    p = client_page(edge_db)
    sel = p.selection
    sel.clinician = "CL90"
    sel.client = "X-ONE"
    assert any("single rating" in n for n in sel.notes)
    assert "a single rating: no change yet" in p.summary.object
    assert _figure_episodes(p.charts.grid) == {f"episode:{sel.episode}"}  # drawn, no error
    outcome_select, alliance_select = p.widgets[3], p.widgets[4]
    assert not alliance_select.disabled and not alliance_select.value_label
    sel.client = "X-NOALL"
    assert any(n.startswith("No alliance measure") for n in sel.notes)
    # The alliance select says there is nothing to choose (not "None"); the outcome select works as before.
    assert alliance_select.disabled and alliance_select.value_label == "none rated"
    assert (
        not outcome_select.disabled and not outcome_select.value_label and sel.outcome_instrument == "PHQ-9"
    )
    assert sel.story.alliance.empty and not sel.story.outcome.empty
    assert _figure_episodes(p.charts.grid) == {f"episode:{sel.episode}"}  # drawn, no error
    sel.client = "X-GAPS"
    assert "ORS not rated at sessions 2, 3." in sel.notes
    assert set(sel.story.events.query("kind == 'missing'")["session_number"]) == {2.0, 3.0}
    sel.x_axis = "date"  # session 3 has no date: it is left out of the date axis, not an error
    assert _figure_episodes(p.charts.grid) == {f"episode:{sel.episode}"}  # drawn, no error
    sel.x_axis = "session"
    sel.clinician = "CL91"
    assert sel.client == "X-ONLYALL"
    assert any(n.startswith("No outcome measure") for n in sel.notes)
    assert _figure_episodes(p.charts.grid) == {f"episode:{sel.episode}"}  # drawn, no error
    assert outcome_select.disabled and outcome_select.value_label == "none rated"
    assert not alliance_select.disabled and not alliance_select.value_label


# -- one story build per interaction, and one swap of everything ------------------------------------------------
def _figure_episodes(root) -> set:
    """The episodes the rendered figures say they draw (each figure's ``episode:<id>`` tag)."""
    return {str(t) for fig in root.select({"type": Plot}) for t in fig.tags if str(t).startswith("episode:")}


def _heading(page) -> str:
    return page.summary.object.splitlines()[0]


@pytest.fixture
def watched(client, monkeypatch):
    """The client page rendered, with every story build recorded together with what the page showed then."""
    root = pn.panel(client).get_root()
    builds, shows = [], []
    real_build = state.build_story

    def build(info, *args, **kwargs):
        builds.append(
            {
                "episode": info["episode_id"],
                "loading": client.episode_view.loading,
                "heading": _heading(client),
                "figures": _figure_episodes(root),
            }
        )
        return real_build(info, *args, **kwargs)

    monkeypatch.setattr(state, "build_story", build)
    real_show = client.charts.show
    monkeypatch.setattr(client.charts, "show", lambda story: (shows.append(story), real_show(story)))
    return client, root, builds, shows


def _episode_with_two_outcome_measures(service: Service) -> tuple[str, str]:
    rated = service.scoped_ratings("outcome").groupby("episode_id")["instrument"].nunique()
    episode = rated[rated >= 2].index[0]
    episodes = service.scoped_episodes().set_index("episode_id")
    return episodes.loc[episode, "client_id"], episode


def _client_with_two_episodes(service: Service) -> str:
    counts = service.scoped_episodes().groupby("client_id").size()
    return counts[counts >= 2].index[0]


def test_one_story_build_per_interaction(watched, monkeypatch):
    page, root, builds, shows = watched
    sel = page.selection
    busy = []
    sel.param.watch(lambda e: busy.append(e.new), ["busy"])
    queries = _count_queries(monkeypatch)
    assert isinstance(sel.metrics, StoredMetrics)  # the demo's store is current

    def interaction(action) -> str:
        builds.clear(), shows.clear(), busy.clear(), queries.clear()
        # The process keeps an episode's reads per data version (``-- cache: per data version``): forgotten
        # here, so that every interaction shows what one read of its episode costs.
        page.service.db._cached_run.cache_clear()
        page.service.db._clinician_run.cache_clear()
        action()
        # One episode's stored rows read once, started with its ratings and taken by the one story build.
        stored = {q: queries[q] for q in StoredMetrics.EPISODE_READS.values()}
        assert stored == dict.fromkeys(stored, 1), queries
        assert queries["episode_ratings"] <= 1, queries
        assert len(builds) == 1, f"{len(builds)} story builds"
        assert len(shows) == 1 and shows[0] is sel.story  # the charts are drawn once, with that story
        assert busy == [True, False]
        assert builds[0]["episode"] == sel.episode
        return sel.episode

    # open() another clinician's client's episode (a deep link)
    client_id, episode = _episode_with_two_outcome_measures(page.service)
    assert interaction(lambda: sel.open(client_id, episode)) == episode
    assert sel.client == client_id and len(sel.param.outcome_instrument.objects) >= 2
    # another outcome measure, then the other alliance measure (when there is one)
    other = next(i for i in sel.param.outcome_instrument.objects if i != sel.outcome_instrument)
    interaction(lambda: setattr(sel, "outcome_instrument", other))
    assert sel.story.outcome["instrument"].iloc[0] == other
    # another client of the same clinician
    next_client = next(c for c in sel.param.client.objects if c != sel.client)
    interaction(lambda: setattr(sel, "client", next_client))
    assert sel.episode_info["client_id"] == next_client
    # A third client of that caseload: its stored rows came with the caseload's, nothing of them is read.
    third = next(c for c in sel.param.client.objects if c not in (client_id, next_client))
    builds.clear(), queries.clear()
    sel.client = third
    assert sel.episode_info["client_id"] == third and len(builds) == 1
    assert not {q: n for q, n in queries.items() if q in StoredMetrics.EPISODE_READS.values()}, queries
    # Back to an episode read before: its ratings and its caseload's stored rows are the process's kept ones,
    # nothing is read again.
    back_to = (sel.client, sel.episode)
    sel.open(client_id, episode)
    builds.clear(), queries.clear()
    sel.open(*back_to)
    assert sel.episode == back_to[1] and len(builds) == 1
    assert not {q: n for q, n in queries.items() if q in StoredMetrics.EPISODE_READS.values()}, queries
    assert queries["episode_ratings"] == 0, queries
    # the other episode of a client with two
    two = _client_with_two_episodes(page.service)
    interaction(lambda: sel.open(two))
    second = sel.param.episode.objects[1]
    assert interaction(lambda: setattr(sel, "episode", second)) == second
    # another clinician
    clinician = next(c for c in sel.param.clinician.objects if c != sel.clinician)
    interaction(lambda: setattr(sel, "clinician", clinician))
    assert sel.episode_info["clinician_id"] == clinician
    # the client selector of the page
    client_select = page.widgets[1]
    choice = next(c for c in sel.param.client.objects if c != sel.client)
    interaction(lambda: setattr(client_select, "value", choice))
    assert sel.client == choice
    # client and episode together, as the URL sets them
    interaction(lambda: sel.param.update(client=two, episode=second))
    assert sel.episode == second


def test_old_episode_stays_under_the_loading_indicator_until_everything_swaps(watched):
    page, root, builds, shows = watched
    sel = page.selection
    old_heading, old_episode = _heading(page), sel.episode
    assert _figure_episodes(root) == {f"episode:{old_episode}"}
    other = next(c for c in sel.param.client.objects if c != sel.client)
    sel.client = other
    # While the story was built: the old episode everywhere, under the loading indicator.
    (during,) = builds
    assert during["loading"] is True
    assert during["heading"] == old_heading and during["figures"] == {f"episode:{old_episode}"}
    # Then heading, summary, notes, charts together, and the indicator gone.
    assert page.episode_view.loading is False
    assert _heading(page) == f"### Client {other} · episode {sel.episode}"
    assert _figure_episodes(root) == {f"episode:{sel.episode}"}
    assert page.notes.visible == bool(sel.notes)


def test_after_a_switch_the_charts_span_the_episode_as_on_a_fresh_page(client, demo_db):
    root = pn.panel(client).get_root()
    sel = client.selection
    longest = sel.story.outcome["session_number"].max()
    # A shorter episode: a range that only ever widened would keep the old episode's span.
    shorter = next(
        c
        for c in sel.param.client.objects
        if c != sel.client and 2 <= client.service.episodes(c)["n_sessions"].iloc[0] < longest - 3
    )
    ((_, old_end),) = {(f.x_range.start, f.x_range.end) for f in root.select({"type": Plot})}
    sel.client = shorter
    switched = {(f.x_range.start, f.x_range.end) for f in root.select({"type": Plot})}
    fresh = client_page(demo_db)
    fresh.selection.open(sel.client, sel.episode)
    opened = {(f.x_range.start, f.x_range.end) for f in pn.panel(fresh).get_root().select({"type": Plot})}
    assert len(switched) == 1 and switched == opened
    (start, end), n = switched.pop(), sel.story.outcome["session_number"].max()
    assert start < 1 < n < end < old_end


def test_served_pages_do_not_follow_the_process_wide_busy_state(tmp_path):
    """pmui.Page follows Panel's process-wide busy flag, so every event of any session made every open page
    walk its models and show a busy bar for someone else's work: each page is built without it."""
    import inspect

    from panel.util import edit_readonly

    from alliance import pages

    page = client_page(tmp_path / "nowhere.duckdb").page()  # the problem page: no database needed
    page.get_root()
    assert page.busy_indicator is None
    with edit_readonly(pn.state):
        pn.state.busy = True
    try:
        assert page.busy is False
    finally:
        with edit_readonly(pn.state):
            pn.state.busy = False
    # Every page is made by served_page (the one place that builds a pmui.Page).
    assert inspect.getsource(pages).count("pmui.Page(") == 1


def test_the_client_charts_carry_no_unused_glyph_copies(client):
    """Nothing on the client charts selects or mutes: Bokeh's unselected and muted copies of each glyph are
    dropped (each would be one more model per session to build, serialise and send)."""
    from bokeh.models import GlyphRenderer

    pn.panel(client).get_root()
    renderers = [
        r
        for fig in client.charts.grid.select({"type": Plot})
        for r in fig.renderers
        if isinstance(r, GlyphRenderer)
    ]
    assert len(renderers) >= 10
    assert all(r.nonselection_glyph is None and r.muted_glyph is None for r in renderers)
