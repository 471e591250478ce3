"""Discussed-marks: a small writable SQLite store beside the read-only ratings database.

A mark says that a supervisor discussed an episode at a meeting, with an optional short action note (e.g.
"try eliciting feedback on goals") — never clinical free text about the client. The store lives next to the
database as ``<db stem>.marks.sqlite`` (or at ``$ALLIANCE_MARKS``). Every call opens its own connection in
WAL mode with a busy timeout, so several server threads and processes can mark at once; parameters are always
bound.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from pathlib import Path

import pandas as pd

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

COLUMNS = ["mark_id", "episode_id", "supervisor_id", "meeting_date", "action_note", "marked_at"]


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

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def beside(cls, db_path=None) -> MarkStore:
        """The store for a ratings database (see ``marks_path``)."""
        return cls(marks_path(db_path))

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        con.executescript(_SCHEMA)
        return con

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
                        f"WHERE episode_id IN ({placeholders}) ORDER BY meeting_date, mark_id",
                        con,
                        params=chunk,
                    )
                )
        finally:
            con.close()
        out = pd.concat(frames, ignore_index=True)
        out["meeting_date"] = pd.to_datetime(out["meeting_date"])
        return out.sort_values(["meeting_date", "mark_id"]).reset_index(drop=True)

    def count(self) -> int:
        con = self._connect()
        try:
            return int(con.execute("SELECT count(*) FROM discussed_mark").fetchone()[0])
        finally:
            con.close()
