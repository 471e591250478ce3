"""``python -m alliance.loadgen``: many simultaneous users of a real ``panel serve``, without a browser.

Each simulated user does what a person does in ``alliance.bench``'s browser load: opens the client page,
chooses another client a few times, then opens the caseload, comparison and meeting pages. Every page is a
real Bokeh session: the page's HTML is fetched over HTTP, the session's websocket is opened with the token
from that HTML (the server builds the page then, as for a browser), the whole document is pulled, and the
"document ready" event a browser sends once it has drawn the page is sent too (Panel then counts the session
as loaded, runs its on-load callbacks and sends the events it held back). The document is kept as the JSON
the server sent (``PageDocument``), with every later message applied to it, rather than built into bokeh
models: a browser does that work on its own machine, and here it would take CPU from the server being
measured. A client is chosen by changing the Client selector's value, in the same PATCH-DOC message a browser
sends; the server checks it, reads the episode and pushes the new heading and charts back over the
websocket, and the switch counts only once the heading names the chosen client.

Where the users start: by default every one lands where the client page does (the same caseload for all,
whose reads the first visit leaves in each server process for the others); with ``--spread`` each opens a
client of another clinician by link (``spread_clients``) and goes through that caseload, as people of a
service do.

What is measured: the seconds from choosing a client until the page's heading names that client, and from
asking for a page until its own content has arrived, for ``--users`` users at once; sessions that failed;
the CPU seconds the server (by process) and this process used; and whether the server logged a traceback.

Why no browser: the server does the work of every session (building the pages, reading the database,
computing and pushing each update), and that is what a 2-core server has to cope with; a browser's drawing
happens on each person's own machine. Twenty headless Chromium renderers would need far more CPU and memory
than the server being measured, on the same machine, and would measure themselves. What this does not
reproduce: the static JavaScript and CSS files a browser downloads (plain files, cached after the first
visit), drawing, and the small messages a browser's views send back while they lay out (plot sizes, ranges,
browser information).
"""

from __future__ import annotations

import argparse
import html
import os
import random
import re
import statistics
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

from bokeh.client import ClientSession
from bokeh.client.connection import ClientConnection
from bokeh.client.states import CONNECTED_BEFORE_ACK, DISCONNECTED, ErrorReason
from bokeh.client.util import websocket_url_for_server_url
from bokeh.client.websocket import WebSocketClientConnectionWrapper
from bokeh.core.serialization import Serializer
from bokeh.document import Document
from bokeh.events import DocumentReady
from bokeh.protocol.messages.patch_doc import patch_doc
from bokeh.util.token import get_session_id
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.ioloop import IOLoop
from tornado.websocket import websocket_connect

#: Text that only each page shows (``alliance.bench.PAGE_CONTENT``); the client page's is its heading.
PAGE_CONTENT = {
    "client": " · episode ",
    "caseload": "Episodes (flagged first",
    "comparison": "How to read this page",
    "meeting": "Agenda for ",
}
OTHER_PAGES = ("caseload", "comparison", "meeting")
_TOKEN = re.compile(r'"token"\s*:\s*"([^"]+)"')
_HEADING = re.compile(r"Client (\S+) · episode")
_registered = threading.Lock()


def register_models() -> None:
    """Import every model class the pages' documents use, so that a pulled document can be deserialized.

    Panel defines most of its Bokeh models lazily, and Panel Material UI components create their data models
    (``ScopedSelect1``, ``Select1``) when their class is defined: the same imports as the server's warm-up
    (``alliance.warmup``) give the same generated names."""
    with _registered:
        import importlib
        import pkgutil

        import panel.models
        import panel_material_ui  # noqa: F401

        for module in pkgutil.iter_modules(panel.models.__path__):
            try:
                importlib.import_module(f"panel.models.{module.name}")
            except ImportError:  # a model for an optional package no page uses
                pass
        import alliance.pages  # noqa: F401
        import alliance.views.caseload  # noqa: F401
        import alliance.views.comparison  # noqa: F401
        import alliance.views.meeting  # noqa: F401


