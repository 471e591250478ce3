"""The client page in headless Chromium against a real `panel serve`: both charts appear and follow the
chosen client; a deep link opens an episode with its planted events marked; instrument and axis switch.
A screenshot is saved under test-artifacts/ when a test fails."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import REPO, Server

pytestmark = pytest.mark.browser
TIMEOUT = 60_000
HEADING = re.compile(r"^Client \S+ · episode")

# Every value of one column across the Bokeh data sources of the page (what the charts actually draw).
BOKEH_COLUMN = """
(column) => {
  const values = [];
  for (const doc of Bokeh.documents) {
    for (const model of doc.all_models) {
      if (model.data != null && typeof model.data === "object" && model.data[column] != null) {
        values.push(...Array.from(model.data[column]).map(String));
      }
    }
  }
  return values;
}
"""

# True when the page's Bokeh figures (``n`` of them) have all finished rendering.
FIGURES_DRAWN = """
(n) => {
  if (window.Bokeh === undefined || Bokeh.index === undefined) return false;
  const figures = [...Bokeh.index.all_views()].filter((v) => v.model.type === "Figure");
  return figures.length === n && figures.every((v) => v.has_finished());
}
"""

# Everything the charts draw, as one string: it changes when any data source of the page changes.
DRAWN_DATA = """
() => {
  const parts = [];
  for (const doc of Bokeh.documents) {
    for (const model of doc.all_models) {
      if (model.data != null && typeof model.data === "object") {  // a data source, not a null field
        for (const [column, values] of Object.entries(model.data)) {
          if (values != null) parts.push(column + "=" + Array.from(values).map(String).join(","));
        }
      }
    }
  }
  return parts.join("|");
}
"""

# Resolves after the browser has painted the next frame (what a screenshot then shows is drawn).
NEXT_FRAME = "() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))"


def open_page(page: Page, url: str) -> str:
    page.goto(url, timeout=TIMEOUT)
    heading = page.get_by_text(HEADING)
    expect(heading).to_be_visible(timeout=TIMEOUT)
    expect(page.locator(".bk-Figure")).to_have_count(3, timeout=TIMEOUT)  # outcome, alliance, events
    page.wait_for_function(FIGURES_DRAWN, arg=3, timeout=TIMEOUT)  # Bokeh has finished drawing them
    return heading.inner_text()


def drawn(page: Page, column: str) -> list[str]:
    return page.evaluate(BOKEH_COLUMN, column)


def choose(page: Page, index: int, option: str) -> None:
    """Pick ``option`` in the ``index``-th Material UI select of the sidebar."""
    page.get_by_role("combobox").nth(index).click()
    page.get_by_role("menuitem", name=option, exact=True).click()


def planted(db: Path, sql: str) -> tuple:
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute(sql).fetchone()
    finally:
        con.close()
    assert row, f"the demo has no such planted event: {sql}"
    return row


def test_client_page_shows_the_charts_and_follows_the_chosen_client(page: Page, served):
    first = open_page(page, f"{served.url}/client")
    expect(page.get_by_text("Viewing scope: full access (demo)")).to_be_visible()
    charts = page.locator(".bk-GridPlot").first
    before = charts.screenshot()
    data_before = page.evaluate(DRAWN_DATA)

    client_select = page.get_by_role("combobox").nth(1)
    current = client_select.inner_text()
    client_select.click()
    options = [t for t in page.get_by_role("menuitem").all_inner_texts() if t.strip("\u200b ").strip()]
    other = next(o for o in options if o != current)
    page.get_by_role("menuitem", name=other, exact=True).click()

    expect(page.get_by_text(re.compile(rf"^Client {re.escape(other)} · episode"))).to_be_visible(
        timeout=TIMEOUT
    )
    assert page.get_by_text(HEADING).inner_text() != first
    expect(page.locator(".bk-Figure")).to_have_count(3)
    # The new episode's data reach the charts, which finish drawing them.
    page.wait_for_function(f"(before) => ({DRAWN_DATA})() !== before", arg=data_before, timeout=TIMEOUT)
    page.wait_for_function(FIGURES_DRAWN, arg=3, timeout=TIMEOUT)
    page.evaluate(NEXT_FRAME)
    assert charts.screenshot() != before, "the charts did not change with the client"
    page.wait_for_url(
        re.compile(rf"client={re.escape(other)}"), timeout=10_000
    )  # the URL follows the selection


def test_deep_link_to_a_repaired_rupture_shows_marker_and_span(page: Page, served, demo_db):
    episode, client, session = planted(
        demo_db,
        "SELECT p.episode_id, e.client_id, p.session_number FROM planted_events p JOIN episode e USING (episode_id) "
        "WHERE p.event_type = 'rupture_repaired' AND p.instrument = 'SRS' ORDER BY p.episode_id LIMIT 1",
    )
    open_page(page, f"{served.url}/client?client={client}&episode={episode}")
    expect(page.get_by_text(re.compile(rf"^Client {client} · episode {episode}$"))).to_be_visible()
    # The shaded rupture-to-repair span and the rupture marker are in the drawn data.
    assert "rupture repaired" in drawn(page, "span")
    descriptions = drawn(page, "description")
    assert any(d.startswith("Rupture: SRS fell") and "repaired at session" in d for d in descriptions)
    assert any(
        d.startswith(f"Session {session} ") and "rupture, repaired at session" in d for d in descriptions
    )
    expect(page.get_by_text(re.compile(r"1 rupture\(s\): 1 repaired"))).to_be_visible()
    docs = REPO / "docs"
    docs.mkdir(exist_ok=True)
    page.screenshot(path=str(docs / "client.png"), full_page=True)  # the README's picture, kept current


def test_deep_link_marks_a_planted_sudden_gain(page: Page, served, demo_db):
    episode, client, session = planted(
        demo_db,
        "SELECT p.episode_id, e.client_id, p.session_number FROM planted_events p JOIN episode e USING (episode_id) "
        "WHERE p.event_type = 'sudden_gain' AND p.instrument = 'ORS' ORDER BY p.episode_id LIMIT 1",
    )
    open_page(page, f"{served.url}/client?client={client}&episode={episode}")
    assert "sudden gain" in drawn(page, "kind")
    assert any(
        d.startswith(f"Candidate sudden gain between sessions {session} and {session + 1}")
        for d in drawn(page, "description")
    )


def test_switching_instrument_and_axis(page: Page, served, demo_db):
    episode, client = planted(
        demo_db,
        "SELECT e.episode_id, e.client_id FROM episode e JOIN rating r USING (episode_id) "
        "WHERE r.instrument = 'GAD-7' GROUP BY ALL HAVING count(*) >= 6 ORDER BY 1 LIMIT 1",
    )
    open_page(page, f"{served.url}/client?client={client}&episode={episode}")
    assert any("PHQ-9" in d for d in drawn(page, "description"))
    choose(page, 3, "GAD-7")  # the outcome measure
    expect(page.get_by_text(re.compile(r"^GAD-7 \d+ → \d+"))).to_be_visible(timeout=TIMEOUT)
    # The outcome chart now draws GAD-7 points (their hover descriptions name the measure).
    page.wait_for_function(
        f"() => ({BOKEH_COLUMN})('description').some((d) => /· GAD-7 \\d+/.test(d))", timeout=TIMEOUT
    )
    assert any(re.search(r"· GAD-7 \d+", d) for d in drawn(page, "description"))
    page.get_by_role("button", name="DATE").click()
    page.wait_for_function(
        "() => Bokeh.documents.some(d => Array.from(d.all_models).some(m => m.type === 'DatetimeAxis'))",
        timeout=TIMEOUT,
    )
    expect(page.locator(".bk-Figure")).to_have_count(3)


def test_missing_database_shows_a_message_in_the_browser(page: Page, tmp_path):
    server = Server(tmp_path / "missing.duckdb", tmp_path / "panel.log")
    try:
        page.goto(f"{server.url}/client", timeout=TIMEOUT)
        expect(page.get_by_text("The database cannot be used")).to_be_visible(timeout=TIMEOUT)
        expect(page.get_by_text(re.compile("not found"))).to_be_visible()
        # An error, not a green success: Material UI's error alert (red, role "alert").
        alert = page.get_by_role("alert").filter(has_text="The database cannot be used")
        expect(alert).to_have_class(re.compile(r"MuiAlert-colorError"))
        colour = alert.evaluate("(el) => getComputedStyle(el).color")
        red, green, _ = (int(v) for v in re.findall(r"\d+", colour)[:3])
        assert red > green, f"the problem is not shown in an error colour: {colour}"
    finally:
        server.stop()


def test_an_item_breakdown_adds_a_chart_that_nothing_is_drawn_over(page: Page, served):
    """The item heat strip and the item lines each add a fourth chart: the charts grow to hold it (they were
    once squeezed to the window, the events strip drawn over the methods below), every figure keeps its
    height, and each draws the items (the heat strip its cells, the lines one source per item)."""
    page.set_viewport_size({"width": 1366, "height": 768})
    open_page(page, f"{served.url}/client")
    heights = page.evaluate(
        "() => [...Bokeh.index.all_views()].filter((v) => v.model.type === 'Figure')"
        ".map((v) => Math.round(v.el.getBoundingClientRect().height))"
    )
    # What each breakdown draws: the heat strip's cells (a source with the item labels), the item lines (one
    # source per item with its scores and no label column).
    drawn_items = {
        "items as heat strip": "() => Bokeh.documents.flatMap((d) => [...d.all_models])"
        ".filter((m) => m.data && m.data.item_score && m.data.label && m.data.label.length > 0).length",
        "items as lines": "() => Bokeh.documents.flatMap((d) => [...d.all_models])"
        ".filter((m) => m.data && m.data.item_score && !m.data.label && m.data.item_score.length > 0).length",
    }
    for option in ("items as heat strip", "items as lines"):
        page.get_by_role("combobox", name="Alliance breakdown").click()
        page.get_by_role("menuitem", name=option, exact=True).click()
        page.wait_for_function(f"() => ({drawn_items[option]})() > 0", timeout=TIMEOUT)
        expect(page.locator(".bk-Figure")).to_have_count(4, timeout=TIMEOUT)
        page.wait_for_function(FIGURES_DRAWN, arg=4, timeout=TIMEOUT)
        page.evaluate(NEXT_FRAME)
        bottom = page.evaluate(
            "() => Math.max(...[...Bokeh.index.all_views()].filter((v) => v.model.type === 'Figure')"
            ".map((v) => v.el.getBoundingClientRect().bottom))"
        )
        methods = page.get_by_text(re.compile(r"^reliable change:")).bounding_box()
        assert methods["y"] >= bottom - 1, (option, bottom, methods)  # the last chart ends above the methods
        now = page.evaluate(
            "() => [...Bokeh.index.all_views()].filter((v) => v.model.type === 'Figure')"
            ".map((v) => Math.round(v.el.getBoundingClientRect().height))"
        )
        assert now[:2] == heights[:2] and now[-1] == heights[-1], (option, heights, now)
