"""Run a served session's callback as soon as its browser has the document, while it draws it.

A served page is sent in two parts (``alliance.pages.serve``): its frame (app bar, sidebar, choices) when the
browser first asks for the session's document, and its main area once the browser says it has drawn the
frame (``pn.state.onload``). Between the two the server has nothing to do for that session for about a
second at service scale, while the browser draws. ``after_pull(doc, callback)`` runs ``callback`` (with
``doc`` as Panel's current document) on the server's event loop in that second: right after the document's
``PULL-DOC-REPLY`` has been written to the websocket, not between its frames (the reply would wait for the
callback's work). The pages use it to make the main area's own objects (``prepare``) there, instead of
before the frame is sent.

A callback that changes the document should not use this: its change would reach the browser while it
draws the frame, and a patch that arrives before the browser has the document is dropped (BokehJS assumes
the document already holds it). ``prepare`` only makes objects that are not in the document yet.

Bokeh has no public hook for "the document was sent", so this wraps ``ServerSession.pull``, the handler
Bokeh's protocol handler looks up for each new connection. Without the hook (a Bokeh that no longer has
this handler) ``after_pull`` says so and the page makes the same objects when it fills in.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from functools import partial

log = logging.getLogger("alliance.after_pull")

#: Callbacks waiting for their document's first pull, per document (dropped with the document).
_WAITING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def after_pull(doc, callback: Callable[[], None]) -> bool:
    """Run ``callback`` (with ``doc`` as Panel's current document) once ``doc`` has been sent to a browser.
    False when this server cannot say when that is (then only the caller's fallback runs it)."""
    if not install():
        return False
    _WAITING.setdefault(doc, []).append(callback)
    return True


def install() -> bool:
    """Wrap Bokeh's pull handler once per process; False when Bokeh has none to wrap."""
    from bokeh.server.session import ServerSession

    pull = ServerSession.__dict__.get("pull")
    if getattr(pull, "__func__", None) is _pull:
        return True
    if not isinstance(pull, classmethod):
        log.warning("Bokeh's ServerSession.pull is not a classmethod: pages fill in on the load event")
        return False
    global _bokeh_pull
    _bokeh_pull = pull.__func__
    ServerSession.pull = classmethod(_pull)
    return True


_bokeh_pull = None


def _pull(cls, message, connection):
    reply = _bokeh_pull(cls, message, connection)

    async def then():
        result = await reply  # the document is serialized into the reply here, under the document lock
        doc = connection.session.document
        callbacks = _WAITING.pop(doc, ())
        if callbacks:
            task = asyncio.ensure_future(_after_reply(connection, doc, callbacks))
            _TASKS.add(task)
            task.add_done_callback(_TASKS.discard)
        return result

    return then()


#: The waiting tasks (asyncio keeps only a weak reference to a task).
_TASKS: set = set()


async def _after_reply(connection, doc, callbacks) -> None:
    # Bokeh writes the reply's frames under the connection's write lock, which it takes as soon as the
    # reply is returned, before this task first runs. Run the callbacks once the whole reply is out: run
    # between its frames, a callback's work would hold the rest of the document back.
    with await connection._socket.write_lock.acquire():
        pass
    for callback in callbacks:
        doc.add_next_tick_callback(partial(_run, doc, callback))


def _run(doc, callback) -> None:
    from panel.io.state import set_curdoc

    with set_curdoc(doc):
        callback()
