"""Hostile URL parameters are inert: SQL, HTML/script, a very long value, a NUL byte and odd Unicode in every
parameter a page reads (`client`, `episode`, `clinician`, `supervisor`, `team`, `instrument`) open the page
with no script run, no query changed (the database's ratings are untouched and nothing outside the scope is
shown), a "not found" or the default view instead, and no traceback in the server log."""

from __future__ import annotations

import hashlib
import re

import duckdb
import pytest
from playwright.sync_api import Page

from alliance.inert import url_param
from tests.browser.test_client_page import TIMEOUT
from tests.browser.test_hostile_strings import INJECTED, PAGE_TEXT, _watch, settle

pytestmark = pytest.mark.browser

PAYLOADS = {
    "sql": "' OR 1=1 --",
    "sql-union": "x' UNION SELECT client_id FROM episode; DROP TABLE rating; --",
    "script": "<script>alert(91)</script><img src=x onerror=alert(92)>",
    "long": "C-" + "9" * 5000,
    "nul": "C-\x00abc",
    "unicode": "C-\u202e\u0301\U0001f4a3",
}
# page → the URL parameters it reads
PARAMETERS = {
    "client": ("client", "episode"),
    "caseload": ("clinician",),
    "comparison": ("team", "instrument"),
    "meeting": ("supervisor",),
}
# What each page shows once it has laid out its content (its own widgets' labels).
CONTENT = {
    "client": "Alliance breakdown",
    "caseload": "Show closed episodes",
    "comparison": "Minimum closed episodes to rank",
    "meeting": "Meeting date",
}


def _fingerprint(db) -> str:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT count(*), bit_xor(hash(r)) FROM rating r").fetchone()
    finally:
        con.close()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_hostile_url_parameters_are_inert(page: Page, served, demo_db, name):
    before = _fingerprint(demo_db)
    dialogs = _watch(page)
    for kind, payload in PAYLOADS.items():
        # Every parameter the page reads carries the payload at once.
        query = "&".join(f"{parameter}={url_param(payload)}" for parameter in PARAMETERS[name])
        page.goto(f"{served.url}/{name}?{query}", timeout=TIMEOUT)
        # The page shows its own content (for a client code, "not found"), not an error or a blank page.
        expected = "not found." if name == "client" else CONTENT[name]
        page.wait_for_function("(t) => (" + PAGE_TEXT + ")().includes(t)", arg=expected, timeout=TIMEOUT)
        text = page.evaluate(PAGE_TEXT)
        assert "Traceback" not in text, (name, kind)
        if name == "client":  # never a client's episode for a code that is none
            assert re.search(r"Client C-[0-9a-f]{6} · episode", text) is None, (kind, text[:300])
        settle(page)  # an injected image has failed to load and fired its handler by now
        assert not dialogs, f"a payload ran on /{name} ({kind}): {dialogs}"
        assert page.evaluate(INJECTED) == [], f"an element came from a payload (/{name}, {kind})"
    assert _fingerprint(demo_db) == before, "a URL parameter changed the database"
    assert not served.errors(), served.errors()[0]
