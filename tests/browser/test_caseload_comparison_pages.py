"""The caseload and comparison pages in headless Chromium against a real `panel serve`: sort the caseload
table, click through to a client, filter the comparison by team, see the funnel plot. Screenshots of both
pages are kept under docs/ for the README."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_client_page import BOKEH_COLUMN, HEADING, TIMEOUT, choose
from tests.conftest import REPO

pytestmark = pytest.mark.browser


# The texts of every element matching a CSS selector, inside Panel's shadow roots too (document.querySelectorAll
# does not enter them; Playwright's locators do, but wait_for_function runs plain JavaScript).
DEEP_TEXTS = """
(selector) => {
  const texts = [];
  const visit = (root) => {
    for (const e of root.querySelectorAll(selector)) texts.push(e.innerText.trim());
    for (const e of root.querySelectorAll("*")) if (e.shadowRoot) visit(e.shadowRoot);
  };
  visit(document);
  return texts;
}
"""

# True when a table column shows more than one number, in the given order.
COLUMN_SORTED = (
    "([selector, descending]) => { const v = ("
    + DEEP_TEXTS
    + ")(selector).map(Number); return v.length > 1 && v.every((x, i) => i === 0 || "
    "(descending ? v[i - 1] >= x : v[i - 1] <= x)); }"
)

# True when a table column shows at least one row and every row holds ``value``.
COLUMN_ALL = (
    "([selector, value]) => { const t = (" + DEEP_TEXTS + ")(selector); "
    "return t.length > 0 && t.every((x) => x === value); }"
)


def cell_selector(field: str) -> str:
    return f'.tabulator-row .tabulator-cell[tabulator-field="{field}"]'


def cells(page: Page, field: str) -> list[str]:
    return page.locator(cell_selector(field)).all_inner_texts()


#: The caseload picture's lines (one per episode): their number when it is at least ``n``, else false.
LINES_AT_LEAST = """
(n) => {
  let lines = 0;
  for (const doc of Bokeh.documents) {
    for (const model of doc.all_models) {
      if (model.data != null && typeof model.data === "object" && model.data.xs != null) {
        lines += model.data.xs.length;
      }
    }
  }
  return lines >= n ? lines : false;
}
"""


def sort_by(page: Page, field: str, order: str) -> None:
    """Click a column's title and wait until the table shows that column in ``order``."""
    column = page.locator(f'.tabulator-col[tabulator-field="{field}"]')
    column.locator(".tabulator-col-title").click()
    expect(column).to_have_attribute("aria-sort", order, timeout=TIMEOUT)
    page.wait_for_function(COLUMN_SORTED, arg=[cell_selector(field), order == "descending"], timeout=TIMEOUT)


