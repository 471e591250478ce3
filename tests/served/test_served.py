"""`panel serve dashboards/*.ipynb` answers 200 for every page and for the index that lists them, and each page's
document holds that page's own content, built from the demo database (not an error message).

The HTML of a served page carries only the page's title; Bokeh sends the document itself (every model, with
the text of the Markdown panes, the widget labels and the table data) over the session's websocket. The tests
pull that document as a browser would, say that it is drawn (the page then fills in its main area) and read the
resulting document's JSON."""

from __future__ import annotations

import html
import json
import os
import re
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest
from bokeh.client import ClientSession
from bokeh.client.util import websocket_url_for_server_url
from bokeh.events import DocumentReady

from alliance.loadgen import PAGE_CONTENT as LOADED_CONTENT
from alliance.loadgen import loading, register_models, shows
from alliance.loadgen import wait_for_messages as wait_for
from tests.conftest import REPO, Server

PAGES = sorted(p.stem for p in (REPO / "dashboards").glob("*.ipynb"))
# What a page shows instead of itself when something is wrong (alliance.pages.ProblemView) or an exception.
FAILURES = ("Traceback", "The database cannot be used", "No ratings to show")


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.status, r.read().decode()


def served_document(url: str, arguments: dict[str, str] | None = None) -> dict:
    """The JSON of a new session's document of the page at ``url`` (as a browser would get it).

    Run in a thread of its own: Bokeh's client runs an event loop, and the browser tier's Playwright keeps one
    running in the test thread for the rest of the session."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_served_document, url, arguments).result(timeout=300)


def _served_document(url: str, arguments: dict[str, str] | None) -> dict:
    register_models()
    session = ClientSession(websocket_url=websocket_url_for_server_url(url), arguments=arguments)
    try:
        session.connect()
        session.check_connection_errors()
        session.pull()
        doc = session.document
        doc.callbacks.send_event(DocumentReady())  # as a browser, once it has drawn the page
        wait_for(session, lambda: not loading(doc), 120, f"{url}: the page's content")
        return doc.to_json(deferred=False)
    finally:
        session.close()


def document_text(doc: dict) -> str:
    """Every string of the document, with Markdown/HTML panes' escaped text made plain."""
    return html.unescape(json.dumps(doc, ensure_ascii=False))