class PatientConnection(ClientConnection):
    """Bokeh's client connection, except that it waits as long as ``timeout`` for the websocket to open:
    bokeh's own gives up after Tornado's default of 20 seconds, which a busy server can take, while a browser
    keeps waiting."""

    def __init__(
        self, session: ClientSession, websocket_url: str, io_loop: IOLoop, timeout: float, cookie: str = ""
    ):
        super().__init__(session=session, websocket_url=websocket_url, io_loop=io_loop)
        self._timeout, self._cookie = timeout, cookie

    async def _connect_async(self) -> None:  # ClientConnection._connect_async with the timeouts (and cookie)
        request = HTTPRequest(
            self._url,
            connect_timeout=self._timeout,
            request_timeout=self._timeout,
            headers={"Cookie": self._cookie} if self._cookie else None,
        )
        try:
            socket = await websocket_connect(
                request, subprotocols=["bokeh", self._session.token], max_message_size=self._max_message_size
            )
            # Each message goes out at once, as from a browser (Chromium turns Nagle's algorithm off on its
            # sockets). With it on, a Bokeh message's later frames waited for the server to acknowledge the
            # first, about 40 ms on Linux: every choice reached the server that much later.
            socket.protocol.set_nodelay(True)
            self._socket = WebSocketClientConnectionWrapper(socket)
        except HTTPClientError as exc:
            await self._transition_to_disconnected(
                DISCONNECTED(ErrorReason.HTTP_ERROR, exc.code, exc.message)
            )
            return
        except Exception as exc:
            await self._transition_to_disconnected(DISCONNECTED(ErrorReason.NETWORK_ERROR, None, repr(exc)))
            return
        await self._transition(CONNECTED_BEFORE_ACK())


class PageDocument:
    """A page's document as a browser keeps it: the JSON of each model the server sent, by id, with the
    server's changes applied to it.

    The load generator does not build bokeh models from what it receives, as ``ClientSession`` does: that
    costs about as much CPU as the server spends sending the page (each model's every default is made,
    including default sub-models), and twenty simulated users in one process would take a core the server
    needs and queue behind each other for the interpreter. A browser does this work on each person's own
    machine. Every model is kept as sent; the checks read the models the roots reach: their texts, their
    CSS classes and the selects' values and options."""

    def __init__(self) -> None:
        self.roots: list[str] = []
        self._models: dict[str, dict] = {}  # id -> the model as sent: type, name, id, attributes
        self._refs: dict[str, list[str]] = {}  # id -> the ids its attributes refer to

    def replace_with_json(self, doc_json) -> None:
        """The document the server pulled (bokeh's ``PULL-DOC-REPLY`` hands it over by this name)."""
        self.roots, self._models, self._refs = [], {}, {}
        for root in doc_json.content["roots"]:
            self.roots.extend(self._refer(root))

    def apply(self, events: list[dict]) -> None:
        """Apply a ``PATCH-DOC`` message's events: changed properties and added or removed roots. Streamed
        or patched columns of a data source, a changed title and messages for the page's scripts are
        skipped: no check reads them."""
        for event in events:
            kind = event.get("kind")
            if kind == "ModelChanged":
                model = self._models.get(event["model"]["id"])
                if model is not None:
                    model.setdefault("attributes", {})[event["attr"]] = event["new"]
                    self._index(model)
            elif kind == "RootAdded":
                self.roots.extend(self._refer(event["model"]))
            elif kind == "RootRemoved":
                for gone in self._refer(event["model"]):
                    if gone in self.roots:
                        self.roots.remove(gone)

    def _refer(self, value) -> list[str]:
        """The ids ``value`` refers to, anywhere inside it; models sent in full there are added."""
        refs: list[str] = []
        stack = [value]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if node.get("type") == "object" and "id" in node:
                    refs.append(node["id"])
                    self._index(node)
                elif "id" in node and len(node) == 1:  # a reference to a model sent before
                    refs.append(node["id"])
                else:
                    stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        return refs

    def _index(self, model: dict) -> None:
        self._models[model["id"]] = model
        self._refs[model["id"]] = self._refer(list(model.get("attributes", {}).values()))

    def models(self) -> list[dict]:
        """The models reachable from the roots (what the browser shows), each as sent, with its changes."""
        seen: set[str] = set()
        found: list[dict] = []
        stack = list(reversed(self.roots))
        while stack:
            ref = stack.pop()
            if ref in seen or ref not in self._models:  # a buffer's id, or a model seen already
                continue
            seen.add(ref)
            found.append(self._models[ref])
            stack.extend(reversed(self._refs[ref]))
        return found

    def texts(self) -> list[str]:
        """The text of every HTML, Markdown and Typography model (as sent: HTML-escaped)."""
        return [
            value
            for model in self.models()
            for name in ("text", "object")
            if isinstance(value := model.get("attributes", {}).get(name), str)
        ]

    def loading(self) -> bool:
        """Whether some model shows Panel's loading indicator."""
        return any("pn-loading" in (m.get("attributes", {}).get("css_classes") or []) for m in self.models())

    def select(self, label: str) -> tuple[str, dict]:
        """The id and attributes of the select labelled ``label`` (value and options: see ``options``)."""
        for model in self.models():
            attributes = model.get("attributes", {})
            if attributes.get("label") == label and "options" in attributes:
                return model["id"], attributes
        raise LookupError(f"no select labelled {label!r} in the document")

    @staticmethod
    def options(attributes: dict) -> list[str]:
        """A select's option values: a list of values or of (value, label) pairs, or a long list sent as
        groups (``alliance.guard.ScopedSelect``: a title and its options, as an object or as bokeh's map)."""
        options = attributes.get("options") or []
        if isinstance(options, dict):
            groups = options["entries"] if options.get("type") == "map" else list(options.items())
            options = [o for _, group in groups for o in group]
        return [str(o[0] if isinstance(o, list) else o) for o in options]


