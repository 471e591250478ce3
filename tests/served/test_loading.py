"""A served client page's choice, as a browser gets it (the messages of a real websocket session, in the order
they arrive): the loading indicator comes first, then the new episode with the indicator gone. (That the
work itself waits for the indicator to be sent is ``tests/render/test_selection_defer.py``.)"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from bokeh.client import ClientSession
from bokeh.client.util import websocket_url_for_server_url

from alliance.loadgen import PAGE_CONTENT, Visit, heading_client, loading, register_models, shows
from alliance.loadgen import wait_for_messages as wait_for

pytestmark = pytest.mark.served


def _switch_and_watch(url: str) -> tuple[str, list[tuple[str | None, bool]]]:
    register_models()
    visit = Visit(url, "client", 120)
    try:
        seen: list[tuple[str | None, bool]] = []
        visit.session.after_patch = lambda doc: seen.append((heading_client(doc), loading(doc)))
        before = heading_client(visit.doc)
        visit.switch_client(random.Random(3), 120)
        return before, seen
    finally:
        visit.close()


def test_the_indicator_arrives_before_the_new_episode_and_is_gone_with_it(served):
    with ThreadPoolExecutor(max_workers=1) as pool:  # the session's own IO loop, outside pytest's thread
        before, seen = pool.submit(_switch_and_watch, served.url).result(timeout=300)
    assert seen, "no update from the server"
    first_new = next(i for i, (heading, _) in enumerate(seen) if heading != before)
    assert any(shown for _, shown in seen[:first_new]), f"no indicator before the new episode: {seen}"
    assert not seen[-1][1], "the indicator is still on once the new episode is shown"
    assert not served.errors(), served.errors()[0]


def _frame_then_content(url: str) -> tuple[bool, bool]:
    """Pull a page's document and wait for its content without ever sending the browser's load event."""
    register_models()
    page = url.rsplit("/", 1)[1]
    session = ClientSession(websocket_url=websocket_url_for_server_url(url))
    try:
        session.connect()
        session.pull()
        doc = session.document
        frame_only = loading(doc) and not shows(doc, PAGE_CONTENT[page])
        wait_for(session, lambda: shows(doc, PAGE_CONTENT[page]) and not loading(doc), 120, f"{url}: content")
        return frame_only, not loading(doc)
    finally:
        session.close()


@pytest.mark.parametrize("page", ["client", "caseload", "comparison", "meeting"])
def test_the_main_area_follows_the_frame_without_waiting_for_the_browser_to_draw_it(served, page):
    """The frame (choices, app bar) is sent first; the server then builds the main area while the browser
    draws the frame (``alliance.after_pull``): it arrives although the browser never says it has drawn."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        frame_only, filled = pool.submit(_frame_then_content, f"{served.url}/{page}").result(timeout=300)
    assert frame_only, "the first document sent holds only the frame, with the main area loading"
    assert filled
    assert not served.errors(), served.errors()[0]
