"""Every file a page needs comes from the server itself, for the first visitor of a page and for the ones
after: the server writes later visitors' HTML from a kept session and builds each visitor's own session when
its websocket connects (``--reuse-sessions``), and Panel would then point its style sheets at a public CDN —
a request to a third party from the clinic's network, and tables drawn without their styles offline."""

from __future__ import annotations

import urllib.parse

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_client_page import FIGURES_DRAWN, TIMEOUT

pytestmark = pytest.mark.browser

# page -> (link, what shows that its content is there)
PAGES = {
    "client": ("/client", ".bk-Figure"),
    "caseload": ("/caseload", ".tabulator-row"),
    "comparison": ("/comparison", ".tabulator-row"),
    "meeting": ("/meeting?supervisor=CL08", "text=Open charts"),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_later_visitors_load_everything_from_the_server(page: Page, served, name):
    origin = urllib.parse.urlsplit(served.url).netloc
    link, ready = PAGES[name]
    requested: list[str] = []
    failed: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    # (a request the next navigation cut short, net::ERR_ABORTED, did not fail)
    page.on(
        "requestfailed", lambda r: "ERR_ABORTED" in (r.failure or "") or failed.append(f"{r.failure} {r.url}")
    )
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    for visit in ("first", "second"):  # the second visit's session is built when its websocket connects
        requested.clear()
        failed.clear()
        page.goto(f"{served.url}{link}", timeout=TIMEOUT)
        expect(page.locator(ready).first).to_be_visible(timeout=TIMEOUT)
        page.wait_for_load_state("networkidle", timeout=TIMEOUT)
        assert any(u.endswith(".css") or ".css?" in u for u in requested), f"{name}: no style sheet loaded"
        elsewhere = sorted({u for u in requested if urllib.parse.urlsplit(u).netloc not in (origin, "")})
        assert not elsewhere, f"{name}, {visit} visit: requests beyond the server: {elsewhere[:5]}"
        assert not failed, f"{name}, {visit} visit: requests that failed: {failed[:5]}"
    assert not served.errors(), served.errors()[0]


def test_the_material_ui_bundle_is_loaded_by_the_browser_itself(page: Page, served):
    """``alliance.native_bundle``: Panel's module shim would read the 1.4 MB bundle again as text on every page
    and hand the browser a copy under a new address, compiled from scratch each time; the bundle goes to the
    browser's own module loader instead, once, and the page's Material UI components still work."""
    page.goto(f"{served.url}/caseload", timeout=TIMEOUT)
    expect(page.locator(".tabulator-row").first).to_be_visible(timeout=TIMEOUT)
    loads = page.evaluate(
        """performance.getEntriesByType('resource')
             .filter((e) => e.name.includes('panel-material-ui.bundle.js'))
             .map((e) => e.initiatorType)"""
    )
    assert loads == ["script"], f"the bundle was loaded as {loads} (the shim fetches it: 'fetch')"
    assert page.evaluate("window.importShim.allianceNativeBundle === true")
    # A Material UI component from that bundle answers: the clinician select opens and lists its choices.
    page.get_by_role("combobox").first.click()
    expect(page.get_by_role("menuitem").first).to_be_visible(timeout=TIMEOUT)
    assert not served.errors(), served.errors()[0]


def test_charts_are_drawn_without_a_style_lookup_per_visual(page: Page, served):
    """``alliance.chart_css``: Bokeh's lookup of CSS overrides for each line, fill and text of a chart (a
    ``getComputedStyle`` per visual each time it is drawn) answers "not set" on served pages, the script runs
    after Bokeh's own, and the charts still draw."""
    page.goto(f"{served.url}/client", timeout=TIMEOUT)
    expect(page.locator(".bk-Figure").first).to_be_visible(timeout=TIMEOUT)
    page.wait_for_function(FIGURES_DRAWN, arg=3, timeout=TIMEOUT)  # Bokeh has finished drawing them
    visual = "Bokeh.require('core/visuals/visual').VisualProperties.prototype"
    assert page.evaluate(f"{visual}.allianceNoCssValues === true"), "the script did not run after Bokeh's"
    assert page.evaluate(f"{visual}._get_css_value('line-color')") == ""
    assert not served.errors(), served.errors()[0]


# A chart's base font size, read by Bokeh's getter: once at once and once after the chart's font size changed
# (in the same frame, and at the next frame).
FONT_SIZES = """
async () => {
  const view = [...Bokeh.index.all_views()].find((v) => v.model.type === "Figure");
  const before = view.base_font_size;
  const computed = parseFloat(getComputedStyle(view.el).fontSize);
  view.el.style.fontSize = (computed + 7) + "px";
  const same_frame = view.base_font_size;
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  const next_frame = view.base_font_size;
  view.el.style.fontSize = "";
  return [before, computed, same_frame, next_frame];
}
"""


def test_a_charts_font_size_is_read_once_per_frame(page: Page, served):
    """``alliance.chart_css`` keeps each chart's base font size (Bokeh reads it with ``getComputedStyle`` for
    every axis, label and title it measures or draws) for the rest of the frame: the value is the browser's,
    and a change of the chart's font size shows from the next frame on."""
    page.goto(f"{served.url}/client", timeout=TIMEOUT)
    page.wait_for_function(FIGURES_DRAWN, arg=3, timeout=TIMEOUT)
    plot = "Bokeh.require('models/plots/plot_canvas').PlotView.prototype"
    assert page.evaluate(f"{plot}.allianceFontSizePerFrame === true"), "the script did not run after Bokeh's"
    before, computed, same_frame, next_frame = page.evaluate(FONT_SIZES)
    assert before == computed > 0
    assert same_frame == before  # kept within the frame
    assert next_frame == computed + 7  # read afresh at the next one
    assert not served.errors(), served.errors()[0]


def _linked_files(html: str) -> list[str]:
    """The scripts and style sheets a page's HTML links, in order."""
    import re

    return re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize("name", ["client", "caseload"])
def test_every_visitor_gets_the_same_files_linked(served, name):
    """``alliance.page_resources``: the scripts and style sheets of a page's HTML are listed once per server
    process and kept; every visitor's HTML links the same files, each from this server."""
    import urllib.request

    pages = [
        urllib.request.urlopen(f"{served.url}{PAGES[name][0]}", timeout=60).read().decode() for _ in range(3)
    ]
    linked = [_linked_files(html) for html in pages]
    assert len(linked[0]) >= 5 and any("bokeh" in f for f in linked[0]), linked[0]
    assert linked[1] == linked[0] and linked[2] == linked[0]
    assert not [f for f in linked[0] if f.startswith(("http://", "https://", "//"))]
    assert not served.errors(), served.errors()[0]