def _episodes(db: Path) -> dict[tuple[str, str], str]:
    """(client, episode) → clinician for every episode of the database."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT client_id, episode_id, clinician_id FROM episode").fetchall()
    finally:
        con.close()
    return {(c, e): cl for c, e, cl in rows}


def check_client(text: str, db: Path) -> None:
    assert "Alliance breakdown" in text  # the client page's own selector
    heading = re.search(r"<h3>Client (C-[0-9a-f]{6}) · episode (E\d+)</h3>", text)
    assert heading, "the client page shows no episode heading"
    episodes = _episodes(db)
    assert heading.groups() in episodes, f"{heading.groups()} is not an episode of the database"
    assert f"Clinician <strong>{episodes[heading.groups()]}</strong>" in text


def check_caseload(text: str, db: Path) -> None:
    assert "Episodes (flagged first; click a client code to open the client page)" in text
    assert "This caseload by quarter" in text and "Show closed episodes" in text
    links = set(re.findall(r"client\?client=(C-[0-9a-f]{6})&episode=(E\d+)", text))
    assert links, "the caseload table links no client"
    episodes = _episodes(db)
    assert links <= set(episodes), links - set(episodes)
    assert len({episodes[k] for k in links}) == 1, "a caseload holds one clinician's clients"


def check_comparison(text: str, db: Path) -> None:
    assert "Clinicians (ranked on the severity-adjusted effect size" in text
    assert "Minimum closed episodes to rank" in text
    assert "Inside the funnel means no evidence of a difference" in text
    shown = set(re.findall(r"\bCL\d\d\b", text))
    assert len(shown) >= 10 and shown <= set(_episodes(db).values())


def check_meeting(text: str, db: Path) -> None:
    assert "Meeting pack (HTML)" in text and "Meeting date" in text
    assert re.search(r"Agenda for CL\d\d · meeting \d\d \w{3} \d{4}", text), (
        "the meeting page shows no agenda"
    )
    items = set(re.findall(r"#\d+ · Client (C-[0-9a-f]{6}) · episode (E\d+)", text))
    assert items, "the agenda lists no client"
    assert items <= set(_episodes(db)), items - set(_episodes(db))


PAGE_CONTENT = {
    "client": ("Alliance · Client", check_client),
    "caseload": ("Alliance · Caseload", check_caseload),
    "comparison": ("Alliance · Comparison", check_comparison),
    "meeting": ("Alliance · Supervision meeting", check_meeting),
}


def test_every_page_has_a_check():
    assert set(PAGES) == set(PAGE_CONTENT)


@pytest.mark.served
@pytest.mark.parametrize("name", PAGES)
def test_every_page_answers_with_its_own_content(served, demo_db, name):
    title, check = PAGE_CONTENT[name]
    status, page = get(f"{served.url}/{name}")
    assert status == 200
    assert f"<title>{title}</title>" in page  # a problem page is titled just "Alliance"
    for failure in FAILURES:
        assert failure not in page
    doc = served_document(f"{served.url}/{name}")
    assert doc["title"] == title
    text = document_text(doc)
    for failure in FAILURES:
        assert failure not in text, f"the served {name} page shows {failure!r}"
    check(text, demo_db)
    assert not served.errors(), served.errors()[0]


def _laid_out_then_filled(url: str, page: str, choice: str) -> dict[str, bool]:
    """What a new session's document shows as first sent, and once the browser has said it is drawn."""
    register_models()
    session = ClientSession(websocket_url=websocket_url_for_server_url(f"{url}/{page}"))
    try:
        session.connect()
        session.check_connection_errors()
        session.pull()
        doc = session.document
        seen = {
            "loading at first": loading(doc),
            "content at first": shows(doc, LOADED_CONTENT[page]),
            "choices at first": any(getattr(m, "label", None) == choice for m in doc.models),
        }
        # Two seconds as a browser drawing the frame: the server prepares the main area meanwhile
        # (alliance.after_pull) but sends none of it. Its answer to a request sent afterwards comes after
        # anything it sent meanwhile, which is applied first.
        time.sleep(2)
        session.request_server_info()
        seen["content while drawing"] = shows(doc, LOADED_CONTENT[page]) or not loading(doc)
        doc.callbacks.send_event(DocumentReady())
        wait_for(session, lambda: not loading(doc), 120, f"{page}: the page's content")
        return {
            **seen,
            "loading once drawn": loading(doc),
            "content once drawn": shows(doc, LOADED_CONTENT[page]),
        }
    finally:
        session.close()


@pytest.mark.served
@pytest.mark.parametrize("name", PAGES)
def test_a_page_lays_out_at_once_and_fills_in_its_main_area_once_drawn(served, name):
    """The app bar and the sidebar's choices are sent at once; the main area, under the loading indicator,
    is filled in once the browser says it has drawn them (``pn.state.onload``), not while it draws them
    (sent then, it would be drawn with them and the page would show nothing until both were drawn)."""
    choice = {"client": "Client", "caseload": "Clinician", "comparison": "Team", "meeting": "Supervisor"}[
        name
    ]
    with ThreadPoolExecutor(max_workers=1) as pool:
        seen = pool.submit(_laid_out_then_filled, served.url, name, choice).result(timeout=300)
    assert seen == {
        "loading at first": True,
        "content at first": False,
        "choices at first": True,
        "content while drawing": False,
        "loading once drawn": False,
        "content once drawn": True,
    }
    assert not served.errors(), served.errors()[0]


@pytest.mark.served
def test_meeting_page_opens_the_supervisor_in_the_url(served, demo_db):
    con = duckdb.connect(str(demo_db), read_only=True)
    try:
        supervisors = [s for (s,) in con.execute("SELECT supervisor_id FROM team ORDER BY 1").fetchall()]
        supervisor = supervisors[-1]
        team = {
            c
            for (c,) in con.execute(
                "SELECT clinician_id FROM clinician JOIN team USING (team_id) WHERE supervisor_id = ?",
                [supervisor],
            ).fetchall()
        }
    finally:
        con.close()
    text = document_text(served_document(f"{served.url}/meeting", {"supervisor": supervisor}))
    assert f"Agenda for {supervisor} · meeting" in text
    items = set(re.findall(r"#\d+ · Client (C-[0-9a-f]{6}) · episode (E\d+)", text))
    episodes = _episodes(demo_db)
    assert items and {episodes[i] for i in items} <= team, "the agenda holds another team's clients"


