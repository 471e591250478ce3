"""Each role in Chromium, signed in through the login page of a server with sign-in on (the users and their
clinician codes come from the demo database, see tests/served/test_auth.py): a clinician sees their own
clients only; a client outside the scope — asked for in the URL or forged into the client selector from the
page's JavaScript, over the websocket — is "not found" exactly like a client that does not exist, and none of
its data reaches the page; a researcher is refused the client page; the comparison names only the viewer."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_client_page import BOKEH_COLUMN, FIGURES_DRAWN
from tests.served.test_auth import CODE, signin  # noqa: F401 — the server with sign-in on (a fixture)

pytestmark = pytest.mark.browser
TIMEOUT = 60_000
HEADING = re.compile(r"^Client (\S+) · episode (\S+)$")

# The options of the select labelled ``label``, as the page's Bokeh document holds them.
OPTIONS = """
(label) => {
  for (const doc of Bokeh.documents) {
    for (const model of doc.all_models) {
      if (model.label === label && model.options !== undefined) {
        return Array.from(model.options).map((o) => Array.isArray(o) ? String(o[0]) : String(o));
      }
    }
  }
  return null;
}
"""

# Set the value of the select labelled ``label`` as a browser's script can: the change goes to the server
# over the session's websocket, like a choice the user made.
# The value the page's ``label`` select holds in the browser.
VALUE = """
(label) => {
  for (const doc of Bokeh.documents) {
    for (const model of doc.all_models) {
      if (model.label === label && model.options !== undefined) return model.value;
    }
  }
  return null;
}
"""

FORGE = """
([label, value]) => {
  for (const doc of Bokeh.documents) {
    for (const model of doc.all_models) {
      if (model.label === label && model.options !== undefined) {
        model.value = value;
        return true;
      }
    }
  }
  return false;
}
"""

# Every string held by any model of the page (data sources, texts, options): what the browser has received.
ALL_STRINGS = """
() => {
  const out = [];
  const seen = new Set();
  const add = (v, depth) => {
    if (depth > 4 || v === null || v === undefined) return;
    if (typeof v === "string") { out.push(v); return; }
    if (Array.isArray(v) || ArrayBuffer.isView(v)) { for (const x of v) add(x, depth + 1); return; }
    if (v instanceof Map) { for (const [k, x] of v) { add(k, depth + 1); add(x, depth + 1); } return; }
  };
  for (const doc of Bokeh.documents) {
    for (const model of doc.all_models) {
      if (seen.has(model.id)) continue;
      seen.add(model.id);
      for (const prop of model) {
        try { add(prop.get_value(), 0); } catch (e) {}
      }
      if (model.data !== undefined && typeof model.data === "object") {
        for (const v of Object.values(model.data)) add(v, 0);
      }
    }
  }
  return out.join("\\n");
}
"""


def log_in(page: Page, server, name: str, path: str) -> None:
    """Open ``path``: the server sends the browser to its login page; sign in there and come back."""
    page.goto(server.url + path, timeout=TIMEOUT)
    expect(page).to_have_title("Alliance · Sign in", timeout=TIMEOUT)
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(path.split("?")[0])), timeout=TIMEOUT)


def forge_until_answered(page: Page, label: str, value: str, answer: str) -> None:
    """Send ``value`` for the ``label`` select from the page's JavaScript until the page answers ``answer``.

    A value sent while the server is still pushing the page's first updates can be overtaken by them (the
    browser then shows the server's value again, and nothing was accepted); a forger simply sends it again."""
    deadline = time.monotonic() + TIMEOUT / 1000
    shown = page.evaluate(VALUE, label)
    while True:
        assert page.evaluate(FORGE, [label, shown])  # back to the page's own value: the next one is a change
        assert page.evaluate(FORGE, [label, value])
        try:
            expect(page.get_by_text(answer)).to_be_visible(timeout=3000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def episode_shown(page: Page) -> tuple[str, str]:
    heading = page.get_by_text(HEADING)
    expect(heading).to_be_visible(timeout=TIMEOUT)
    page.wait_for_function(FIGURES_DRAWN, arg=3, timeout=TIMEOUT)
    return HEADING.match(heading.inner_text()).groups()


def test_a_wrong_password_is_refused_on_the_login_page(page: Page, signin):  # noqa: F811
    page.goto(signin.url + "/caseload", timeout=TIMEOUT)
    page.get_by_label("User name").fill("cli")
    page.get_by_label("Password").fill(signin.password + "-wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.", timeout=TIMEOUT)
    expect(page).to_have_title("Alliance · Sign in")
    assert "bokeh" not in page.content().lower()


def test_a_clinician_sees_own_clients_and_a_forged_client_is_not_found(page: Page, signin):  # noqa: F811
    people = signin.people
    me, mine = people["clinician"], people["clients"][people["clinician"]]
    log_in(page, signin, "cli", "/client")
    expect(page.get_by_text("Signed in as")).to_be_visible(timeout=TIMEOUT)
    client, _ = episode_shown(page)
    assert client in mine
    assert page.evaluate(OPTIONS, "Clinician") == [me]
    assert set(page.evaluate(OPTIONS, "Client")) <= mine

    # A forged choice over the websocket: another team's client, then one that does not exist.
    for forged in (people["outsider"], "C-000000"):
        forge_until_answered(page, "Client", forged, f"Client {forged} not found.")
        assert episode_shown(page)[0] == client, "the page left the episode it showed"
        assert set(page.evaluate(BOKEH_COLUMN, "client_id") or []) <= mine
    received = page.evaluate(ALL_STRINGS)
    others = set().union(*(c for cl, c in people["clients"].items() if cl != me)) - mine
    assert not (set(re.findall(r"\bC-[0-9a-f]{6}\b", received)) & others - {people["outsider"]})
    assert not (set(CODE.findall(received)) - {me}), "another clinician's code reached the browser"
    assert not signin.errors(), signin.errors()[0]


def test_a_deep_link_outside_the_scope_is_not_found(page: Page, signin):  # noqa: F811
    people = signin.people
    log_in(page, signin, "cli", f"/client?client={people['outsider']}")
    expect(page.get_by_text(f"Client {people['outsider']} not found.")).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_text("No episode selected")).to_be_visible()
    expect(page.get_by_text("This client has no episode you can see.")).to_be_visible()
    page.goto(f"{signin.url}/client?client=C-000000", timeout=TIMEOUT)
    expect(page.get_by_text("Client C-000000 not found.")).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_text("No episode selected")).to_be_visible()
    expect(page.get_by_text("This client has no episode you can see.")).to_be_visible()
    assert not (set(CODE.findall(page.evaluate(ALL_STRINGS))) - {people["clinician"]})


def test_a_researcher_is_refused_the_client_page(page: Page, signin):  # noqa: F811
    log_in(page, signin, "res", "/client")
    expect(page.get_by_text("Not available to your role")).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_text("The client page is not available to the researcher role.")).to_be_visible()
    expect(page.locator(".bk-Figure")).to_have_count(0)
    received = page.evaluate(ALL_STRINGS)
    assert not re.findall(r"\bC-[0-9a-f]{6}\b", received) and not CODE.findall(received)


def test_the_comparison_names_only_the_viewer(page: Page, signin):  # noqa: F811
    me = signin.people["clinician"]
    log_in(page, signin, "cli", "/comparison")
    expect(page.get_by_text(f"you ({me})").first).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_text(re.compile(r"^clinician [A-Z]{1,2}$")).first).to_be_visible()
    received = page.evaluate(ALL_STRINGS)
    assert set(CODE.findall(received)) == {me}, "a colleague's code reached the browser"
    assert not signin.errors(), signin.errors()[0]
