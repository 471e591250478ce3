"""The audit trail of a real `panel serve`: opening a client page — as a Bokeh client and in Chromium — appends
exactly one ``view_client`` record naming the episode shown, who (no sign-in: anonymous) and from where; no
HTTP route of the served application changes or removes a record, or hands out the trail."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import duckdb
import pytest

from alliance.audit import ANONYMOUS, AuditLog
from tests.conftest import Server
from tests.served.test_served import PAGES, document_text, get, served_document

TIMEOUT = 60_000


def _trail(db: Path) -> AuditLog:
    """The served database's trail (the server runs without $ALLIANCE_AUDIT: beside the database)."""
    return AuditLog(db.with_name(f"{db.stem}.audit.sqlite"))


def _count(log: AuditLog) -> int:
    return log.count() if log.path.exists() else 0


def _episode(db: Path, offset: int) -> tuple[str, str]:
    """A (client, episode) of the database with at least two outcome ratings."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT e.client_id, e.episode_id FROM episode e JOIN rating r USING (episode_id) "
            "GROUP BY ALL HAVING count(*) >= 4 ORDER BY e.episode_id LIMIT 1 OFFSET ?",
            [offset],
        ).fetchone()
    finally:
        con.close()


@pytest.mark.served
def test_opening_a_client_page_writes_one_view_record_with_the_episode(served, demo_db):
    client, episode = _episode(demo_db, 3)
    log = _trail(demo_db)
    before = _count(log)
    text = document_text(served_document(f"{served.url}/client", {"client": client, "episode": episode}))
    assert f"<h3>Client {client} · episode {episode}</h3>" in text  # the episode really was shown
    new = log.records()[before:]
    assert [(r["action"], r["clients"], r["episodes"]) for r in new] == [("view_client", [client], [episode])]
    [rec] = new
    assert rec["user"] == ANONYMOUS and rec["remote"] == "127.0.0.1"
    assert rec["detail"].startswith("client page; clinician CL")
    assert log.verify().ok
    assert not served.errors(), served.errors()[0]


def _drawn_rows(doc) -> int:
    """The most rows any ColumnDataSource of a served document holds (what the charts would draw)."""
    most = 0
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("name") == "ColumnDataSource" and isinstance(node.get("attributes"), dict):
                data = node["attributes"].get("data", {})
                columns = data.get("entries", []) if data.get("type") == "map" else list(data.items())
                for _, c in columns:
                    most = max(most, c["shape"][0] if isinstance(c, dict) and "shape" in c else len(c))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return most


@pytest.mark.served
def test_a_page_whose_view_cannot_be_recorded_shows_why_and_not_the_client(
    served, demo_db, tmp_path, monkeypatch
):
    client, episode = _episode(demo_db, 5)
    arguments = {"client": client, "episode": episode}
    # The same page with a trail that can be written: heading and charts (the checks below can fail).
    shown = served_document(f"{served.url}/client", arguments)
    assert f"<h3>Client {client} · episode {episode}</h3>" in document_text(shown) and _drawn_rows(shown) >= 2
    monkeypatch.setenv("ALLIANCE_AUDIT", str(tmp_path / "trail-is-a-folder"))
    (tmp_path / "trail-is-a-folder").mkdir()
    server = Server(demo_db, tmp_path / "panel.log")  # the server's environment: this trail
    try:
        doc = served_document(f"{server.url}/client", arguments)
    finally:
        server.stop()
    text = document_text(doc)
    assert "This episode cannot be shown" in text and "cannot be written: it is a folder" in text
    assert f"<h3>Client {client}" not in text and "<h3>Client " not in text  # no episode summary
    assert _drawn_rows(doc) == 0  # no chart data reached the browser
    assert not server.errors(), server.errors()[0]


METHODS = ("POST", "PUT", "DELETE", "PATCH")


@pytest.mark.served
def test_no_route_alters_removes_or_serves_a_record(served, demo_db):
    log = _trail(demo_db)
    served_document(f"{served.url}/client")  # at least one record to protect
    before = log.records()
    assert before
    trail_name = log.path.name
    paths = [
        "/",
        *(f"/{p}" for p in PAGES),
        "/audit",
        "/client/audit",
        f"/{trail_name}",
        f"/static/{trail_name}",
    ]
    for path in paths:
        for method in METHODS:
            request = urllib.request.Request(served.url + path, data=b"seq=1", method=method)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=30)
            assert refused.value.code in (403, 404, 405), (method, path, refused.value.code)
    for path in ("/audit", f"/{trail_name}", f"/static/{trail_name}"):
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(served.url + path, timeout=30)
        assert missing.value.code == 404, path
    # The index lists the pages and nothing else of the application's.
    status, index = get(served.url + "/")
    assert status == 200
    listed = set(re.findall(r'href="\.?/?([a-z_]+)"', index))
    assert listed & set(PAGES) == set(PAGES) and not {n for n in listed if "audit" in n}
    after = log.records()
    assert after[: len(before)] == before  # nothing changed or removed
    assert log.verify().ok
    assert not served.errors(), served.errors()[0]


@pytest.mark.browser
def test_a_client_page_opened_in_chromium_writes_one_view_record(served, demo_db, page):
    from playwright.sync_api import expect

    client, episode = _episode(demo_db, 7)
    log = _trail(demo_db)
    before = _count(log)
    page.goto(f"{served.url}/client?client={client}&episode={episode}")
    expect(page.get_by_text(f"Client {client} · episode {episode}", exact=True)).to_be_visible(
        timeout=TIMEOUT
    )
    new = log.records()[before:]
    assert [(r["action"], r["clients"], r["episodes"]) for r in new] == [("view_client", [client], [episode])]
    assert new[0]["user"] == ANONYMOUS and new[0]["remote"] == "127.0.0.1"
    assert not served.errors(), served.errors()[0]
