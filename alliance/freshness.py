"""What a served page says about the data it shows, in its header: the date the data describe and when the
stored metrics were written ("Data as of 01 Nov 2026, refreshed at 30 Nov 2026 09:12 UTC"); and, checked every
few seconds while the page is open (``ALLIANCE_CHECK_SECONDS``, default 10), whether the database file has
changed since the page read it: a new version swapped in by ``alliance import`` or ``alliance refresh`` (a
button reloads the page onto it), or a file that has gone or cannot be read (said in words; the page keeps
what it read before). A new session always opens the file as it is now (``alliance.db.open_database``).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import panel as pn
import panel_material_ui as pmui
from panel.io.callbacks import PeriodicCallback
from panel.viewable import Viewer

from alliance.clinical import MetricSettings
from alliance.db import Database, DatabaseError, file_identity, open_database
from alliance.inert import html_text
from alliance.store import StoreStamp, is_current, read_stamp

CHECK_ENV = "ALLIANCE_CHECK_SECONDS"
DEFAULT_CHECK_SECONDS = 10.0


def check_seconds() -> float:
    """How often an open page looks at the database file (``$ALLIANCE_CHECK_SECONDS``; 0 turns it off)."""
    try:
        return max(0.0, float(os.environ.get(CHECK_ENV, DEFAULT_CHECK_SECONDS)))
    except ValueError:
        return DEFAULT_CHECK_SECONDS


def _when(stamp: StoreStamp) -> str:
    try:
        at = dt.datetime.fromisoformat(stamp.computed_at)
    except ValueError:
        return stamp.computed_at or "an unknown time"
    return f"{at:%d %b %Y %H:%M} UTC" if at.utcoffset() == dt.timedelta(0) else f"{at:%d %b %Y %H:%M %Z}"


def data_line(db: Database) -> str:
    """'Data as of 01 Nov 2026, refreshed at 30 Nov 2026 09:12 UTC': the date the data describe (the
    database's own, else the date the stored metrics describe, else today, as the metrics take it) and when
    the metrics store was written; or that the metrics are computed because the store is missing or stale."""
    meta = dict(db.query("database_info").itertuples(index=False))
    stamp = read_stamp(db)
    if "data_as_of" in meta:
        as_of = dt.date.fromisoformat(meta["data_as_of"])
    elif stamp is not None:
        as_of = stamp.as_of
    else:
        as_of = dt.date.today()
    head = f"Data as of {as_of:%d %b %Y}"
    if stamp is None:
        return f"{head}; no stored metrics (computed from the ratings; `alliance refresh` stores them)"
    if not is_current(db, MetricSettings()):
        return f"{head}; stored metrics out of date (refreshed at {_when(stamp)}; computed from the ratings)"
    return f"{head}, refreshed at {_when(stamp)}"


class DataStatus(Viewer):
    """The data line of a page and the notice that the database file changed under it."""

    def __init__(self, db: Database | None = None, path: Path | str | None = None, **params):
        super().__init__(**params)
        self.db = db
        self.path = Path(path) if path is not None else db.path
        self.seen = db.identity if db is not None else file_identity(self.path)
        try:
            words = data_line(db) if db is not None else ""
        except DatabaseError as exc:
            words = str(exc)
        self.text = pmui.Typography(html_text(words), variant="body2", name="data-status", margin=(0, 10))
        self.problem = pmui.Typography(
            "",
            variant="body2",
            name="data-problem",
            visible=False,
            margin=(0, 10),
            styles={"color": "#ffe082"},
        )
        self.reload = pmui.Button(
            label="New data: reload",
            variant="contained",
            color="warning",
            visible=False,
        )
        self.reload.js_on_click(code="window.location.reload()")
        self._callback = None

    def check(self) -> str:
        """Look at the file now: 'same'; 'new' (a new version opens: the reload button shows); 'gone' or
        'unreadable' (said in words beside the data line; the page keeps what it read)."""
        identity = file_identity(self.path)
        if self.db is not None and identity == self.seen:
            return self._show("same", "")
        if identity is None:
            gone = (
                f"The database file {self.path} has gone; this page shows what it read before. "
                "It works again when the file is back."
            )
            return self._show("gone", gone if self.db is not None else "")
        try:
            open_database(self.path)
        except DatabaseError as exc:
            return self._show("unreadable", f"{exc} This page shows what it read before.")
        return self._show("new", "")

    def _show(self, state: str, problem: str) -> str:
        self.reload.visible = state == "new"
        self.problem.object = html_text(problem)
        self.problem.visible = bool(problem)
        return state

    def _tick(self) -> None:
        try:
            self.check()
        except Exception as exc:  # never a traceback from a background check; say it instead
            self._show("unreadable", f"The database file cannot be checked ({type(exc).__name__}).")

    def start(self) -> None:
        """Check the file every ``ALLIANCE_CHECK_SECONDS`` while this session lasts (served pages only)."""
        seconds = check_seconds()
        if self._callback is None and seconds and pn.state.curdoc is not None:
            # In the background: a check must not set Panel's global busy state, which every session of the
            # process follows (one being built meanwhile would be updated half-made).
            self._callback = PeriodicCallback(
                callback=self._tick, period=int(seconds * 1000), background=True, log=False
            )
            self._callback.start()

    def __panel__(self):
        self.start()
        return pn.Row(self.text, self.problem, self.reload, align="center", name="data-status-row")


def data_status(service) -> DataStatus:
    """The data line for a page's header (``pmui.Page(header=[…])``), checking the file while the page is
    open."""
    return DataStatus(service.db)
