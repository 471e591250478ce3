"""Run a served session's callback as soon as its browser has the document, before it has drawn it.

A served page is sent in two parts (``alliance.pages.serve``): its frame (app bar, sidebar, choices) when the
browser first asks for the session's document, and its main area once that is built. Panel's
``pn.state.onload`` runs the second part only when the browser reports that it has drawn the first: the
server then waited for the browser (about a second at service scale) and the browser then waited for the
server (0.3-0.5 s to build and send the main area), one after the other.

``after_pull(doc, callback)`` runs ``callback`` on the server's event loop right after the document's
``PULL-DOC-REPLY`` has been queued on the websocket: the server builds the main area while the browser
draws the frame, and the main area arrives as an ordinary patch. The order matters: BokehJS drops a patch
that arrives before the document it patches (it assumes the document already contains it), so the
callback must not run earlier, for instance on a timer set while the session is being built. The reply and
the patch go out through the same connection, one after the other (Bokeh's write lock).

Bokeh has no public hook for "the document was sent", so this wraps ``ServerSession.pull``, the handler
Bokeh's protocol handler looks up for each new connection. A page should also register the same callback
with ``pn.state.onload`` (and make it run once): without the hook (a Bokeh that no longer has this handler,
a notebook) the page still fills in when the browser is ready.
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
    import panel as pn
    from panel.io.state import set_curdoc

    # Panel counts a session as connected only from the browser's load event, and until then drops the
    # changes a hold collected (the whole document, it reasons, is still to be sent). This document has been
    # sent: its changes from here on must go to the browser as patches.
    pn.state._connected[doc] = True
    with set_curdoc(doc):
        callback()
