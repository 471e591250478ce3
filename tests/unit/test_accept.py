"""A server process takes one waiting connection each time its listening socket is ready
(``alliance.warmup.accept_one_connection_per_turn``), so that a burst of people is shared between the server
processes of ``--num-procs`` instead of all going to the one that was idle when it arrived.

Checked on Tornado's own accept handler with a real listening socket: connections that completed their
handshake wait in the socket's queue, and one turn of the event loop takes one of them, or, as Tornado does
by default, all of them."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import tornado.netutil
from tornado.ioloop import IOLoop

from alliance.warmup import accept_one_connection_per_turn

WAITING = 5


def _accepted_in_one_turn() -> int:
    """How many of the waiting connections one turn takes (in a thread of its own, with its own loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_one_turn).result(timeout=30)


def _one_turn() -> int:
    listener = tornado.netutil.bind_sockets(0, "127.0.0.1")[0]
    port = listener.getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(WAITING)]
    accepted: list[socket.socket] = []
    loop = IOLoop()
    try:
        remove = tornado.netutil.add_accept_handler(listener, lambda conn, _: accepted.append(conn))
        loop.add_callback(loop.stop)  # stops after the turn in which the socket is first ready
        loop.start()
        remove()
        return len(accepted)
    finally:
        for s in clients + accepted + [listener]:
            s.close()
        loop.close()


def test_tornado_by_default_takes_every_waiting_connection_at_once(monkeypatch):
    monkeypatch.setattr(tornado.netutil, "_DEFAULT_BACKLOG", 128)
    assert _accepted_in_one_turn() == WAITING


def test_a_server_process_takes_one_waiting_connection_per_turn(monkeypatch):
    monkeypatch.setattr(tornado.netutil, "_DEFAULT_BACKLOG", 128)  # restored after the test
    assert accept_one_connection_per_turn()
    assert _accepted_in_one_turn() == 1


def test_the_listening_backlog_is_not_changed(monkeypatch):
    """Sockets bound afterwards still keep connections waiting (with a backlog of 1, Linux lets two
    complete their handshake and drops the rest until one is accepted)."""
    monkeypatch.setattr(tornado.netutil, "_DEFAULT_BACKLOG", 128)
    accept_one_connection_per_turn()
    listener = tornado.netutil.bind_sockets(0, "127.0.0.1")[0]
    port = listener.getsockname()[1]
    clients = []
    try:
        for _ in range(WAITING):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=0.5))
        assert len(clients) == WAITING
    finally:
        for s in clients + [listener]:
            s.close()


def test_without_the_setting_the_process_keeps_tornados_way(monkeypatch, caplog):
    monkeypatch.delattr(tornado.netutil, "_DEFAULT_BACKLOG")
    with caplog.at_level("WARNING"):
        assert accept_one_connection_per_turn() is False
    assert "accepts connections as Tornado does" in caplog.text