class PageSession(ClientSession):
    """A websocket session joining the server session that a page's HTML named, with the token that page
    carried (as the page's JavaScript does), instead of a new session of bokeh's own. Its ``document`` is a
    ``PageDocument``: the JSON the server sent, not bokeh models."""

    def __init__(self, token: str, websocket_url: str, timeout: float, cookie: str = ""):
        """``cookie``: the Cookie header a signed-in browser sends with the websocket's request."""
        self._page_token = token
        self._page = PageDocument()
        loop = IOLoop()  # the session's own; closed by Visit.close
        super().__init__(session_id=get_session_id(token), websocket_url=websocket_url, io_loop=loop)
        self._connection = PatientConnection(self, websocket_url, loop, timeout, cookie)

    @property
    def token(self) -> str:
        return self._page_token

    @property
    def document(self) -> PageDocument:  # type: ignore[override]
        return self._page

    #: PATCH-DOC messages from the server applied to this session's document so far
    patches = 0
    #: called with the document after each of them is applied (a test's look at what arrived in what order)
    after_patch: Callable[[PageDocument], None] | None = None

    def pull(self) -> None:
        """Connect and pull the server's document into ``document``."""
        self.connect()
        self.check_connection_errors()
        self._connection.pull_doc(self._page)

    def send(self, *events: dict) -> None:
        """Send events to the server in a ``PATCH-DOC`` message, as a browser's document does."""
        message = patch_doc(patch_doc.create_header(), {}, {"events": list(events)})
        self._connection.io_loop.add_callback(self._connection.send_message, message)

    def set_value(self, model: str, attr: str, value) -> None:
        """Change a model's value here and on the server, as a browser's widget does."""
        self._page._models[model].setdefault("attributes", {})[attr] = value
        self.send({"kind": "ModelChanged", "model": {"id": model}, "attr": attr, "new": value})

    def document_ready(self) -> None:
        """Say that the page is drawn, as a browser does once it has drawn the document."""
        self.send(
            {
                "kind": "MessageSent",
                "msg_type": "bokeh_event",
                "msg_data": Serializer().encode(DocumentReady()),
            }
        )

    def _handle_patch(self, message) -> None:
        self.patches += 1
        self._page.apply(message.content["events"])
        if self.after_patch is not None:
            self.after_patch(self._page)

    def _notify_disconnected(self) -> None:  # no bokeh document to detach
        pass


