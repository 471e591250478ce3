"""``alliance.after_pull`` on a real Bokeh server in this process: a callback registered while a session's
document is built runs after a client has pulled that document, with the document as Panel's current one, and
the client gets the whole document."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import panel as pn
import pytest
from bokeh.application import Application
from bokeh.application.handlers.function import FunctionHandler
from bokeh.client import ClientSession
from bokeh.models import Div
from bokeh.server.server import Server

from alliance.after_pull import after_pull
from alliance.serving import free_port

pytestmark = pytest.mark.served


def test_a_callback_runs_once_the_document_is_pulled_with_it_as_the_current_document():
    ran: list[tuple[bool, float]] = []

    def app(doc):
        doc.add_root(Div(text="frame", name="frame"))
        assert after_pull(doc, lambda: ran.append((pn.state.curdoc is doc, time.monotonic())))

    port, started, holder = free_port(), threading.Event(), {}

    def serve():
        asyncio.set_event_loop(asyncio.new_event_loop())
        server = Server({"/app": Application(FunctionHandler(app))}, port=port, address="127.0.0.1")
        server.start()
        holder["server"] = server
        started.set()
        server.io_loop.start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(30)

    def client() -> str:
        session = ClientSession(websocket_url=f"ws://127.0.0.1:{port}/app/ws")
        try:
            session.connect()
            assert not ran, "nothing runs before the document is asked for"
            session.pull()
            return session.document.get_model_by_name("frame").text
        finally:
            session.close()

    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            assert pool.submit(client).result(timeout=60) == "frame", "the whole document reaches the client"
        deadline = time.monotonic() + 10
        while not ran and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(ran) == 1, "the callback ran once"
        assert ran[0][0], "with the session's document as Panel's current document"
    finally:
        server = holder["server"]
        server.io_loop.add_callback(server.stop)
        server.io_loop.add_callback(server.io_loop.stop)
        thread.join(10)
