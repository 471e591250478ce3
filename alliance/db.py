"""The query layer: named SQL files in ``queries/``, run with bound parameters on a read-only connection.

One read-only DuckDB connection per process and database file; each query runs on a fresh cursor, so the
layer is safe under ``panel serve --num-threads``. Parameters are always bound, never formatted into SQL.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import duckdb
import pandas as pd

from alliance import config
from alliance.schema import TABLES as SCHEMA_TABLES
from alliance.schema import SchemaError, check_schema


class DatabaseError(RuntimeError):
    """The database cannot be used; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class NamedQuery:
    """One ``queries/<name>.sql`` file with the parameters and output columns its header documents."""

    name: str
    sql: str
    params: tuple[str, ...]
    columns: tuple[str, ...]
    description: str
    scope_note: str | None = None  # why a query takes no viewer scope (registry, service-wide aggregate)


_HEADER = re.compile(r"^--\s*(params|columns|scope):\s*(.*)$", re.MULTILINE)


def _header_list(sql: str, key: str) -> tuple[str, ...]:
    for k, value in _HEADER.findall(sql):
        if k == key:
            return tuple(v.strip() for v in value.split(",") if v.strip() and v.strip() != "none")
    raise ValueError(f"query header lacks a '-- {key}:' line")


@cache
def load_query(name: str) -> NamedQuery:
    """Read and parse ``queries/<name>.sql``."""
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"invalid query name {name!r}")
    path = config.QUERIES_DIR / f"{name}.sql"
    sql = path.read_text(encoding="utf-8")
    first = next((ln[2:].strip() for ln in sql.splitlines() if ln.startswith("--")), "")
    scope_note = next((v.strip() for k, v in _HEADER.findall(sql) if k == "scope"), None)
    q = NamedQuery(name, sql, _header_list(sql, "params"), _header_list(sql, "columns"), first, scope_note)
    used = set(re.findall(r"\$([a-z_][a-z0-9_]*)", _strip_comments(sql)))
    if used != set(q.params):
        raise ValueError(f"queries/{name}.sql: header params {sorted(q.params)} but SQL uses {sorted(used)}")
    return q


def _strip_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def query_names() -> list[str]:
    """Every named query shipped in ``queries/``."""
    return sorted(p.stem for p in config.QUERIES_DIR.glob("*.sql"))


# The data every clinical metric depends on. A content fingerprint per table (row count and an order-free
# XOR of row hashes): any inserted, deleted or changed row changes it.
_VERSIONED = tuple(t for t in SCHEMA_TABLES if t != "alliance_meta")  # data_as_of is read on its own


def data_version(con: duckdb.DuckDBPyConnection) -> str:
    """A fingerprint of the ratings and everything the metrics read (registry, episodes, data date)."""
    parts = []
    for table in _VERSIONED:
        n, h = con.execute(f"SELECT count(*), coalesce(bit_xor(hash(t)), 0) FROM {table} t").fetchone()
        parts.append(f"{table}:{n}:{h}")
    row = con.execute("SELECT value FROM alliance_meta WHERE key = 'data_as_of'").fetchone()
    parts.append(f"data_as_of:{row[0] if row else ''}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


class Database:
    """A read-only Alliance database file."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if not self.path.exists():
            raise DatabaseError(
                f"Database file {self.path} not found. Build the demo with `make serve` (or "
                "`alliance demo --out data/demo.duckdb`), or point ALLIANCE_DB at your own database."
            )
        try:
            self._con = duckdb.connect(str(self.path), read_only=True)
        except duckdb.Error as exc:
            raise DatabaseError(
                f"Database file {self.path} cannot be opened ({exc}). Is it a DuckDB file, and is no other "
                "program writing to it?"
            ) from None
        try:
            check_schema(self._con, self.path)
        except SchemaError as exc:
            self._con.close()
            raise DatabaseError(str(exc)) from None
        self._lock = threading.Lock()

    @classmethod
    def on_connection(cls, con: duckdb.DuckDBPyConnection, path: Path | str) -> Database:
        """A Database over an open (writable) connection: the metrics store computes with it while writing."""
        db = cls.__new__(cls)
        db.path, db._con, db._lock = Path(path), con, threading.Lock()
        return db

    @cached_property
    def data_version(self) -> str:
        """Fingerprint of the data (``data_version``); a file open read-only cannot change while open."""
        with self._lock:
            cur = self._con.cursor()
        try:
            return data_version(cur)
        finally:
            cur.close()

    def query(self, name: str, **params: object) -> pd.DataFrame:
        """Run ``queries/<name>.sql`` with the given bound parameters; returns a tidy frame."""
        q = load_query(name)
        missing = [p for p in q.params if p not in params]
        extra = [p for p in params if p not in q.params]
        if missing or extra:
            raise TypeError(f"query {name}: missing parameters {missing}, unexpected {extra}")
        with self._lock:  # creating a cursor touches the shared connection; running it does not
            cur = self._con.cursor()
        try:
            return cur.execute(q.sql, params).df()
        finally:
            cur.close()

    def close(self) -> None:
        """Close the connection (tests, and servers that swap database files)."""
        self._con.close()


_open: dict[Path, Database] = {}
_open_lock = threading.Lock()


def open_database(path: Path | str | None = None) -> Database:
    """The process-wide read-only connection to ``path`` (default: $ALLIANCE_DB or the demo)."""
    key = Path(path or config.database_path()).resolve()
    with _open_lock:
        if key not in _open:
            _open[key] = Database(key)
        return _open[key]


def forget_databases() -> None:
    """Close every cached connection (tests)."""
    with _open_lock:
        for db in _open.values():
            db.close()
        _open.clear()