def _bounded(session: ClientSession, timeout: float, what: str, step: Callable[[], object]) -> None:
    """Run ``step`` (which runs the session's IO loop) for at most ``timeout`` seconds: past it the session
    is closed, which ends the step, and TimeoutError is raised."""
    loop = session._connection.io_loop
    expired = []

    def expire() -> None:
        expired.append(True)
        session.close("load generator: no answer in time")
        loop.call_later(5.0, loop.stop)  # in case the closing handshake does not finish either

    handle = loop.call_later(timeout, expire)
    try:
        step()
    except Exception as exc:
        if expired:
            raise TimeoutError(f"{what}: no answer within {timeout:.0f} s") from exc
        raise
    finally:
        loop.remove_timeout(handle)
    if expired:
        raise TimeoutError(f"{what}: no answer within {timeout:.0f} s")


def wait_for_messages(session: ClientSession, done: Callable[[], bool], timeout: float, what: str) -> None:
    """Apply the server's messages to the session's document until ``done()`` (checked after each one)."""
    connection = session._connection  # bokeh's client waits only through its connection's private loop
    _bounded(session, timeout, what, lambda: connection._loop_until(lambda: done() or not session.connected))
    if not done():
        raise ConnectionError(f"{what}: the server closed the session")


def texts(doc: Document | PageDocument) -> list[str]:
    """The text of every HTML, Markdown and Typography model of a document (as sent: HTML-escaped)."""
    if isinstance(doc, PageDocument):
        return doc.texts()
    found = []
    for model in list(doc.models):
        for name in ("text", "object"):
            if name in model.properties():
                value = getattr(model, name)
                if isinstance(value, str):
                    found.append(value)
    return found


def loading(doc: Document | PageDocument) -> bool:
    """Whether some model of the document shows Panel's loading indicator (a page's main area until it is
    filled in, a view while a choice is followed)."""
    if isinstance(doc, PageDocument):
        return doc.loading()
    return any("pn-loading" in (getattr(m, "css_classes", None) or []) for m in list(doc.models))


def shows(doc: Document | PageDocument, words: str) -> bool:
    """Whether some text of the document holds ``words``."""
    escaped = html.escape(words, quote=False)
    return any(words in text or escaped in text for text in texts(doc))


def _heading_in(text: str) -> str | None:
    found = _HEADING.search(html.unescape(text))
    return found.group(1) if found else None


def heading_client(doc: Document | PageDocument) -> str | None:
    """The client the client page's heading names ("Client C-1 · episode E1"), if any."""
    for text in texts(doc):
        found = _HEADING.search(html.unescape(text))
        if found:
            return found.group(1)
    return None


