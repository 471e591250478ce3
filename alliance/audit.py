"""The audit trail: who signed in, viewed a client, exported, imported, refreshed or marked what, when, and
from where — appended to a store that the application cannot rewrite.

The store is one SQLite file beside the ratings database, ``<db stem>.audit.sqlite`` (or ``$ALLIANCE_AUDIT``),
opened per record in WAL mode with a busy timeout, so several server threads and processes append at once.
It is append-only twice over:

- triggers abort every ``UPDATE`` and ``DELETE`` of a record, whoever connects to the file;
- each record stores the SHA-256 of the previous record's hash and its own fields (a hash chain), so an edit,
  deletion or insertion made outside the application (triggers dropped, the file rewritten) is found by
  ``verify`` (``alliance audit --verify``). A trail whose triggers are missing is not written to: the actions
  that need it are refused until an operator has kept the file as evidence and moved it aside.

This module offers ``record`` and read functions only: there is no call that changes or removes a record.

**Nothing happens unrecorded.** A page view, an export or a discussed-mark is recorded *before* the data are
shown, written or changed; if the record cannot be written the action is refused with the reason
(``AuditError``). A command that changes the database (``alliance import``, ``alliance refresh``) checks that
the trail can be written, does its work, then records what it did; should that last write fail, the command
says so and exits 2.

Every value is stored as text with control characters written as ``\\xNN`` and cut to a length limit, so a
hostile code or note is kept legibly and can never break a terminal, a CSV reader or the chain.
"""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import hashlib
import json
import logging
import os
import re
import sqlite3
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

AUDIT_ENV = "ALLIANCE_AUDIT"
BUSY_TIMEOUT_MS = 30_000
FORMAT = "1"

#: What is recorded. ``sign_in`` (and ``sign_in_refused``) come from the sign-in step.
ACTIONS = (
    "sign_in",
    "sign_in_refused",
    "view_client",
    "export_csv",
    "export_pack",
    "import",
    "refresh",
    "mark_discussed",
    "unmark",
)
#: Who did it when there is no signed-in user in a served session.
ANONYMOUS = "anonymous (no sign-in)"
MAX_FIELD = 256
MAX_DETAIL = 4000
GENESIS = "0" * 64

COLUMNS = ["seq", "at", "action", "user", "remote", "clients", "episodes", "detail", "prev_hash", "hash"]

_TABLE = """
CREATE TABLE IF NOT EXISTS audit_record (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    at        TEXT NOT NULL,
    action    TEXT NOT NULL,
    user      TEXT NOT NULL,
    remote    TEXT NOT NULL,
    clients   TEXT NOT NULL,
    episodes  TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS audit_record_at ON audit_record (at);
CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
#: The triggers that make the table append-only (their names are checked before every write and by verify).
TRIGGERS = {
    "audit_record_no_update": "BEFORE UPDATE ON audit_record",
    "audit_record_no_delete": "BEFORE DELETE ON audit_record",
    "audit_meta_no_update": "BEFORE UPDATE ON audit_meta",
    "audit_meta_no_delete": "BEFORE DELETE ON audit_meta",
}
_REFUSAL = "the audit trail is append-only"

log = logging.getLogger("alliance.audit")


class AuditError(OSError):
    """The audit trail cannot be written (or read): the action that needed it does not happen. An ``OSError``,
    so that code which reports a store it cannot write (the marks file, a folder) reports this one too."""


# -- values ---------------------------------------------------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(value, limit: int = MAX_FIELD) -> str:
    """``value`` as one line of printable text: control characters (NUL, line breaks, escape…) and lone
    surrogates written as ``\\xNN``/``\\uNNNN``; cut to ``limit`` characters, saying how long it was."""
    if value is None:
        return ""
    text = _CONTROL.sub(_escape, str(value))
    if len(text) > limit:
        text = f"{text[: limit - 40]}… ({len(text):,} characters in all)"
    return text


def _codes(value) -> list[str]:
    """One code or several (a pack holds many clients) as a list of cleaned codes."""
    if value is None:
        return []
    if isinstance(value, str):
        values = [value]
    else:
        values = list(value)
    return [clean(v) for v in values if v is not None and str(v) != ""]


# -- who and from where ---------------------------------------------------------------------------------
def _session_context():
    """The served session's Bokeh context, or None (command line, inline in Jupyter, a test)."""
    if "panel" not in sys.modules:  # no Panel loaded: certainly no served session
        return None
    try:
        import panel as pn

        doc = pn.state.curdoc
        return doc.session_context if doc is not None else None
    except Exception:  # noqa: BLE001 — no session context is a normal case here
        return None