def test_caseload_sort_and_click_through_to_a_client(page: Page, served):
    page.goto(f"{served.url}/caseload?clinician=CL03", timeout=TIMEOUT)
    expect(page.locator(".tabulator-row").first).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_text("on track (open)")).to_be_visible()
    expect(page.locator(".bk-Figure")).to_have_count(1, timeout=TIMEOUT)  # the caseload picture
    page.wait_for_function(LINES_AT_LEAST, arg=1, timeout=TIMEOUT)
    open_lines = page.evaluate(LINES_AT_LEAST, 0)
    # The README's picture: the open caseload in the table's own order (flagged first), not a re-sorted one.
    page.screenshot(path=str(REPO / "docs" / "caseload.png"), full_page=False)
    # (the switch's own label: the help text names it too)
    page.locator(".MuiFormControlLabel-label", has_text="Show closed episodes").click()  # a longer table
    expect(page.locator(".tabulator-row").nth(8)).to_be_visible(
        timeout=TIMEOUT
    )  # (Playwright pierces shadow DOM)
    # The picture follows: a line for every episode, closed ones too.
    page.wait_for_function(LINES_AT_LEAST, arg=open_lines + 1, timeout=TIMEOUT)
    sort_by(page, "sessions", "ascending")
    first = [int(v) for v in cells(page, "sessions")]
    assert first == sorted(first), "sorted ascending by sessions"
    sort_by(page, "sessions", "descending")
    second = [int(v) for v in cells(page, "sessions")]
    assert second == sorted(second, reverse=True) and second != first

    # On a 1366 px screen the later columns scroll into view sideways; the client code stays in sight.
    page.set_viewport_size({"width": 1366, "height": 768})
    holder = page.locator(".caseload-table .tabulator-tableholder")
    closed = page.locator(cell_selector("closed")).first
    expect(closed).not_to_be_in_viewport(timeout=TIMEOUT)
    for attempt in range(5):  # (the table is drawn again for the new width, which can undo a scroll)
        closed.scroll_into_view_if_needed(timeout=TIMEOUT)
        try:
            expect(closed).to_be_in_viewport(timeout=3_000)
            break
        except AssertionError:
            if attempt == 4:
                raise
    assert holder.evaluate("h => h.scrollLeft") > 0
    frame, code = holder.bounding_box(), page.locator(cell_selector("client")).first.bounding_box()
    assert frame["x"] <= code["x"] and code["x"] + code["width"] <= frame["x"] + frame["width"], (code, frame)

    link = page.locator('.tabulator-cell[tabulator-field="client"] a').first
    client = link.inner_text()
    link.click()
    expect(page.get_by_text(re.compile(rf"^Client {re.escape(client)} · episode"))).to_be_visible(
        timeout=TIMEOUT
    )
    expect(page.get_by_text(HEADING)).to_be_visible()
    assert not served.errors(), served.errors()[0]


def test_comparison_filter_by_team_and_funnel(page: Page, served):
    page.goto(f"{served.url}/comparison", timeout=TIMEOUT)
    expect(page.locator(".tabulator-row").first).to_be_visible(timeout=TIMEOUT)
    expect(
        page.get_by_text(re.compile("Inside the funnel means no evidence of a difference"))
    ).to_be_visible()
    expect(page.locator(".bk-Figure")).to_have_count(2, timeout=TIMEOUT)  # funnel and caterpillar
    positions = page.evaluate(BOKEH_COLUMN, "position")
    assert positions and set(positions) <= {
        "above 99.8 %",
        "above 95 %",
        "inside",
        "below 95 %",
        "below 99.8 %",
    }
    teams = set(cells(page, "team"))
    assert len(teams) > 1
    page.screenshot(path=str(REPO / "docs" / "comparison.png"), full_page=False)
    team = sorted(teams)[0]
    choose(page, 1, team)  # the Team select
    page.wait_for_function(COLUMN_ALL, arg=[cell_selector("team"), team], timeout=TIMEOUT)
    assert set(cells(page, "team")) == {team}


#: The table's titles and cells whose text is wider than the room they have (cut, with an ellipsis).
CUT = """
() => {
  const cut = [];
  const visit = (root) => {
    for (const e of root.querySelectorAll(".tabulator-col-title, .tabulator-row .tabulator-cell")) {
      const text = e.innerText.trim();
      if (text && e.offsetWidth > 0 && e.scrollWidth > e.clientWidth) cut.push(text);
    }
    for (const e of root.querySelectorAll("*")) if (e.shadowRoot) visit(e.shadowRoot);
  };
  visit(document);
  return cut;
}
"""


def test_comparison_table_shows_every_title_and_value_whole(page: Page, served):
    """The comparison table's column widths are given by the server (``alliance.style.column_widths``, so the
    browser does not measure every cell): no title or value may be cut, on the first page of rows and after
    sorting brings others to it."""
    page.goto(f"{served.url}/comparison", timeout=TIMEOUT)
    expect(page.locator(".tabulator-row").first).to_be_visible(timeout=TIMEOUT)
    page.wait_for_timeout(500)  # fonts loaded and the table laid out
    shown = page.locator(cell_selector("severity-adjusted ES (95 % CI)")).all_inner_texts()
    assert shown and any(" to " in t for t in shown), shown[:3]  # the test looks at real values
    assert page.evaluate(CUT) == []
    sort_by(page, "mean sessions", "ascending")
    assert page.evaluate(CUT) == []
