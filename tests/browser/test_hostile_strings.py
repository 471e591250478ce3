"""Hostile strings stay inert: a service whose client, clinician, team and supervisor codes are HTML, Markdown
and spreadsheet-formula payloads (imported through `alliance import`'s code path, which accepts any printable
code), and an action note with script in it (stored through the marks store), served with `panel serve` and
opened in headless Chromium — every page shows the strings literally and no script runs (no dialog). The
meeting pack opened from file:// likewise; and the `alliance metrics` CSVs start no spreadsheet formula."""

from __future__ import annotations

import csv
import datetime as dt
import re

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from alliance.inert import url_param
from alliance.marks import MarkStore
from tests.browser.test_client_page import TIMEOUT
from tests.conftest import Server

pytestmark = pytest.mark.browser

SUPERVISOR = "<img src=x onerror=alert(75)>"
TEAM_HTML = "<img src=x onerror=alert(74)>"
TEAM_FORMULA = '=HYPERLINK("http://x","team")'
CLINICIAN_HTML = "<img src=x onerror=alert(77)>"
CLINICIAN_FORMULA = '=HYPERLINK("http://x","y")'
# Client codes: HTML, Markdown (a javascript: link, emphasis) and formula payloads.
CLIENT_HTML = "<img src=x onerror=alert(78)>"
CLIENT_MD = "[a](javascript:alert(79))"
CLIENT_MD_CLOSED = "*x* <svg onload=alert(80)>"
CLIENT_AT = "@SUM(A1)"
CLIENT_MINUS = "-2+3"
CLIENT_PLUS = "+cmd"
NOTE = "<img src=x onerror=alert(81)> *x* [a](javascript:alert(82)) </script><script>alert(83)</script>"

# Outcome (ORS, higher is better) and alliance (SRS) over six weekly sessions.
WORSE = ([26, 24, 22, 19, 17, 15], [35, 34, 33, 30, 29, 28])  # reliably worse, alliance below cut-off
# Reliably better with a sudden gain between sessions 3 and 4 (so the service has sudden events too).
BETTER = ([15, 15, 16, 26, 27, 27], [38, 39, 39, 40, 40, 40])
# Closed episodes need different intakes: the effect size divides by the SD of closed episodes' intakes.
BETTER_LATER = ([19, 19, 20, 30, 31, 32], [37, 38, 39, 39, 40, 40])

# The rendered text of the page, inside Panel's shadow roots too (innerText; a hidden host's shadow root,
# e.g. the meeting page's client view while the agenda shows, is skipped).
PAGE_TEXT = """
() => {
  const texts = [document.body.innerText];
  const visit = (root) => {
    for (const e of root.querySelectorAll("*")) {
      if (!e.shadowRoot || (e.checkVisibility !== undefined && !e.checkVisibility())) continue;
      for (const c of e.shadowRoot.children) {
        if (!["STYLE", "SCRIPT", "LINK", "TEMPLATE"].includes(c.tagName) && c.innerText !== undefined)
          texts.push(c.innerText);
      }
      visit(e.shadowRoot);
    }
  };
  visit(document);
  return texts.join("\\n");
}
"""

# Elements that a payload could have made — inline event handlers, javascript: links, scripts holding a
# payload — anywhere, shadow roots included.
INJECTED = r"""
() => {
  const found = [];
  const visit = (root) => {
    for (const e of root.querySelectorAll("*")) {
      for (const a of e.attributes) {
        if (a.name.startsWith("on") && a.value.includes("alert(")) found.push(e.outerHTML.slice(0, 120));
        if (a.name === "href" && a.value.trim().toLowerCase().startsWith("javascript:"))
          found.push(e.outerHTML.slice(0, 120));
      }
      // A script that runs (not the page's embedded JSON data) holding one of the payloads' alert(74…85).
      if (e.tagName === "SCRIPT" && e.type !== "application/json" && /alert\((7[4-9]|8[0-5])\)/.test(e.textContent))
        found.push("script " + e.textContent.slice(0, 80));
      if (e.shadowRoot) visit(e.shadowRoot);
    }
  };
  visit(document);
  return found;
}
"""