@pytest.mark.served
def test_index_lists_every_page(served):
    status, html_ = get(served.url + "/")
    assert status == 200
    for name in PAGES:
        assert f"/{name}" in html_
    assert "Demo — no sign-in: full access, this machine only" in html_ and "Sign out" not in html_


@pytest.mark.served
def test_a_missing_database_is_a_message_not_a_traceback(tmp_path: Path):
    server = Server(tmp_path / "missing.duckdb", tmp_path / "panel.log")
    try:
        status, page = get(f"{server.url}/client")
        assert status == 200 and "Traceback" not in page
        assert "<title>Alliance</title>" in page
        text = document_text(served_document(f"{server.url}/client"))
        assert "The database cannot be used" in text and "not found" in text
        assert "ALLIANCE_DB" in text  # what to do about it
        assert "Traceback" not in text
    finally:
        server.stop()
    assert not server.errors(), server.errors()[0]


@pytest.mark.served
def test_several_server_processes_share_the_file_and_all_stop(demo_db, tmp_path: Path):
    """``--num-procs 2``: both processes answer from the one read-only file with its stored metrics, and
    stopping the server stops the processes it forked too (they outlive their parent otherwise)."""
    server = Server(demo_db, tmp_path / "panel.log", num_procs=2)
    group = server.proc.pid
    try:
        for _ in range(4):  # the kernel hands the connections to either process
            status, page = get(f"{server.url}/client")
            assert status == 200 and "Traceback" not in page
        children = [
            int(p)
            for p in os.listdir("/proc")
            if p.isdigit() and p != str(group) and _group_of(int(p)) == group
        ]
        assert len(children) >= 2, children  # the forked processes serve
        # Each takes one waiting connection at a time (alliance.warmup), so a burst is shared between them.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(_accepting_one(server)) < 2:
            time.sleep(0.5)
        assert _accepting_one(server) == set(children), server.log.read_text()[-2000:]
    finally:
        server.stop()
    assert not [p for p in children if _alive(p)], "forked server processes outlived the server"
    with pytest.raises(ProcessLookupError):  # nothing is left of the server's process group
        os.killpg(group, 0)
    assert not server.errors(), server.errors()[0]


@pytest.mark.served
def test_a_single_server_process_accepts_as_tornado_does(served):
    """Nobody to share a burst with: a lone process keeps taking every waiting connection at once."""
    assert "takes one waiting connection at a time" not in served.log.read_text()


def _accepting_one(server) -> set[int]:
    """The server processes whose log says they take one waiting connection at a time."""
    found = re.findall(r"server process (\d+) takes one waiting connection at a time", server.log.read_text())
    return {int(pid) for pid in found}


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.served
def test_the_load_generator_spreads_its_users_over_caseloads(served, demo_db):
    """``--spread``: each simulated user opens a client of another clinician by link, and the visit fails if
    the page opened anyone else; the clinicians are distinct, each with two clients or more (a switch needs
    another client), in the same order every time."""
    from alliance.loadgen import run_load, spread_clients

    clients = spread_clients(demo_db, 3)
    assert clients == spread_clients(demo_db, 3) and len(clients) == 3
    con = duckdb.connect(str(demo_db), read_only=True)
    try:
        # each client's clinicians (a client may have been seen by several), with their numbers of clients
        rows = con.execute(
            "SELECT e.client_id, e.clinician_id, n.n_clients FROM episode e JOIN (SELECT clinician_id, "
            "count(DISTINCT client_id) AS n_clients FROM episode GROUP BY 1) n USING (clinician_id) "
            "WHERE e.client_id IN (SELECT unnest($c))",
            {"c": clients},
        ).fetchall()
    finally:
        con.close()
    assert len(set(clients)) == 3 and len({r[1] for r in rows}) >= 3, rows
    assert all(any(r[2] >= 2 for r in rows if r[0] == c) for c in clients), rows
    result = run_load(served.url, 2, 1, think=0.2, clients=clients[:2])
    assert not result["failed"], result["failed"]
    assert len(result["switch_times"]) == 2 and len(result["page_times"]["client"]) == 2
    # A link to a client who is not there fails the visit with the reason.
    result = run_load(served.url, 1, 1, think=0.2, clients=["C-NOBODY"])
    assert len(result["failed"]) == 1 and "the link to C-NOBODY opened" in result["failed"][0]