def _local_account() -> str:
    try:
        return f"{getpass.getuser()} (local account)"
    except Exception:  # noqa: BLE001 — no login name in this environment
        return "unknown local account"


def current_user() -> str:
    """The signed-in user of the served session (``pn.state.user``), ``ANONYMOUS`` in a served session without
    sign-in, else the local account running the command or notebook."""
    if _session_context() is None:
        return _local_account()
    try:
        import panel as pn

        user = pn.state.user
    except Exception:  # noqa: BLE001 — a session without cookies or a cookie secret
        user = None
    return str(user) if user else ANONYMOUS


def current_remote() -> str:
    """Where the served session's browser connects from (tornado's ``remote_ip``: behind a reverse proxy run
    ``panel serve --use-xheaders`` so that it is the browser's address), with a forwarded-for header when one
    was sent; ``local`` outside a served session."""
    ctx = _session_context()
    if ctx is None:
        return "local"
    try:
        request = ctx.request
    except Exception:  # noqa: BLE001
        request = None
    if request is None:
        return "served session (address unknown)"
    try:
        ip = getattr(request, "remote_ip", None)
    except Exception:  # noqa: BLE001 — the proxy raises for attributes the request lacks
        ip = None
    try:
        headers = request.headers or {}
        forwarded = headers.get("X-Forwarded-For") or headers.get("x-forwarded-for")
    except Exception:  # noqa: BLE001
        forwarded = None
    text = str(ip) if ip else "address unknown"
    if forwarded and str(forwarded) != text:
        text += f" (X-Forwarded-For: {forwarded})"
    return text


# -- the store ------------------------------------------------------------------------------------------
def audit_path(db_path: str | os.PathLike | None = None) -> Path:
    """$ALLIANCE_AUDIT, else ``<db stem>.audit.sqlite`` next to the ratings database (default: $ALLIANCE_DB,
    else the demo database)."""
    env = os.environ.get(AUDIT_ENV)
    if env:
        return Path(env)
    if db_path is None:
        from alliance import config

        db_path = config.database_path()
    db_path = Path(db_path)
    return db_path.with_name(f"{db_path.stem}.audit.sqlite")


