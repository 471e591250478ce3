"""Discussed-marks: a small writable SQLite store beside the read-only ratings database.

A mark says that a supervisor discussed an episode at a meeting, with an optional short action note (e.g.
"try eliciting feedback on goals") — never clinical free text about the client. At the next meeting the
action's follow-up ("done" / "not done") is recorded on that mark. A mark made by mistake is undone: it stays
in the file, stamped ``undone_at``, and is no longer read. The store lives next to the database as
``<db stem>.marks.sqlite`` (or at ``$ALLIANCE_MARKS``). Every call opens its own connection in WAL mode with a
busy timeout, so several server threads and processes can mark at once; parameters are always bound.

Schema versions (``PRAGMA user_version``): 0/1 the first table; 2 adds ``followup``, ``followup_at`` and
``undone_at``. Opening an older file adds the columns in place: existing marks are kept as they are.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from pathlib import Path

import pandas as pd

from alliance.audit import AuditLog

MARKS_ENV = "ALLIANCE_MARKS"
MAX_NOTE = 200
MAX_CODE = 64
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS discussed_mark (
    mark_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    episode_id    TEXT NOT NULL,
    supervisor_id TEXT NOT NULL,
    meeting_date  TEXT NOT NULL,
    action_note   TEXT NOT NULL DEFAULT '',
    marked_at     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS discussed_mark_episode ON discussed_mark (episode_id, meeting_date);
"""
SCHEMA_VERSION = 2
#: Columns added by schema version 2 (ALTER TABLE … ADD COLUMN keeps every existing row).
_V2_COLUMNS = {
    "followup": "TEXT NOT NULL DEFAULT ''",  # '', 'done' or 'not done': the action's follow-up
    "followup_at": "TEXT",
    "undone_at": "TEXT",  # set when the mark was undone; undone marks are not read
}
FOLLOWUPS = ("", "done", "not done")

COLUMNS = [
    "mark_id",
    "episode_id",
    "supervisor_id",
    "meeting_date",
    "action_note",
    "marked_at",
    "followup",
    "followup_at",
]


class MarkError(ValueError):
    """A mark that cannot be stored (too long a note, a missing code, a bad date)."""


def marks_path(db_path: str | os.PathLike | None = None) -> Path:
    """$ALLIANCE_MARKS, else ``<db stem>.marks.sqlite`` next to the ratings database."""
    env = os.environ.get(MARKS_ENV)
    if env:
        return Path(env)
    if db_path is None:
        from alliance import config

        db_path = os.environ.get(config.DB_ENV) or config.DEFAULT_DB
    db_path = Path(db_path)
    return db_path.with_name(f"{db_path.stem}.marks.sqlite")


def _code(name: str, value) -> str:
    text = str(value or "").strip()
    if not text or len(text) > MAX_CODE or any(ord(c) < 32 for c in text):
        raise MarkError(f"{name} must be a code of 1–{MAX_CODE} printable characters, not {value!r}")
    return text


def check_note(note: str | None) -> str:
    """The action note, stripped; a note over ``MAX_NOTE`` characters or with line breaks is refused."""
    text = (note or "").strip()
    if len(text) > MAX_NOTE:
        raise MarkError(
            f"the action note has {len(text)} characters; keep it to {MAX_NOTE} "
            "(a short action, no clinical free text about the client)"
        )
    if any(ord(c) < 32 for c in text):
        raise MarkError("the action note must be one line")
    return text


