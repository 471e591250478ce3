"""A served client page's choice, as a browser gets it (the messages of a real websocket session, in the order
they arrive): the loading indicator comes first, then the new episode with the indicator gone. (That the
work itself waits for the indicator to be sent is ``tests/render/test_selection_defer.py``.)"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from bokeh.client import ClientSession
from bokeh.client.util import websocket_url_for_server_url
from bokeh.events import DocumentReady

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


def _frame_then_content(url: str) -> tuple[bool, bool, bool]:
    """Pull a page's document; wait a moment as a browser drawing it; say it is drawn; wait for the content."""
    register_models()
    page = url.rsplit("/", 1)[1]
    session = ClientSession(websocket_url=websocket_url_for_server_url(url))
    try:
        session.connect()
        session.pull()
        doc = session.document
        frame_only = loading(doc) and not shows(doc, PAGE_CONTENT[page])
        # Two seconds as a browser drawing the frame: the server prepares the main area then
        # (alliance.after_pull) but sends none of it. Its answer to a request sent afterwards comes after
        # anything it sent meanwhile, which is applied first.
        time.sleep(2)
        session.request_server_info()
        still_frame = loading(doc) and not shows(doc, PAGE_CONTENT[page])
        doc.callbacks.send_event(DocumentReady())
        wait_for(session, lambda: shows(doc, PAGE_CONTENT[page]) and not loading(doc), 120, f"{url}: content")
        return frame_only, still_frame, not loading(doc)
    finally:
        session.close()


@pytest.mark.parametrize("page", ["client", "caseload", "comparison", "meeting"])
def test_the_frame_is_drawn_alone_and_the_main_area_follows_when_the_browser_says_so(served, page):
    """Laid out at once: the first document holds only the frame, with the main area loading; nothing of the
    main area comes while the browser draws the frame; it comes once the browser says the frame is drawn."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        frame_only, still_frame, filled = pool.submit(_frame_then_content, f"{served.url}/{page}").result(300)
    assert frame_only, "the first document sent holds only the frame, with the main area loading"
    assert still_frame, "the main area is not sent before the browser has drawn the frame"
    assert filled
    assert not served.errors(), served.errors()[0]