def _digest(
    seq: int,
    at: str,
    action: str,
    user: str,
    remote: str,
    clients: str,
    episodes: str,
    detail: str,
    prev_hash: str,
) -> str:
    payload = json.dumps(
        [seq, at, action, user, remote, clients, episodes, detail, prev_hash],
        ensure_ascii=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


@dataclass
class Verification:
    """The outcome of ``verify``: intact or the problems found, with the count and the last hash (keep that
    hash somewhere else — a log server, a signed note — to detect a trail cut short or replaced)."""

    path: Path
    records: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class AuditLog:
    """The audit trail in one SQLite file (created on the first record)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def beside(cls, db_path=None) -> AuditLog:
        """The trail of a ratings database (see ``audit_path``)."""
        return cls(audit_path(db_path))

    @classmethod
    def beside_store(cls, store_path) -> AuditLog:
        """The trail for a side store whose database is not known (a marks file opened by its path):
        $ALLIANCE_AUDIT, else ``<stem>.audit.sqlite`` beside ``<stem>.marks.sqlite`` (or beside the file)."""
        if os.environ.get(AUDIT_ENV):
            return cls(os.environ[AUDIT_ENV])
        path = Path(store_path)
        stem = path.name.removesuffix(".marks.sqlite") if path.name.endswith(".marks.sqlite") else path.stem
        return cls(path.with_name(f"{stem}.audit.sqlite"))

    # -- writing --------------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if not self.path.parent.is_dir():
            raise AuditError(f"the audit trail {self.path} cannot be written: its folder does not exist")
        if self.path.is_dir():
            raise AuditError(f"the audit trail {self.path} cannot be written: it is a folder")
        try:  # a new trail is its owner's alone (SQLite gives its -wal and -shm files the same mode)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = FULL")
        except BaseException:
            con.close()
            raise
        return con

    @staticmethod
    def _triggers(con: sqlite3.Connection) -> set[str]:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}

    def _ensure_schema(self, con: sqlite3.Connection) -> None:
        """Inside the write transaction: create a new trail, or check that an existing one is still ours and
        append-only."""
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "audit_record" not in tables:
            if tables - {"sqlite_sequence"}:
                raise AuditError(f"{self.path} is another application's SQLite file, not an audit trail")
            # One statement at a time: executescript would commit the open transaction.
            for statement in _TABLE.split(";"):
                if statement.strip():
                    con.execute(statement)
            for name, when in TRIGGERS.items():
                con.execute(f"CREATE TRIGGER {name} {when} BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END")
            now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            con.executemany(
                "INSERT INTO audit_meta (key, value) VALUES (?, ?)", [("format", FORMAT), ("created_at", now)]
            )
            return
        missing = set(TRIGGERS) - self._triggers(con)
        if missing:
            raise AuditError(
                f"the audit trail {self.path} has been altered outside the application (its append-only "
                f"triggers {', '.join(sorted(missing))} are missing); nothing more is written to it. Run "
                "`alliance audit --verify`, keep the file as evidence and move it aside to start a new trail"
            )

    def record(
        self,
        action: str,
        *,
        user: str | None = None,
        client=None,
        episode=None,
        detail: str | None = None,
        remote: str | None = None,
    ) -> int:
        """Append one record; returns its sequence number. ``user`` and ``remote`` default to the current
        session's (``current_user``, ``current_remote``). ``client`` and ``episode`` are a code or several.
        Raises ``AuditError`` when the trail cannot be written — the caller must then refuse the action."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r} (one of {', '.join(ACTIONS)})")
        who = clean(user if user else current_user())
        where = clean(remote if remote else current_remote())
        clients = json.dumps(_codes(client), ensure_ascii=False)
        episodes = json.dumps(_codes(episode), ensure_ascii=False)
        text = clean(detail, MAX_DETAIL)
        try:
            con = self._connect()
            try:
                con.execute("BEGIN IMMEDIATE")  # one writer at a time across threads and processes
                try:
                    self._ensure_schema(con)
                    last = con.execute(
                        "SELECT seq, hash FROM audit_record ORDER BY seq DESC LIMIT 1"
                    ).fetchone()
                    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
                    at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
                    digest = _digest(seq, at, action, who, where, clients, episodes, text, prev)
                    placeholders = ", ".join("?" * len(COLUMNS))
                    con.execute(
                        f"INSERT INTO audit_record ({', '.join(COLUMNS)}) VALUES ({placeholders})",
                        (seq, at, action, who, where, clients, episodes, text, prev, digest),
                    )
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
            finally:
                con.close()
        except AuditError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise AuditError(f"the audit trail {self.path} cannot be written ({exc})") from None
        log.info("audit %s #%d %s by %s from %s: %s", self.path, seq, action, who, where, digest)
        return seq

    def problem(self, db_path=None) -> str | None:
        """Why the trail could not be written now, or None — without creating anything (the commands that
        change the database ask before they start). A missing folder that is the database's own is left to
        the command to report."""
        if self.path.is_dir():
            return f"the audit trail {self.path} cannot be written: it is a folder"
        if not self.path.exists():
            folder = self.path.parent
            if not folder.is_dir():
                same = db_path is not None and Path(db_path).parent.resolve() == folder.resolve()
                return None if same else f"the audit trail {self.path} cannot be written: no folder {folder}"
            if not os.access(folder, os.W_OK):
                return f"the audit trail {self.path} cannot be written: the folder {folder} is not writable"
            return None
        try:
            con = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_MS / 1000
            )
            try:
                con.execute("BEGIN IMMEDIATE")
                try:
                    self._ensure_schema(con)
                finally:
                    con.execute("ROLLBACK")
            finally:
                con.close()
        except AuditError as exc:
            return str(exc)
        except (sqlite3.Error, OSError) as exc:
            return f"the audit trail {self.path} cannot be written ({exc})"
        return None

    # -- reading --------------------------------------------------------------------------------------
    def _read(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise AuditError(f"there is no audit trail at {self.path} (nothing has been recorded there)")
        con = None
        try:
            con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
            con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            con.execute("SELECT count(*) FROM audit_record").fetchone()
        except sqlite3.Error as exc:
            if con is not None:
                con.close()
            raise AuditError(f"{self.path} cannot be read as an audit trail ({exc})") from None
        return con

    def records(
        self,
        since: dt.date | None = None,
        until: dt.date | None = None,
        user: str | None = None,
        client: str | None = None,
        action: str | None = None,
        episode: str | None = None,
    ) -> list[dict]:
        """The records, oldest first, narrowed by day (UTC, both ends included), user, client (a record about
        several, a pack, counts for each), episode and action (parameters bound). ``clients`` and ``episodes``
        are lists."""
        where, params = [], []
        if since is not None:
            where.append("at >= ?")
            params.append(since.isoformat())
        if until is not None:
            where.append("at < ?")
            params.append((until + dt.timedelta(days=1)).isoformat())
        if user is not None:
            where.append("user = ?")
            params.append(user)
        if client is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(audit_record.clients) WHERE value = ?)")
            params.append(client)
        if episode is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(audit_record.episodes) WHERE value = ?)")
            params.append(episode)
        if action is not None:
            where.append("action = ?")
            params.append(action)
        sql = f"SELECT {', '.join(COLUMNS)} FROM audit_record"  # noqa: S608 — fixed column names
        if where:
            sql += " WHERE " + " AND ".join(where)
        con = self._read()
        try:
            rows = con.execute(sql + " ORDER BY seq", params).fetchall()
        except sqlite3.Error as exc:
            raise AuditError(f"{self.path} cannot be read as an audit trail ({exc})") from None
        finally:
            con.close()
        out = []
        for row in rows:
            rec = dict(zip(COLUMNS, row, strict=True))
            for key in ("clients", "episodes"):
                try:
                    rec[key] = [str(v) for v in json.loads(rec[key])]
                except (TypeError, ValueError):
                    rec[key] = [str(rec[key])]
            out.append(rec)
        return out

    def count(self) -> int:
        con = self._read()
        try:
            return int(con.execute("SELECT count(*) FROM audit_record").fetchone()[0])
        finally:
            con.close()

    def verify(self) -> Verification:
        """Check the whole trail: the append-only triggers are in place, sequence numbers run 1, 2, 3 … with
        no gap, each record's hash is that of its own fields and the previous hash, and no record was removed
        from the end (SQLite's own counter of the highest number ever given)."""
        result = Verification(self.path)
        con = self._read()
        try:
            missing = set(TRIGGERS) - self._triggers(con)
            for name in sorted(missing):
                result.problems.append(f"the append-only trigger {name} is missing")
            prev, expected = GENESIS, 1
            cursor = con.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_record ORDER BY seq")
            for row in cursor:
                rec = dict(zip(COLUMNS, row, strict=True))
                seq = rec["seq"]
                if seq != expected:
                    gap = f"{expected}–{seq - 1}" if seq - 1 > expected else f"{expected}"
                    result.problems.append(f"record(s) {gap} missing (removed)")
                if rec["prev_hash"] != prev:
                    result.problems.append(
                        f"record {seq}: does not follow the record before it (chain broken)"
                    )
                fields = [rec[c] for c in COLUMNS[1:-2]]
                if not all(isinstance(v, str) for v in fields) or rec["hash"] != _digest(
                    seq, *fields, rec["prev_hash"]
                ):
                    result.problems.append(f"record {seq}: its content does not match its hash (altered)")
                prev, expected = rec["hash"], seq + 1
                result.records += 1
            result.head = prev
            counter = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit_record'").fetchone()
            if counter is not None and int(counter[0]) > expected - 1:
                result.problems.append(
                    f"records {expected}–{int(counter[0])} were written and are gone (removed from the end)"
                )
        except sqlite3.Error as exc:
            result.problems.append(f"the trail cannot be read completely ({exc})")
        finally:
            con.close()
        return result


