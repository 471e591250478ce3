"""Switching client on the served client page never shows a mixture of two episodes: from the moment the new
client's code is in the heading, every chart draws the new episode (each figure names the episode it draws in
its Bokeh ``tags``, and the drawn hover texts are the new episode's), and until then the old episode stays
whole under the loading indicator. A monitor in the page checks every painted frame during the switch.
A screenshot is saved under test-artifacts/ when a test fails."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from alliance.service import Service
from alliance.state import ClientSelection
from tests.browser.test_client_page import BOKEH_COLUMN

pytestmark = pytest.mark.browser
TIMEOUT = 60_000
HEADING = re.compile(r"^Client \S+ · episode \S+$")

# What the page shows, as one object: the episode in the heading (the DOM, through Panel's shadow roots),
# the episode each Bokeh figure says it draws, and whether the loading indicator is on.
SHOWN = r"""
() => {
  const shown = {heading: null, figures: [], loading: false, drawn: false};
  const walk = (root) => {
    for (const el of root.querySelectorAll("*")) {
      if (el.tagName === "H3") {
        const m = /^Client \S+ · episode (\S+)$/.exec(el.textContent.trim());
        if (m) shown.heading = m[1];
      }
      if (el.classList.contains("pn-loading")) shown.loading = true;
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  if (window.Bokeh !== undefined && Bokeh.index !== undefined) {
    const figures = [...Bokeh.index.all_views()].filter((v) => v.model.type === "Figure");
    shown.figures = figures.map((v) => {
      const tag = v.model.tags.find((t) => typeof t === "string" && t.startsWith("episode:"));
      return tag === undefined ? null : tag.slice("episode:".length);
    });
    shown.drawn = figures.length === 3 && figures.every((v) => v.has_finished());
  }
  return shown;
}
"""

# Record what every painted frame shows until stopped; a frame whose figures draw another episode than the
# heading names is a mixture.
START_MONITOR = f"""
() => {{
  const shown = {SHOWN};
  window.__monitor = {{frames: 0, loading: 0, mixtures: [], episodes: [], running: true}};
  const tick = () => {{
    const m = window.__monitor;
    if (!m.running) return;
    const s = shown();
    m.frames += 1;
    if (s.loading) m.loading += 1;
    if (s.figures.some((f) => f !== s.heading)) m.mixtures.push(s);
    if (m.episodes[m.episodes.length - 1] !== s.heading) m.episodes.push(s.heading);
    requestAnimationFrame(tick);
  }};
  requestAnimationFrame(tick);
}}
"""

STOP_MONITOR = "() => { window.__monitor.running = false; return window.__monitor; }"


def shown(page: Page) -> dict:
    return page.evaluate(SHOWN)


def hover_texts(db, client: str, episode: str) -> set[str]:
    """The hover texts of an episode's outcome and alliance points, as the page computes them."""
    selection = ClientSelection(service=Service.open(db))
    selection.open(client, episode)
    assert selection.episode == episode
    story = selection.story
    rated = [f.dropna(subset=["score"]) for f in (story.outcome, story.alliance)]
    return {d for f in rated for d in f["description"]}


def switch_client(page: Page) -> str:
    """Choose another client with the page's client selector; returns its code."""
    select = page.get_by_role("combobox").nth(1)
    current = select.inner_text()
    select.click()
    options = [t for t in page.get_by_role("menuitem").all_inner_texts() if t.strip("\u200b ").strip()]
    other = next(o for o in options if o != current)
    page.get_by_role("menuitem", name=other, exact=True).click()
    return other


def test_switching_client_swaps_heading_and_charts_together(page: Page, served, demo_db):
    page.goto(f"{served.url}/client", timeout=TIMEOUT)
    expect(page.get_by_text(HEADING)).to_be_visible(timeout=TIMEOUT)
    page.wait_for_function(f"() => ({SHOWN})().drawn", timeout=TIMEOUT)
    start = shown(page)
    assert start["figures"] == [start["heading"]] * 3, start

    episodes = [start["heading"]]
    for _ in range(2):  # two switches in a row
        old = episodes[-1]
        old_client = re.match(r"^Client (\S+) ·", page.get_by_text(HEADING).inner_text()).group(1)
        page.evaluate(START_MONITOR)
        client = switch_client(page)
        # Once the new client's code is in the heading, every chart draws the new episode.
        expect(page.get_by_text(re.compile(rf"^Client {re.escape(client)} · episode \S+$"))).to_be_visible(
            timeout=TIMEOUT
        )
        now = shown(page)
        assert now["heading"] != old and now["figures"] == [now["heading"]] * 3, now
        page.wait_for_function(f"() => ({SHOWN})().drawn", timeout=TIMEOUT)
        monitor = page.evaluate(STOP_MONITOR)
        assert monitor["frames"] > 0
        assert monitor["mixtures"] == [], f"frames mixing two episodes: {monitor['mixtures'][:3]}"
        # The heading went from the old episode to the new one, with nothing in between.
        assert monitor["episodes"] == [old, now["heading"]], monitor["episodes"]
        assert monitor["loading"] > 0, "the old episode was not held under the loading indicator"
        assert not shown(page)["loading"]
        # The drawn data are the new episode's, and none is only the old one's.
        drawn = set(page.evaluate(BOKEH_COLUMN, "description"))
        new_texts = hover_texts(demo_db, client, now["heading"])
        old_texts = hover_texts(demo_db, old_client, old)
        assert new_texts <= drawn
        assert not (old_texts - new_texts) & drawn
        episodes.append(now["heading"])
