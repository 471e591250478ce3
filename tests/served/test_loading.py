"""A served client page's choice, as a browser gets it (the messages of a real websocket session, in the order
they arrive): the loading indicator comes first, then the new episode with the indicator gone. (That the
work itself waits for the indicator to be sent is ``tests/render/test_selection_defer.py``.)"""

from __future__ import annotations

import random
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from alliance.loadgen import Visit, heading_client, loading

pytestmark = pytest.mark.served


def _switch_and_watch(url: str) -> tuple[str, list[tuple[str | None, bool]]]:
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


def _nodelay(url: str) -> int:
    visit = Visit(url, "client", 120)
    try:
        stream = visit.session._connection._socket._socket.protocol.stream
        return stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        visit.close()


def test_a_simulated_browser_sends_each_message_at_once(served):
    """As a browser's socket: without it, a choice's message waited about 40 ms for the server's
    acknowledgement of its first frame (Nagle's algorithm), which every measured switch included."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(_nodelay, served.url).result(timeout=300)