class Visit:
    """One page open in a simulated browser tab: a live session with its synced document."""

    def __init__(self, url: str, page: str, timeout: float, cookie: str = ""):
        """Fetch the page's HTML (``html``), join its session over the websocket, pull the document, say
        that it is drawn, and wait until the page's own content has arrived; ``seconds`` is how long that
        took. ``page`` may carry a query (``client?client=C-1``); ``cookie``: a signed-in browser's Cookie
        header."""
        start = time.perf_counter()
        request = urllib.request.Request(f"{url}/{page}", headers={"Cookie": cookie} if cookie else {})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            self.html = response.read().decode("utf-8", errors="replace")
        found = _TOKEN.search(self.html)
        if found is None:
            raise RuntimeError(f"{page}: the page's HTML holds no session token")
        path = page.split("?")[0]
        self.page = path
        self.session = PageSession(
            found.group(1), websocket_url_for_server_url(f"{url}/{path}"), timeout, cookie
        )
        try:
            _bounded(self.session, timeout, f"{page}: pulling the document", self.session.pull)
            self.doc = self.session.document
            self.session.document_ready()  # sent with the next run of the session's loop
            wait_for_messages(
                self.session, lambda: shows(self.doc, PAGE_CONTENT[path]), timeout, f"{page}: content"
            )
        except BaseException:
            self.close()
            raise
        self.seconds = time.perf_counter() - start

    def switch_client(self, rng: random.Random, timeout: float) -> float:
        """Choose another client in the selector; seconds until the heading names that client."""
        select, attributes = self.doc.select("Client")
        value = attributes.get("value")
        others = [o for o in PageDocument.options(attributes) if o != str(value)]
        if not others:
            raise LookupError(f"client page: no other client to choose than {value!r}")
        chosen = rng.choice(others)
        patches = self.session.patches
        start = time.perf_counter()
        self.session.set_value(select, "value", chosen)  # a PATCH-DOC to the server, as the browser sends
        try:
            wait_for_messages(
                self.session, lambda: heading_client(self.doc) == chosen, timeout, "client page"
            )
        except (TimeoutError, ConnectionError) as exc:
            headings = sorted({h for h in map(_heading_in, texts(self.doc)) if h})
            mentions = sum(chosen in text for text in texts(self.doc))
            raise type(exc)(
                f"{exc}: heading for {chosen} never came (headings in the document: {headings}; the "
                f"selector now holds {attributes.get('value')!r}; "
                f"{self.session.patches - patches} updates from the server since the choice; {mentions} "
                f"texts name {chosen}; session {self.session.id})"
            ) from None
        return time.perf_counter() - start

    def close(self, wait: float = 60.0) -> None:
        """Close the websocket as a browser does when the tab closes or navigates away: send the closing
        frame and wait, at most ``wait`` seconds, for the server's (reading what it still sends); then free
        the session's IO loop. Dropping the connection instead would reset it with the server's last messages
        unread, which a browser does not do. May run in another thread than the one that opened the visit."""
        loop = self.session._connection.io_loop

        def send_closing_frame() -> None:
            protocol = getattr(getattr(self.session._connection._socket, "_socket", None), "protocol", None)
            self.session.close("page closed")
            if protocol is not None and protocol._waiting is not None:
                # Tornado drops the connection when the server has not answered its closing frame within 5 s,
                # which a busy server may take; the server would see a reset connection that no browser sends.
                loop.remove_timeout(protocol._waiting)
                protocol._waiting = None

        try:
            if self.session.connected:
                loop.add_callback(send_closing_frame)  # on the session's own loop, in this thread
                handle = loop.call_later(wait, loop.stop)
                self.session._connection.loop_until_closed()
                loop.remove_timeout(handle)
        finally:
            loop.close(all_fds=True)

    def leave(self, wait: float, closing: list[threading.Thread], errors: list[str], who: str) -> None:
        """Close the visit in a thread of its own, as a browser closes the old page's websocket while the
        next page loads; the thread is added to ``closing``, a failure to close to ``errors``."""

        def close() -> None:
            try:
                self.close(wait)
            except Exception as exc:
                errors.append(f"{who}, closing the {self.page} page: {type(exc).__name__}: {exc}")

        thread = threading.Thread(target=close, name=f"loadgen-close-{self.page}", daemon=True)
        closing.append(thread)
        thread.start()


def simulate_user(
    url: str,
    index: int,
    switches: int,
    timeout: float,
    think: float,
    closing: list[threading.Thread],
    errors: list[str],
    start_after: float = 0.0,
    client: str | None = None,
) -> dict:
    """One person, arriving ``start_after`` seconds after the first: the client page (``client``'s, by
    link, else where the page lands), ``switches`` other clients, then the caseload, comparison and meeting
    pages in the same tab (each new page closes the previous one's session). Returns the seconds measured
    and the error that ended the visit, if any; the sessions' closing threads are added to ``closing``."""
    time.sleep(start_after)
    rng = random.Random(index)
    result: dict = {"switch_times": [], "page_times": {}, "error": None}
    who = f"user {index}"
    visit = None
    step = "client page"
    try:
        visit = Visit(url, f"client?client={quote(client)}" if client else "client", timeout)
        result["page_times"]["client"] = visit.seconds
        if client and heading_client(visit.doc) != client:
            raise LookupError(f"the link to {client} opened {heading_client(visit.doc)!r}")
        for n in range(switches):
            step = f"client switch {n + 1}"
            time.sleep(think)
            result["switch_times"].append(visit.switch_client(rng, timeout))
        for page in OTHER_PAGES:
            step = f"{page} page"
            time.sleep(think)
            visit.leave(timeout, closing, errors, who)
            visit = None
            visit = Visit(url, page, timeout)
            result["page_times"][page] = visit.seconds
    except Exception as exc:  # a failed session is a result, reported with the others
        result["error"] = f"{who}, {step}: {type(exc).__name__}: {str(exc)[:300]}"
    finally:
        if visit is not None:
            visit.leave(timeout, closing, errors, who)
    return result