class MarkStore:
    """Discussed-marks in one SQLite file (created on first use)."""

    def __init__(self, path: str | os.PathLike, audit: AuditLog | None = None):
        self.path = Path(path)
        #: Where marking and undoing are recorded (alliance.audit) before they happen.
        self.audit = audit or AuditLog.beside_store(self.path)

    @classmethod
    def beside(cls, db_path=None) -> MarkStore:
        """The store for a ratings database (see ``marks_path``), recorded in the database's audit trail."""
        return cls(marks_path(db_path), audit=AuditLog.beside(db_path))

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        if int(con.execute("PRAGMA user_version").fetchone()[0]) < SCHEMA_VERSION:
            self._migrate(con)
        return con

    @staticmethod
    def _migrate(con: sqlite3.Connection) -> None:
        """Create the table, or bring an older one to ``SCHEMA_VERSION`` in one transaction (existing marks
        kept). Two processes may migrate at once: the second finds the columns there."""
        con.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    con.execute(statement)
            have = {row[1] for row in con.execute("PRAGMA table_info(discussed_mark)")}
            for name, decl in _V2_COLUMNS.items():
                if name not in have:
                    con.execute(f"ALTER TABLE discussed_mark ADD COLUMN {name} {decl}")
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def mark_discussed(
        self, episode_id: str, supervisor_id: str, meeting_date, action_note: str | None = ""
    ) -> int:
        """Record that ``episode_id`` was discussed at ``meeting_date``; returns the mark's id."""
        eid, sid = _code("episode_id", episode_id), _code("supervisor_id", supervisor_id)
        note = check_note(action_note)
        try:
            day = dt.date.fromisoformat(str(pd.Timestamp(meeting_date).date()))
        except (ValueError, TypeError):
            raise MarkError(f"{meeting_date!r} is not a date") from None
        # Recorded first: an AuditError (the trail cannot be written) means no mark.
        action = f", action: {note}" if note else ""
        self.audit.record("mark_discussed", episode=eid, detail=f"supervisor {sid}, meeting {day}{action}")
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        con = self._connect()
        try:
            cur = con.execute(
                "INSERT INTO discussed_mark "
                "(episode_id, supervisor_id, meeting_date, action_note, marked_at) VALUES (?, ?, ?, ?, ?)",
                (eid, sid, day.isoformat(), note, now),
            )
            return int(cur.lastrowid)
        finally:
            con.close()

    def marks_for(self, episode_ids) -> pd.DataFrame:
        """Every mark of the given episodes, oldest first (columns ``COLUMNS``)."""
        ids = [str(e) for e in episode_ids]
        if not ids:
            return pd.DataFrame(columns=COLUMNS)
        con = self._connect()
        try:
            frames = []
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                placeholders = ",".join("?" * len(chunk))
                frames.append(
                    pd.read_sql_query(
                        f"SELECT {', '.join(COLUMNS)} FROM discussed_mark "  # noqa: S608 — placeholders only
                        f"WHERE episode_id IN ({placeholders}) AND undone_at IS NULL "
                        "ORDER BY meeting_date, mark_id",
                        con,
                        params=chunk,
                    )
                )
        finally:
            con.close()
        out = pd.concat(frames, ignore_index=True)
        out["meeting_date"] = pd.to_datetime(out["meeting_date"])
        return out.sort_values(["meeting_date", "mark_id"]).reset_index(drop=True)

    def undo(self, mark_id: int) -> bool:
        """Undo a mark (a "Discussed" clicked by mistake): it is kept in the file, stamped ``undone_at``, and
        no longer read. Returns False when there was no such mark still in force."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        con = self._connect()
        try:
            mark = con.execute(
                "SELECT episode_id FROM discussed_mark WHERE mark_id = ? AND undone_at IS NULL",
                (int(mark_id),),
            ).fetchone()
            if mark is None:
                return False
            self.audit.record("unmark", episode=mark[0], detail=f"mark {int(mark_id)} undone")  # first
            cur = con.execute(
                "UPDATE discussed_mark SET undone_at = ? WHERE mark_id = ? AND undone_at IS NULL",
                (now, int(mark_id)),
            )
            return cur.rowcount == 1
        finally:
            con.close()

    def set_followup(self, mark_id: int, followup: str) -> bool:
        """Record whether the action noted with mark ``mark_id`` was done ("done", "not done", or "" to
        clear). Returns False when there was no such mark still in force."""
        value = str(followup or "").strip()
        if value not in FOLLOWUPS:
            raise MarkError(f"a follow-up is 'done' or 'not done', not {followup!r}")
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds") if value else None
        con = self._connect()
        try:
            cur = con.execute(
                "UPDATE discussed_mark SET followup = ?, followup_at = ? "
                "WHERE mark_id = ? AND undone_at IS NULL",
                (value, now, int(mark_id)),
            )
            return cur.rowcount == 1
        finally:
            con.close()

    def count(self) -> int:
        """Marks in force (undone ones are not counted)."""
        con = self._connect()
        try:
            return int(
                con.execute("SELECT count(*) FROM discussed_mark WHERE undone_at IS NULL").fetchone()[0]
            )
        finally:
            con.close()