# -- module-level API ---------------------------------------------------------------------------------
def record(
    action: str,
    *,
    user: str | None = None,
    client=None,
    episode=None,
    detail: str | None = None,
    remote: str | None = None,
    db=None,
) -> int:
    """Append one record to the trail of ``db`` (default: the served database, $ALLIANCE_DB); see
    ``AuditLog.record``. Raises ``AuditError`` when it cannot: refuse the action then."""
    return AuditLog.beside(db).record(
        action, user=user, client=client, episode=episode, detail=detail, remote=remote
    )


def records(db=None, **filters) -> list[dict]:
    """The records of ``db``'s trail (see ``AuditLog.records``)."""
    return AuditLog.beside(db).records(**filters)


def verify(db=None) -> Verification:
    """Check ``db``'s trail (see ``AuditLog.verify``)."""
    return AuditLog.beside(db).verify()


def file_digest(path) -> str:
    """SHA-256 of a file (an imported file is recorded with it), or '' when it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return ""
    return h.hexdigest()


# -- output ---------------------------------------------------------------------------------------------
#: The table's columns: key, title, width (0: the detail, as wide as asked).
SHOWN = [
    ("seq", "#", 6),
    ("at", "when (UTC)", 19),
    ("action", "action", 15),
    ("user", "user", 24),
    ("remote", "from", 22),
    ("clients", "client", 14),
    ("episodes", "episode", 12),
    ("detail", "detail", 0),
]


def _cell(rec: dict, key: str) -> str:
    value = rec[key]
    if isinstance(value, list):
        value = ", ".join(value)
    if key == "at":
        value = str(value).replace("T", " ")[:19]
    return clean(value, MAX_DETAIL)  # a trail edited outside the application may hold anything


def format_table(recs: Iterable[dict], detail_width: int = 60) -> str:
    """A plain-text table (one line per record, long cells cut with …); control characters are escaped."""
    lines = []
    header = []
    for _key, title, width in SHOWN:
        header.append(title.ljust(width or detail_width))
    lines.append("  ".join(header).rstrip())
    for rec in recs:
        cells = []
        for key, _title, width in SHOWN:
            text = _cell(rec, key)
            limit = width or detail_width
            if len(text) > limit:
                text = text[: limit - 1] + "…"
            cells.append(text.ljust(limit))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def write_csv(recs: Iterable[dict], out) -> int:
    """The records as CSV (UTF-8 with a byte-order mark, so a spreadsheet reads it): every cell that could
    start a formula is neutralised (``alliance.inert.csv_cell``). Returns the number of rows."""
    from alliance.inert import csv_cell

    n = 0
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([key for key, _title, _width in SHOWN] + ["hash"])
        for rec in recs:
            row = [rec["seq"]] + [csv_cell(_cell(rec, key)) for key, _t, _w in SHOWN[1:]] + [rec["hash"]]
            writer.writerow(row)
            n += 1
    tmp.replace(out)
    return n


def command(args) -> int:
    """``alliance audit``: print (or write as CSV) the records; ``--verify`` checks the chain. Exit status 0,
    1 when the trail has been tampered with, 2 when it cannot be read."""
    db = args.db
    trail = AuditLog.beside(db)
    if args.verify:
        try:
            result = trail.verify()
        except AuditError as exc:
            print(f"alliance audit: {exc}", file=sys.stderr)
            return 2
        for problem in result.problems:
            print(f"alliance audit: {trail.path}: {problem}", file=sys.stderr)
        if not result.ok:
            n = len(result.problems)
            print(f"alliance audit: {trail.path} has been tampered with ({n} problem(s))", file=sys.stderr)
            return 1
        print(f"{trail.path}: intact, {result.records:,} record(s); last hash {result.head}")
        return 0
    try:
        recs = trail.records(
            since=args.since,
            until=args.until,
            user=args.user,
            client=args.client,
            episode=getattr(args, "episode", None),
            action=args.action,
        )
    except AuditError as exc:
        print(f"alliance audit: {exc}", file=sys.stderr)
        return 2
    if args.csv:
        try:
            n = write_csv(recs, args.csv)
        except OSError as exc:
            print(f"alliance audit: cannot write {args.csv} ({exc})", file=sys.stderr)
            return 2
        print(f"Wrote {args.csv}: {n:,} record(s)")
        return 0
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    text = format_table(recs) + f"\n{len(recs):,} record(s) in {trail.path}"
    print(text.encode(encoding, "backslashreplace").decode(encoding))
    return 0


def command_check(db) -> str | None:
    """Before a command changes the database: why it is refused (its trail cannot be written), or None."""
    problem = AuditLog.beside(db).problem(db)
    return None if problem is None else f"refused: {problem}"


def command_record(action: str, db, detail: str, **fields) -> str | None:
    """Record what a command did; None, or the one line saying that the record could not be written."""
    try:
        record(action, db=db, detail=detail, **fields)
    except AuditError as exc:
        return f"done, but not recorded: {exc}"
    return None


__all__ = [
    "ACTIONS",
    "ANONYMOUS",
    "AUDIT_ENV",
    "AuditError",
    "AuditLog",
    "Verification",
    "audit_path",
    "clean",
    "command",
    "command_check",
    "command_record",
    "current_remote",
    "current_user",
    "file_digest",
    "format_table",
    "record",
    "records",
    "verify",
    "write_csv",
]
