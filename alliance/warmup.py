"""Warm a server process before its first visitor (``panel serve --setup alliance/warmup.py``, as
``make serve`` runs it).

A fresh Python process pays a few seconds to import Panel, Bokeh, pandas, DuckDB and the pages, and the
first charts it draws pay again for setting up Bokeh's models. Without this the first person
after a (re)start waits for all of it. Here the process imports every page, opens the database, reads the
service-wide stored metrics every page shares, draws one episode's client charts to Bokeh models that are
then dropped, and computes the comparison page's default comparison into the process's cache; then it
sets what the process holds by then aside from the garbage collector (``gc.freeze``) and lets the collector
run less often (``GC_THRESHOLDS``). It also turns off Bokeh's callback signature checks for the process, and
has it send each model's set properties without working out every default first (``alliance.model_values``).
Nothing is shown to anyone and nothing is recorded in the audit trail (no page is built and no client is
viewed); a database that cannot be opened is left for the pages to explain.

Before all that, each of several processes (``--num-procs``) is set to take one waiting connection at a
time from the listening socket they share (``accept_one_connection_per_turn``), so that a burst of people is
shared between them.
"""

from __future__ import annotations

import gc
import logging
import os
import time

log = logging.getLogger("alliance.warmup")

#: The garbage collector's thresholds in a server process (Python's default is 700, 10, 10). Building one
#: page allocates tens of thousands of objects (Bokeh and Panel models), so with the default the collector
#: ran about twenty times per caseload page and, every few pages, a collection of the older generations took
#: 40-170 ms of that page's build: the slowest caseload pages at 200,000 episodes were 0.4-0.5 s instead of
#: 0.25-0.3 s. With a young generation of 50,000 a page build rarely triggers one (docs/performance.md).
#: Panel still collects fully after sessions close, so garbage from closed sessions is not kept.
GC_THRESHOLDS = (50_000, 10, 10)


def warm(path=None) -> float:
    """Import the pages and draw one set of client charts; returns the seconds it took."""
    start = time.perf_counter()
    import panel as pn

    from alliance.db import limit_server_memory

    limit_server_memory()  # a small DuckDB cache per server process, set before any file is opened
    # Bokeh checks a callback's signature each time one is registered (its "error diagnostics"), with Python's
    # inspect module: Panel registers one per synchronised property of every model, so building the four pages
    # spent about 5 % of its CPU on these checks (docs/performance.md). A server process leaves them out; the
    # document's validation stays, and tests without a served process keep the checks.
    from bokeh.settings import settings as bokeh_settings

    bokeh_settings.perform_error_diagnostics.set_value(False)
    # A model sent to the browser lists the properties that were set, without working out every default
    # first (alliance.model_values).
    from alliance.model_values import install

    install()

    import alliance.pages  # noqa: F401  (the pages import their views, states and the data layer)
    import alliance.views.caseload  # noqa: F401
    import alliance.views.comparison  # noqa: F401
    import alliance.views.meeting  # noqa: F401
    from alliance.datastore import DataStore
    from alliance.db import DatabaseError
    from alliance.scope import Scope
    from alliance.service import Service
    from alliance.state import ClientSelection, ComparisonState
    from alliance.views.client import ClientCharts

    try:
        selection = ClientSelection(service=Service.open(path, Scope.full_access()))
        pn.panel(ClientCharts(selection=selection)).get_root()
        # The comparison page's default comparison (every viewer's comparison page starts on it: a comparison
        # of the whole service, renamed per viewer afterwards), into the process's cache.
        ComparisonState(DataStore.open(path))
    except (DatabaseError, OSError) as exc:
        log.warning("warm-up without the database (%s); the pages will say what is wrong", exc)
    except Exception:  # a warm-up must never keep the server from starting
        log.exception("warm-up could not draw the client charts; the server starts anyway")
    # What the process holds now (the libraries, the pages' code, the shared caches) stays for its life:
    # moved out of the garbage collector's sight, a full collection no longer walks its ~300,000
    # objects. Panel runs one after sessions close, on the server's main thread, and each took 0.15-0.3 s
    # during which no page was built and no choice answered. The warm-up's own leftovers go first.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    seconds = time.perf_counter() - start
    log.info("warm-up done in %.1f s", seconds)
    return seconds


def accept_one_connection_per_turn() -> bool:
    """Have this server process take one new connection at a time from the listening socket it shares with
    the other processes (``--num-procs``), instead of all that wait there; returns whether it could.

    Tornado's handler for a listening socket accepts up to 128 connections each time the socket is ready
    (``tornado.netutil._DEFAULT_BACKLOG``, read on every call). With several processes on one socket, the
    process that happens to be idle when a burst arrives then takes all of it and builds every page, while
    the others stay idle: twenty people arriving at once split 16 to 4, and the busy process's client switches
    queued behind each other (p95 1.3-1.6 s against 0.9 s when split evenly; docs/performance.md, round 16).
    Taking one at a time, a process busy building a page takes no more, and the connections waiting go to a
    process that is free. The listening socket's backlog (set when it was bound) does not change."""
    import tornado.netutil

    if not isinstance(getattr(tornado.netutil, "_DEFAULT_BACKLOG", None), int):
        log.warning("this Tornado has no _DEFAULT_BACKLOG: each process accepts connections as Tornado does")
        return False
    tornado.netutil._DEFAULT_BACKLOG = 1
    log.info("server process %d takes one waiting connection at a time", os.getpid())
    return True


def shares_a_socket() -> bool:
    """Whether this is one of several server processes forked to share a listening socket (``--num-procs``
    greater than 1). A single process has nobody to share a burst with: it accepts as Tornado does."""
    import tornado.process

    return tornado.process.task_id() is not None


if __name__ in ("panel_setup_module", "__main__"):  # run by panel serve --setup, or by hand
    log.setLevel(logging.INFO)  # the server's log says how each process was set up and how long it took
    if shares_a_socket():
        accept_one_connection_per_turn()
    warm()