# True once every image of the page (shadow roots included) has finished loading or failed to: an image a
# payload made would have fired its error handler by then. Then one more frame for the handler's dialog.
IMAGES_SETTLED = """
() => {
  const images = [];
  const visit = (root) => {
    for (const e of root.querySelectorAll("*")) {
      if (e.tagName === "IMG") images.push(e);
      if (e.shadowRoot) visit(e.shadowRoot);
    }
  };
  visit(document);
  return images.every((i) => i.complete);
}
"""
NEXT_FRAME = "() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))"


def settle(page: Page) -> None:
    """Wait until the page's images have loaded or failed (and their handlers could run), not a fixed time."""
    page.wait_for_function(IMAGES_SETTLED, timeout=TIMEOUT)
    page.evaluate(NEXT_FRAME)


# Bokeh hover tools whose tooltips are a custom HTML template or use the {safe} format (unescaped values).
UNSAFE_TOOLTIPS = """
() => {
  const bad = [];
  for (const doc of (window.Bokeh ? Bokeh.documents : [])) {
    for (const model of doc.all_models) {
      if (model.type !== "HoverTool" || model.tooltips == null) continue;
      const t = model.tooltips;
      if (typeof t === "string" || !Array.isArray(t)) bad.push(String(t).slice(0, 120));
      else for (const [, value] of t) if (String(value).includes("{safe}")) bad.push(String(value));
    }
  }
  return bad;
}
"""


def _episodes(today: dt.date) -> list[dict]:
    """Open episodes end a week before today (worse ones on the agenda); closed ones ended months ago."""
    recent = [today - dt.timedelta(days=7 * (6 - i)) for i in range(6)]
    old = [today - dt.timedelta(days=200 - 7 * i) for i in range(6)]
    return [
        {
            "client": CLIENT_HTML,
            "clinician": CLINICIAN_HTML,
            "team": TEAM_HTML,
            "course": WORSE,
            "days": recent,
        },
        {
            "client": CLIENT_MD,
            "clinician": CLINICIAN_HTML,
            "team": TEAM_HTML,
            "course": BETTER,
            "days": recent,
        },
        {
            "client": CLIENT_MD_CLOSED,
            "clinician": CLINICIAN_HTML,
            "team": TEAM_HTML,
            "course": BETTER,
            "days": old,
            "end": old[-1],
        },
        {
            "client": CLIENT_AT,
            "clinician": CLINICIAN_FORMULA,
            "team": TEAM_FORMULA,
            "course": WORSE,
            "days": recent,
        },
        {
            "client": CLIENT_MINUS,
            "clinician": CLINICIAN_FORMULA,
            "team": TEAM_FORMULA,
            "course": BETTER,
            "days": recent,
        },
        {
            "client": CLIENT_PLUS,
            "clinician": CLINICIAN_FORMULA,
            "team": TEAM_FORMULA,
            "course": BETTER_LATER,
            "days": old,
            "end": old[-1],
        },
    ]


