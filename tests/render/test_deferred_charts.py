"""A served client page leaves its charts' figures out of the page's frame (``ClientCharts(deferred=True)``):
they are made with the main area (``ClientPage.prepare``), drawing the episode chosen by then."""

from __future__ import annotations

import duckdb

from alliance.service import Service
from alliance.state import ClientSelection
from alliance.views.client import ClientCharts


def _episode_tags(charts: ClientCharts) -> set:
    return {tag for fig, *_ in charts.grid.children for tag in fig.tags}


def test_deferred_charts_are_made_on_build_with_the_story_shown_last(demo_db):
    con = duckdb.connect(str(demo_db), read_only=True)
    try:
        client, episode = con.execute(
            "SELECT client_id, episode_id FROM episode ORDER BY episode_id DESC LIMIT 1"
        ).fetchone()
    finally:
        con.close()
    selection = ClientSelection(service=Service.open(demo_db))
    first = selection.episode
    assert first != episode
    charts = ClientCharts(selection=selection, follow=False, deferred=True)
    assert charts.grid is None and charts.__panel__().objects == [], "no figures before build()"

    selection.open(client, episode)
    charts.show(selection.story)  # as the page shows another episode before its main area is built
    assert charts.grid is None

    charts.build()
    assert _episode_tags(charts) == {f"episode:{episode}"}
    assert len(charts.__panel__().objects) == 1
    charts.build()  # once only
    assert len(charts.__panel__().objects) == 1


def test_charts_not_deferred_are_made_at_once(demo_db):
    selection = ClientSelection(service=Service.open(demo_db))
    charts = ClientCharts(selection=selection, follow=False)
    assert _episode_tags(charts) == {f"episode:{selection.episode}"}


def test_a_served_comparison_page_makes_its_views_with_the_main_area(demo_db, monkeypatch):
    import alliance.pages as pages

    monkeypatch.setattr(pages, "serving", lambda: True)
    page = pages.ComparisonPage(service=Service.open(demo_db))
    assert page.table is None and page.content.objects == [], "nothing of the main area in the frame"
    page.prepare()
    assert page.table is not None and page.table.widget.value is not None and len(page.table.widget.value) > 0
    assert len(page.content.objects[2].objects) == 2, "funnel and caterpillar side by side"
    before = list(page.content.objects)
    page.prepare()  # once only
    assert page.content.objects == before
