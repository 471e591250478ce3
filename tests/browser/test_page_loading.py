"""Pages lay out at once and fill in: the caseload page's frame (its sidebar) shows first, its main area under
Panel's loading indicator, then the table — built in ``pn.state.onload`` once the browser has the page — with
no error on the way."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_client_page import TIMEOUT

pytestmark = pytest.mark.browser


# From the first frame on, the moment (performance.now()) each part is first seen, inside Panel's shadow roots
# too: the sidebar's switch label, an element under the loading indicator, a row of the episode table.
TIMELINE = """
(() => {
  window.__seen = {};
  const see = (name) => { if (!(name in window.__seen)) window.__seen[name] = performance.now(); };
  const visit = (root) => {
    for (const e of root.querySelectorAll("*")) {
      if (e.classList.contains("pn-loading")) see("loading");
      if (e.classList.contains("tabulator-row")) see("table");
      for (const n of e.childNodes) {
        if (n.nodeType === 3 && n.textContent.includes("Show closed episodes")) see("sidebar");
      }
      if (e.shadowRoot) visit(e.shadowRoot);
    }
  };
  const tick = () => {
    if (document.body) visit(document);
    if (!("table" in window.__seen)) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""


def test_caseload_shows_its_sidebar_first_then_its_table(page: Page, served):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.add_init_script(TIMELINE)
    page.goto(f"{served.url}/caseload?clinician=CL03", timeout=TIMEOUT)
    expect(page.locator(".tabulator-row").first).to_be_visible(timeout=TIMEOUT)
    page.wait_for_function("() => 'table' in window.__seen", timeout=TIMEOUT)
    seen = page.evaluate("() => window.__seen")
    assert {"sidebar", "loading", "table"} <= set(seen), seen
    assert seen["sidebar"] < seen["table"], f"the table came with the page's frame, not after it: {seen}"
    assert seen["loading"] < seen["table"], f"no loading indicator before the table: {seen}"
    expect(page.get_by_text("This caseload by quarter").first).to_be_visible()
    # The indicator is lifted once the content is in.
    expect(page.locator(".pn-loading")).to_have_count(0, timeout=TIMEOUT)
    assert not errors, errors
    assert "Traceback" not in page.content()
    assert not served.errors(), served.errors()[0]