def run_load(
    url: str,
    users: int,
    switches: int,
    timeout: float = 120.0,
    think: float = 1.0,
    arrive: float = 0.0,
    clients: list[str] | None = None,
) -> dict:
    """Run ``users`` simulated users against the ``panel serve`` at ``url``, each opening the client page,
    choosing another client ``switches`` times, then opening the caseload, comparison and meeting pages.
    With ``clients`` (``spread_clients``) user *i* opens the client page on ``clients[i]`` by link, and
    chooses among that client's clinician's clients; without, every user lands where the page does (the
    same caseload for everyone, whose reads one user's visit leaves in the process for the others).

    Each user runs in its own thread with its own sessions, each session with its own IO loop (bokeh's
    client). ``think`` seconds pass before each choice and page, as a person (and the selector's menu) takes.
    The users arrive evenly over the first ``arrive`` seconds (0: all at the same instant).
    Every step waits at most ``timeout`` seconds. Returns the total seconds, the failed users' errors, every
    client switch's seconds, and each page's seconds until its content arrived."""
    closing: list[threading.Thread] = []
    close_errors: list[str] = []
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, users), thread_name_prefix="loadgen-user") as pool:
        results = list(
            pool.map(
                lambda i: simulate_user(
                    url,
                    i,
                    switches,
                    timeout,
                    think,
                    closing,
                    close_errors,
                    arrive * i / max(1, users),
                    clients[i % len(clients)] if clients else None,
                ),
                range(users),
            )
        )
    took = time.perf_counter() - start
    for thread in closing:  # every session closed before the server is looked at
        thread.join()
    pages: dict[str, list[float]] = {page: [] for page in PAGE_CONTENT}
    for r in results:
        for page, seconds in r["page_times"].items():
            pages[page].append(seconds)
    return {
        "seconds": took,
        "failed": [r["error"] for r in results if r["error"]] + close_errors,
        "switch_times": [t for r in results for t in r["switch_times"]],
        "page_times": pages,
    }


def spread_clients(db: Path, users: int) -> list[str]:
    """One client for each of ``users`` clinicians (at most as many as have two clients or more; ``run_load``
    then gives the list again from the start), each clinician's most recently seen client (the greater code
    of two seen the same day), the clinicians in a fixed order that follows no column (a hash of their
    code): the users of ``run_load`` then each go through another caseload. (A link opens the client's
    newest episode, which another clinician may hold: the user then goes through that one's caseload.)"""
    import duckdb

    from alliance.db import DUCKDB_CONFIG

    con = duckdb.connect(str(db), read_only=True, config=DUCKDB_CONFIG)
    try:
        rows = con.execute(
            """
            SELECT arg_max(e.client_id, strftime(s.last_seen, '%Y-%m-%d') || e.client_id) AS client_id
            FROM episode e
            JOIN (SELECT episode_id, max(session_date) AS last_seen FROM session GROUP BY 1) s
                USING (episode_id)
            GROUP BY e.clinician_id
            HAVING count(DISTINCT e.client_id) >= 2
            ORDER BY hash(e.clinician_id), e.clinician_id
            LIMIT $n
            """,
            {"n": users},
        ).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def p95(times: list[float]) -> float:
    """The 95th percentile of ``times`` (nearest rank)."""
    s = sorted(times)
    return s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]


def report(result: dict, users: int, switches: int) -> None:
    """Print what ``run_load`` measured."""
    print(
        f"load: {users} simultaneous users (client page, {switches} client switches, caseload, comparison, "
        f"meeting) in {result['seconds']:.1f} s; {len(result['failed'])} failed",
        flush=True,
    )
    for error in result["failed"][:10]:
        print(f"  {error}")
    times = result["switch_times"]
    if times:
        print(
            f"client switch: n={len(times)} median {statistics.median(times) * 1000:.0f} ms  "
            f"p95 {p95(times) * 1000:.0f} ms  max {max(times) * 1000:.0f} ms"
        )
    for page, times in result["page_times"].items():
        if times:
            print(
                f"{page:<10} page until its content arrived: n={len(times)} "
                f"median {statistics.median(times):.2f} s  p95 {p95(times):.2f} s"
            )


