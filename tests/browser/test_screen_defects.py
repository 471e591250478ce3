"""What was wrong on screen at 1366×768, held in Chromium against a real `panel serve`: the comparison period was
cut off in the sidebar and stated nowhere in the main area — the main area's heading now states it (with the
measure, team and population), from the data, and follows the filters; the sidebar's period reads in full."""

from __future__ import annotations

import re

import duckdb
import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_client_page import NEXT_FRAME, TIMEOUT, choose

pytestmark = pytest.mark.browser
SCREEN = {"width": 1366, "height": 768}

# Whether an element (found inside shadow roots too) shows all its text: nothing cut off by its box.
FITS = """
(selector) => {
  const out = [];
  const visit = (root) => {
    for (const e of root.querySelectorAll(selector)) {
      let fits = e.scrollWidth <= e.clientWidth + 1;
      for (let p = e.parentElement; p && fits; p = p.parentElement) {
        const box = p.getBoundingClientRect(), mine = e.getBoundingClientRect();
        if (getComputedStyle(p).overflowX !== "visible" && mine.right > box.right + 1) fits = false;
      }
      out.push({text: e.innerText, fits, right: e.getBoundingClientRect().right});
    }
    for (const e of root.querySelectorAll("*")) if (e.shadowRoot) visit(e.shadowRoot);
  };
  visit(document);
  return out;
}
"""


def _day(d) -> str:
    d = pd.Timestamp(d)
    return f"{d.day} {d:%b %Y}"


def _periods(db) -> tuple[pd.Timestamp, pd.Timestamp, list[str]]:
    """First and last 'last session' over the episodes, and the teams — read from the database itself."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        lo, hi = con.execute(
            "SELECT min(last), max(last) FROM "
            "(SELECT max(session_date) AS last FROM session GROUP BY episode_id)"
        ).fetchone()
        teams = [t for (t,) in con.execute("SELECT team_id FROM team ORDER BY team_id").fetchall()]
    finally:
        con.close()
    return pd.Timestamp(lo), pd.Timestamp(hi), teams


def test_comparison_states_its_period_in_the_main_area(page: Page, served, demo_db):
    lo, hi, teams = _periods(demo_db)
    page.set_viewport_size(SCREEN)
    page.goto(f"{served.url}/comparison", timeout=TIMEOUT)
    heading = page.get_by_text(
        re.compile(rf"closed episodes whose last session fell between {_day(lo)} and {_day(hi)}")
    )
    expect(heading).to_be_visible(timeout=TIMEOUT)
    box = heading.bounding_box()
    assert box["y"] + box["height"] <= SCREEN["height"], "the period is stated on the first screen"
    assert box["x"] > 250, "in the main area, not the sidebar"
    assert re.search(r"· all teams · all populations ·", heading.inner_text())
    # The sidebar's period label reads in full.
    expect(page.get_by_text(re.compile(r"^Period"))).to_be_visible()
    titles = page.evaluate(FITS, ".bk-slider-title")
    assert titles and all(t["fits"] for t in titles), titles
    assert all(t["right"] <= box["x"] for t in titles), "the label stays inside the sidebar"

    # Another team: the heading says so.
    choose(page, 1, teams[1])
    expect(page.get_by_text(re.compile(rf"· team {re.escape(teams[1])} · all populations ·"))).to_be_visible(
        timeout=TIMEOUT
    )


# Every leaf element (text, or a chart's canvas) drawn over the page's help accordion ("How to read this
# page"), shadow roots included; null when the page has none.
DRAWN_OVER_HELP = """
() => {
  // The help accordion ("How to read this page") and every leaf element drawn over it.
  let help = null;
  const all = [];
  const visit = (root) => {
    for (const e of root.querySelectorAll("*")) {
      all.push(e);
      if (!help && String(e.className).includes("MuiAccordion-root") && e.textContent.includes("How to read this page")) help = e;
      if (e.shadowRoot) visit(e.shadowRoot);
    }
  };
  visit(document);
  if (!help) return null;
  const r = help.getBoundingClientRect();
  const inside = (e) => { for (let n = e; n; n = n.parentElement || (n.parentNode && n.parentNode.host)) if (n === help) return true; return false; };
  const out = [];
  for (const e of all) {
    if (e.children.length || inside(e) || help.contains(e)) continue;
    const isCanvas = e.tagName === "CANVAS";
    if (!isCanvas && !(e.textContent || "").trim()) continue;
    const s = getComputedStyle(e);
    if (s.visibility === "hidden" || s.display === "none") continue;
    const b = e.getBoundingClientRect();
    if (b.width < 1 || b.height < 1) continue;
    const overlap = Math.min(b.bottom, r.bottom) - Math.max(b.top, r.top) > 2 && Math.min(b.right, r.right) - Math.max(b.left, r.left) > 2;
    if (overlap) out.push((e.tagName + " " + (e.textContent || "").trim()).slice(0, 60));
  }
  return out;
}
"""

# page -> (link, what shows that its content is there)
LONG_PAGES = {
    "client": ("/client", ".bk-Figure"),
    "caseload": ("/caseload", ".bk-Figure"),
    "meeting": ("/meeting?supervisor=CL08", "text=Open charts"),
}


@pytest.mark.parametrize("name", list(LONG_PAGES))
def test_nothing_is_drawn_over_the_help_below_a_page_taller_than_the_window(page: Page, served, name):
    """Panel caps a stretching column at the window's height; the client page's episode and the meeting's
    agenda once ran past it, under the help accordion that follows them (at 1366 x 768 the events strip and
    agenda rows were drawn under "How to read this page")."""
    page.set_viewport_size({"width": 1366, "height": 768})
    link, ready = LONG_PAGES[name]
    page.goto(f"{served.url}{link}", timeout=TIMEOUT)
    expect(page.locator(ready).first).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_text("How to read this page").first).to_be_attached(timeout=TIMEOUT)
    page.wait_for_function("() => document.fonts.status === 'loaded'", timeout=TIMEOUT)
    page.evaluate(NEXT_FRAME)
    assert page.evaluate(DRAWN_OVER_HELP) == [], name