def write_hostile_service(folder) -> tuple:
    """The hostile service imported into ``folder``, with a hostile action note on the agenda client;
    returns (database path, today)."""
    from alliance.importer import import_csv

    today = dt.date.today()
    path = folder / "hostile.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            ["client_id", "clinician_id", "session_date", "session_number", "instrument", "score", "team_id"]
            + ["supervisor_id", "population", "end_date", "end_reason"]
        )
        for e in _episodes(today):
            for n, (day, ors, srs) in enumerate(zip(e["days"], *e["course"], strict=True), start=1):
                end = e.get("end")
                for code, score in (("ORS", ors), ("SRS", srs)):
                    w.writerow(
                        [e["client"], e["clinician"], day.isoformat(), n, code, score, e["team"], SUPERVISOR]
                        + ["adult", end.isoformat() if end else "", "planned" if end else ""]
                    )
    db = folder / "hostile.duckdb"
    report = import_csv(path, db)
    assert report.ok, report.summary()  # the importer takes these codes: they must be made inert on output

    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        clients = {r[0] for r in con.execute("SELECT client_id FROM client").fetchall()}
        clinicians = {r[0] for r in con.execute("SELECT clinician_id FROM clinician").fetchall()}
    finally:
        con.close()
    assert {CLIENT_HTML, CLIENT_MD, CLIENT_AT, CLIENT_MINUS, CLIENT_PLUS} <= clients
    assert {CLINICIAN_HTML, CLINICIAN_FORMULA} == clinicians
    MarkStore.beside(db).mark_discussed(f"{CLIENT_HTML}-1", SUPERVISOR, today - dt.timedelta(days=10), NOTE)
    return db, today


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return write_hostile_service(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def hostile_served(hostile, tmp_path_factory):
    db, _ = hostile
    server = Server(db, tmp_path_factory.mktemp("hostile-serve") / "panel.log")
    yield server
    server.stop()


def _watch(page: Page) -> list[str]:
    """Record (and dismiss) every dialog the page opens: alert(), confirm(), prompt()."""
    dialogs: list[str] = []

    def on_dialog(dialog):
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return dialogs


def _shows_literally(page: Page, dialogs: list[str], *texts: str) -> None:
    """Wait until every text is rendered, character for character, somewhere on the page."""
    try:
        page.wait_for_function(
            "(texts) => { const all = (" + PAGE_TEXT + ")(); return texts.every((t) => all.includes(t)); }",
            arg=list(texts),
            timeout=TIMEOUT,
        )
    except PlaywrightTimeoutError:
        assert not dialogs, f"a payload ran: {dialogs}"
        shown = page.evaluate(PAGE_TEXT)
        missing = [t for t in texts if t not in shown]
        raise AssertionError(f"not shown literally: {missing}") from None


def _assert_inert(page: Page, dialogs: list[str], bokeh: bool = True) -> None:
    settle(page)  # an injected image has failed to load and fired its handler by now
    assert not dialogs, f"a payload ran: {dialogs}"
    assert page.evaluate(INJECTED) == [], "an element came from a payload"
    if bokeh:
        assert page.evaluate(UNSAFE_TOOLTIPS) == [], "a hover tooltip shows values unescaped"


def test_client_page_shows_hostile_codes_as_text(page: Page, hostile_served):
    dialogs = _watch(page)
    for client in (CLIENT_HTML, CLIENT_MD):
        page.goto(
            f"{hostile_served.url}/client?client={url_param(client)}&episode={url_param(client + '-1')}",
            timeout=TIMEOUT,
        )
        _shows_literally(
            page, dialogs, f"Client {client} · episode {client}-1", f"Clinician {CLINICIAN_HTML}"
        )
        _assert_inert(page, dialogs)


def test_caseload_page_shows_hostile_codes_as_text(page: Page, hostile_served):
    dialogs = _watch(page)
    page.goto(f"{hostile_served.url}/caseload?clinician={url_param(CLINICIAN_HTML)}", timeout=TIMEOUT)
    _shows_literally(page, dialogs, CLINICIAN_HTML, CLIENT_HTML, CLIENT_MD)
    # The client code links to its client page with both codes URL-encoded (no parameter can be injected).
    href = page.locator(".tabulator-cell a", has_text=CLIENT_HTML).first.get_attribute("href")
    assert href == f"client?client={url_param(CLIENT_HTML)}&episode={url_param(CLIENT_HTML + '-1')}"
    _assert_inert(page, dialogs)

    page.goto(f"{hostile_served.url}/caseload?clinician={url_param(CLINICIAN_FORMULA)}", timeout=TIMEOUT)
    _shows_literally(page, dialogs, CLINICIAN_FORMULA, CLIENT_AT, CLIENT_MINUS)
    _assert_inert(page, dialogs)


def test_comparison_page_shows_hostile_codes_as_text(page: Page, hostile_served):
    dialogs = _watch(page)
    page.goto(f"{hostile_served.url}/comparison", timeout=TIMEOUT)
    _shows_literally(page, dialogs, CLINICIAN_HTML, CLINICIAN_FORMULA, TEAM_HTML, TEAM_FORMULA)
    _assert_inert(page, dialogs)


def test_meeting_page_shows_hostile_codes_and_note_as_text(page: Page, hostile_served):
    dialogs = _watch(page)
    page.goto(f"{hostile_served.url}/meeting?supervisor={url_param(SUPERVISOR)}", timeout=TIMEOUT)
    _shows_literally(
        page,
        dialogs,
        f"Agenda for {SUPERVISOR}",
        f"Supervisee {CLINICIAN_HTML}",
        f"Supervisee {CLINICIAN_FORMULA}",
        f"Client {CLIENT_HTML} · episode {CLIENT_HTML}-1",
        f"Client {CLIENT_AT} · episode {CLIENT_AT}-1",
        NOTE,
    )
    _assert_inert(page, dialogs, bokeh=False)
    # Each client's charts and summary, opened in place: first the one not discussed yet, then the one
    # discussed and not worse since (it moved down).
    for n, (client, clinician) in enumerate([(CLIENT_AT, CLINICIAN_FORMULA), (CLIENT_HTML, CLINICIAN_HTML)]):
        page.get_by_role("button", name="Open charts").nth(n).click()
        expect(page.locator(".bk-Figure")).to_have_count(3, timeout=TIMEOUT)
        _shows_literally(page, dialogs, f"Client {client} · episode {client}-1", f"Clinician {clinician}")
        _assert_inert(page, dialogs)
        page.get_by_role("button", name="Back to the agenda").click()

    # A hostile note typed on the page is shown back as text too.
    typed = "<img src=x onerror=alert(84)> [b](javascript:alert(85))"
    focused = page.locator(".item.focused")  # the agenda client in focus: its note field and its button
    focused.get_by_role("textbox", name="Action note").fill(typed)
    focused.get_by_role("button", name="Discussed", exact=True).click()
    _shows_literally(page, dialogs, typed)
    _assert_inert(page, dialogs)


def test_meeting_pack_shows_hostile_codes_as_text_offline(page: Page, hostile, tmp_path):
    from alliance.pack import build_pack
    from alliance.service import Service
    from alliance.state import forget_service_metrics

    db, today = hostile
    out = tmp_path / "meeting-pack.html"
    forget_service_metrics()
    agenda = build_pack(Service.open(db), SUPERVISOR, today, out, MarkStore.beside(db), progress=False)
    assert CLIENT_HTML in agenda["client_id"].tolist()
    raw = out.read_text(encoding="utf-8")
    for payload in ("<img src=x onerror", "<script>alert(", "<svg onload"):
        assert payload not in raw, f"{payload!r} is in the pack's HTML unescaped"

    page.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(("file:", "data:", "blob:")) else route.abort()
        ),
    )
    dialogs = _watch(page)
    page.goto(out.as_uri(), timeout=TIMEOUT)
    _shows_literally(
        page,
        dialogs,
        f"Supervision meeting · {SUPERVISOR}",
        f"Supervisee {CLINICIAN_HTML}",
        f"Client {CLIENT_HTML} · episode {CLIENT_HTML}-1",
        NOTE,
    )
    assert page.title() == f"Meeting pack {SUPERVISOR} {today}"
    _assert_inert(page, dialogs)


FORMULA = re.compile(r"^(?:[=+@\t\r]|-(?![0-9]))")


def test_metrics_export_starts_no_formula(hostile, tmp_path):
    from alliance.cli import main

    db, _ = hostile
    out = tmp_path / "metrics"
    assert main(["metrics", "--db", str(db), "--out", str(out)]) == 0
    files = sorted(out.glob("*.csv"))
    assert files
    seen: set[str] = set()
    for f in files:
        with f.open(newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    assert not FORMULA.match(cell), f"{f.name}: {cell!r} would run in a spreadsheet"
                    seen.add(cell)
    # The codes are exported, each behind a quote that keeps it text.
    for code in (CLINICIAN_FORMULA, CLIENT_AT + "-1", CLIENT_MINUS + "-1", CLIENT_PLUS + "-1"):
        assert "'" + code in seen, code