def cpu_seconds() -> float:
    """CPU seconds (user and system) this process has used so far."""
    return time.process_time()


def process_cpu_seconds(group: int) -> dict[int, float]:
    """CPU seconds used so far by each running process of a process group (a server and its forks), by id."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[2]) == group:  # the process group, after state and parent
            found[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def cpu_split(before: dict[int, float], after: dict[int, float]) -> str:
    """The CPU seconds each server process used between two ``process_cpu_seconds``, busiest first: how the
    work was shared between the processes of ``--num-procs`` (the parent of the forks does none)."""
    used = sorted((after[pid] - before.get(pid, 0.0) for pid in after), reverse=True)
    return ", ".join(f"{seconds:.1f} s" for seconds in used if seconds >= 0.05) or "none"


def main(argv: list[str] | None = None) -> int:
    """Start a ``panel serve`` of the dashboards on ``--db``, run the load against it, print what was
    measured and stop the server. Exit status 1 when a user failed or the server logged a traceback."""
    from alliance import config
    from alliance.serving import Server

    parser = argparse.ArgumentParser(prog="python -m alliance.loadgen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=config.DEFAULT_DB, help="database the server reads")
    parser.add_argument("--users", type=int, default=20, help="simultaneous users (default 20)")
    parser.add_argument("--switches", type=int, default=3, help="client switches per user (default 3)")
    parser.add_argument("--think", type=float, default=1.0, help="seconds before each action (default 1)")
    parser.add_argument(
        "--arrive", type=float, default=0.0, help="users arrive evenly over these seconds (default 0)"
    )
    parser.add_argument("--procs", type=int, default=1, help="server processes (--num-procs, default 1)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds each step may take")
    parser.add_argument(
        "--threads", type=int, default=0, help="the server's --num-threads (default: none, as make serve)"
    )
    parser.add_argument("--log", type=Path, default=None, help="keep the server's log in this file")
    parser.add_argument(
        "--spread",
        action="store_true",
        help="each user opens a client of another clinician by link (default: all land on the same one)",
    )
    args = parser.parse_args(argv)
    if not args.db.exists():
        parser.error(f"no database at {args.db} (build one with `alliance demo --out PATH`)")
    with tempfile.TemporaryDirectory() as tmp:
        log = args.log or Path(tmp) / "panel.log"
        server = Server(args.db, log, num_threads=args.threads or None, num_procs=args.procs)
        try:
            threads = f"--num-threads {args.threads}" if args.threads else "no thread pool"
            print(f"panel serve of {args.db} at {server.url} ({threads}, {args.procs} processes)", flush=True)
            clients = spread_clients(args.db, args.users) if args.spread else None
            if clients is not None:
                print(f"each user at another clinician's client: {len(clients)} clinicians", flush=True)
            before = cpu_seconds(), process_cpu_seconds(server.proc.pid)
            result = run_load(
                server.url, args.users, args.switches, args.timeout, args.think, args.arrive, clients
            )
            after = cpu_seconds(), process_cpu_seconds(server.proc.pid)
            ours = after[0] - before[0]
            theirs = sum(after[1].values()) - sum(before[1].values())
            report(result, args.users, args.switches)
            print(
                f"CPU during the load: server {theirs:.0f} s ({cpu_split(before[1], after[1])} by process), "
                f"this load generator {ours:.0f} s, over {result['seconds']:.0f} s on {os.cpu_count()} cores"
            )
            errors = server.errors()
            print(
                f"server log: {len(errors)} record(s) with a traceback"
                + (f" (log {log})" if args.log else "")
            )
            for error in errors[:3]:
                print("  " + error.strip()[-2000:].replace("\n", "\n  "))
        finally:
            server.stop()
    return 1 if result["failed"] or errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
