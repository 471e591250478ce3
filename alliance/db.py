"""The query layer: named SQL files in ``queries/``, run with bound parameters on a read-only connection.

One read-only DuckDB connection per process and database file; each query runs on a fresh cursor, so the
layer is safe under ``panel serve --num-threads``. Parameters are always bound, never formatted into SQL.

A database file is never changed in place while it is served: ``alliance import`` and ``alliance refresh``
write a complete new file beside it and swap it in with ``os.replace`` (:func:`rewrite`). ``open_database``
notices a new file by its identity (device, inode, size, modification time) at every call and opens the new
version; whoever still holds the old :class:`Database` keeps reading the old file until they let it go. Each
file is attached read-only to a private in-memory DuckDB instance, because DuckDB hands a second connection
to the same path the instance already open, which would keep serving the old file.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import stat
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from pathlib import Path

import duckdb
import pandas as pd

try:
    import fcntl
except ImportError:  # not on POSIX: one writer at a time is then the user's to keep
    fcntl = None

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
    #: ``-- cache: per data version``: a small answer that every session of a process may share (pickers,
    #: the store's stamp, one episode's rows). An open file cannot change, so it is kept for as long as its
    #: ``Database`` is (at most 4,096 answers, the least recently used dropped first).
    cached: bool = False
    #: ``-- cache: per data version, one clinician``: one clinician's stored rows (a caseload's, up to a few
    #: MB), kept the same way in a cache of its own, bounded to ``CLINICIAN_ANSWERS`` answers.
    per_clinician: bool = False


#: What a ``-- cache:`` line may say (none: not kept).
CACHE_NOTES = (None, "per data version", "per data version, one clinician")
#: How many answers of ``-- cache: per data version`` queries a process keeps per open file.
SMALL_ANSWERS = 4096
#: How many answers of ``-- cache: per data version, one clinician`` queries a process keeps per open file:
#: the six stored tables of about 16 caseloads (a 175-episode caseload's six are about 2.8 MB).
CLINICIAN_ANSWERS = 96

_HEADER = re.compile(r"^--\s*(params|columns|scope|cache):\s*(.*)$", re.MULTILINE)


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
    cache_note = next((v.strip() for k, v in _HEADER.findall(sql) if k == "cache"), None)
    if cache_note not in CACHE_NOTES:
        raise ValueError(
            f"queries/{name}.sql: '-- cache:' may only say {' or '.join(map(repr, CACHE_NOTES[1:]))}"
        )
    q = NamedQuery(
        name,
        sql,
        _header_list(sql, "params"),
        _header_list(sql, "columns"),
        first,
        scope_note,
        cache_note is not None,
        cache_note == "per data version, one clinician",
    )
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


#: DuckDB must never fetch or load an extension because of what a file looks like.
DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
#: The name the database file is attached under in its reader's private DuckDB instance.
CATALOG = "alliance_db"

#: Rows per row group in the files Alliance writes (DuckDB's default is 122,880). The client page reads an
#: episode's ratings and its clinician's stored rows from tables kept in clinician order; DuckDB skips the
#: row groups whose zone maps cannot hold them but decodes the whole of one that can, so smaller groups make
#: those reads about half as costly (measured in docs/performance.md). The service-wide scans are not
#: measurably slower.
WRITE_ROW_GROUP_SIZE = 16_384


def _path_literal(path: Path | str) -> str:
    """A file path as an SQL string literal (``ATTACH`` takes no bound parameter)."""
    return "'" + str(path).replace("'", "''") + "'"


def connect_writer(path: Path | str) -> duckdb.DuckDBPyConnection:
    """A writable connection on the DuckDB file at ``path`` (created when missing), writing row groups of
    ``WRITE_ROW_GROUP_SIZE`` rows. DuckDB takes the row group size only as an option of ``ATTACH``, so the
    file is attached (as ``CATALOG``, as readers attach it) in a private in-memory instance and made the
    default database of the connection and of its cursors (``_Attached``); statements act on it as on a
    directly opened file (``CHECKPOINT`` needs its name). What does not fit in memory spills beside the file,
    as DuckDB does for a file it opens itself (not into the working folder, as for an in-memory one)."""
    con = duckdb.connect(":memory:", config={**DUCKDB_CONFIG, "temp_directory": f"{path}.tmp"})
    try:
        con.execute(
            f"ATTACH {_path_literal(path)} AS {CATALOG} (TYPE DUCKDB, ROW_GROUP_SIZE {WRITE_ROW_GROUP_SIZE})"
        )
        con.execute(f"USE {CATALOG}")
    except BaseException:
        con.close()
        raise
    return _Attached(con)


#: The memory a server process lets each reader's DuckDB instance keep (``alliance.warmup`` sets it; the
#: environment variable ``ALLIANCE_DUCKDB_MEMORY`` overrides it). Without a limit DuckDB keeps every block of
#: the file it has read until 80 % of the machine's memory; the pages read little per request, so a small
#: cache costs them little (measured in docs/performance.md), and what does not fit spills to a private
#: temporary folder. The command line (import, refresh, metrics) keeps DuckDB's own limit.
SERVER_MEMORY_LIMIT = "128MB"
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)
_UNITS = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
#: Below this DuckDB cannot run the pages' queries at all.
MIN_MEMORY_BYTES = 32e6
_reader_config: dict[str, str] = {}


def limit_reader_memory(limit: str | None) -> None:
    """Cap the memory of every reader opened from now on (``None`` or ``""``: DuckDB's own limit). A limit
    that is not a size such as ``128MB`` or ``1GB``, or is under 32 MB, raises ``ValueError`` naming it: a
    server started with it stops at once with that message instead of failing every page later."""
    if limit:
        m = _MEMORY.match(limit.strip())
        if not m:
            raise ValueError(f"ALLIANCE_DUCKDB_MEMORY {limit!r} is not a size such as 128MB or 1GB")
        if float(m.group(1)) * _UNITS[m.group(2).lower()] < MIN_MEMORY_BYTES:
            raise ValueError(f"ALLIANCE_DUCKDB_MEMORY {limit!r} is too small: give at least 32MB")
    _reader_config.clear()
    if limit:
        import atexit
        import tempfile

        folder = tempfile.mkdtemp(prefix="alliance-duckdb-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _reader_config.update(memory_limit=limit.strip(), temp_directory=folder)


def _reader_settings() -> dict[str, str]:
    """The settings of a new reader: each its own spill folder inside the process's (a reader of an older
    version of the file may still be open beside it, and older DuckDB versions name spill files alike)."""
    if "temp_directory" not in _reader_config:
        return dict(_reader_config)
    import tempfile

    return {**_reader_config, "temp_directory": tempfile.mkdtemp(dir=_reader_config["temp_directory"])}


def limit_server_memory() -> None:
    """The server processes' limit: ``$ALLIANCE_DUCKDB_MEMORY``, else :data:`SERVER_MEMORY_LIMIT`."""
    limit_reader_memory(os.environ.get("ALLIANCE_DUCKDB_MEMORY", SERVER_MEMORY_LIMIT))


def file_identity(path: Path | str) -> tuple[int, int, int, int] | None:
    """(device, inode, size, modification time in ns) of the file at ``path``, or None when there is none.
    A replaced, truncated or rewritten file has another identity."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def _damaged(exc: BaseException) -> bool:
    """True for DuckDB errors that mean the file cannot be read (damaged, truncated), not a bad query."""
    text = str(exc).casefold()
    return isinstance(exc, duckdb.IOException | duckdb.InternalException | duckdb.FatalException) or any(
        w in text for w in ("corrupt", "checksum", "invalidated", "not a valid duckdb", "could not read")
    )


class Database:
    """A read-only Alliance database file (the version of the file that was there when it was opened)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.broken = False  # set when a read found the file damaged: open_database then tries again
        # The identity is read before the file is opened: a file replaced in between is noticed next time.
        self.identity = file_identity(self.path)
        if self.identity is None:
            raise DatabaseError(
                f"Database file {self.path} not found. Build the demo with `make serve` (or "
                "`alliance demo --out data/demo.duckdb`), or point ALLIANCE_DB at your own database."
            )
        if not stat.S_ISREG(os.stat(self.path).st_mode):
            raise DatabaseError(f"Database file {self.path} is not a file (a folder?); give a DuckDB file.")
        con = duckdb.connect(":memory:", config={**DUCKDB_CONFIG, **_reader_settings()})
        try:
            con.execute(f"ATTACH {_path_literal(self.path)} AS {CATALOG} (READ_ONLY, TYPE DUCKDB)")
            con.execute(f"USE {CATALOG}")
        except duckdb.Error as exc:
            con.close()
            if "checksum" in str(exc).casefold() or "corrupt" in str(exc).casefold():
                raise DatabaseError(self._damage_message(exc)) from None
            raise DatabaseError(
                f"Database file {self.path} cannot be opened ({_first_line(exc)}). Is it a DuckDB file, "
                "and is no other program writing to it?"
            ) from None
        self._con = _Attached(con)
        self._lock = threading.Lock()
        try:
            check_schema(self._con, self.path)
        except SchemaError as exc:
            con.close()
            raise DatabaseError(str(exc)) from None
        except duckdb.Error as exc:
            con.close()
            raise DatabaseError(self._damage_message(exc)) from None

    @classmethod
    def on_connection(cls, con: duckdb.DuckDBPyConnection, path: Path | str) -> Database:
        """A Database over an open (writable) connection: the metrics store computes with it while writing."""
        db = cls.__new__(cls)
        db.path, db._con, db._lock = Path(path), con, threading.Lock()
        db.broken, db.identity = False, None
        return db

    def _damage_message(self, exc: BaseException) -> str:
        return (
            f"Database file {self.path} is damaged or incomplete and cannot be read ({_first_line(exc)}). "
            "Restore it from a copy, or rebuild it with `alliance import` (or `alliance demo`)."
        )

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:  # creating a cursor touches the shared connection; running it does not
            return self._con.cursor()

    @cached_property
    def data_version(self) -> str:
        """Fingerprint of the data (``data_version``); a file open read-only cannot change while open."""
        cur = self._cursor()
        try:
            version = data_version(cur)
        except duckdb.Error as exc:
            if not _damaged(exc):
                raise
            self.broken = True
            raise DatabaseError(self._damage_message(exc)) from None
        finally:
            cur.close()
        _versions[(str(self.path.resolve()), version)] = self
        return version

    def query(self, name: str, **params: object) -> pd.DataFrame:
        """Run ``queries/<name>.sql`` with the given bound parameters; returns a tidy frame.

        A file found damaged while reading raises :class:`DatabaseError` (the page shows it)."""
        q = load_query(name)
        missing = [p for p in q.params if p not in params]
        extra = [p for p in params if p not in q.params]
        if missing or extra:
            raise TypeError(f"query {name}: missing parameters {missing}, unexpected {extra}")
        if q.cached and self.identity is not None:  # a read-only file; never a connection being written
            frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items()))
            run = self._clinician_run if q.per_clinician else self._cached_run
            return run(name, frozen).copy()  # a copy: the kept frame is shared
        return self._run(q, params)

    @cached_property
    def _cached_run(self) -> Callable[[str, tuple], pd.DataFrame]:
        """``query`` of a ``-- cache: per data version`` query, kept for this open version of the file
        (bounded; a new version of the file is a new ``Database``, so it never answers from an old one)."""
        return _kept_answers(self, SMALL_ANSWERS)

    @cached_property
    def _clinician_run(self) -> Callable[[str, tuple], pd.DataFrame]:
        """``query`` of a ``-- cache: per data version, one clinician`` query: kept as ``_cached_run``'s, in a
        cache of its own bounded to ``CLINICIAN_ANSWERS`` (a caseload's rows are larger than a picker's)."""
        return _kept_answers(self, CLINICIAN_ANSWERS)

    def _run(self, q: NamedQuery, params: dict) -> pd.DataFrame:
        cur = self._cursor()
        try:
            return cur.execute(q.sql, params).df()
        except duckdb.Error as exc:
            if not _damaged(exc):
                raise
            self.broken = True
            raise DatabaseError(self._damage_message(exc)) from None
        finally:
            cur.close()

    def close(self) -> None:
        """Close the connection (tests, and servers that swap database files)."""
        self._con.close()


def _kept_answers(db: Database, maxsize: int) -> Callable[[str, tuple], pd.DataFrame]:
    """``db._run`` of a named query with frozen parameters, its answers kept (at most ``maxsize``, the least
    recently used dropped first)."""
    database = weakref.ref(db)  # no cycle through the cache: an old version is freed when let go

    @lru_cache(maxsize=maxsize)
    def run(name: str, frozen: tuple) -> pd.DataFrame:
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in frozen}
        return database()._run(load_query(name), params)

    return run


class _Attached:
    """The connection of a private in-memory DuckDB instance holding the file attached (read-only for a
    reader, writable for ``connect_writer``): every cursor uses the attached file by default (a new cursor
    starts in the instance's own empty catalog)."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self._con = con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur = self._con.cursor()
        cur.execute(f"USE {CATALOG}")
        return cur

    def __getattr__(self, name: str):
        return getattr(self._con, name)


_open: dict[Path, Database] = {}
_open_lock = threading.Lock()
#: (resolved path, data version) → an open Database of that version, while anyone holds it.
_versions: weakref.WeakValueDictionary[tuple[str, str], Database] = weakref.WeakValueDictionary()
#: Called with the path whenever open_database opens a new version of a file (cached reads are dropped).
_listeners: list[Callable[[Path], None]] = []


def on_new_version(listener: Callable[[Path], None]) -> None:
    """Call ``listener(path)`` whenever ``open_database`` finds a new version of a database file."""
    if listener not in _listeners:
        _listeners.append(listener)


def open_database(path: Path | str | None = None) -> Database:
    """The process-wide read-only connection to ``path`` (default: $ALLIANCE_DB or the demo).

    Each call compares the file's identity with the open version's (one ``os.stat``); a file replaced,
    truncated or rewritten since is opened anew, and a vanished or damaged one raises :class:`DatabaseError`.
    The old version is not closed: sessions that hold it go on reading it until they let it go."""
    key = Path(path or config.database_path()).resolve()
    identity = file_identity(key)
    with _open_lock:
        db = _open.get(key)
        if db is not None and not db.broken and db.identity == identity:
            return db
        if db is not None:
            del _open[key]
        new = Database(key)  # raises DatabaseError: missing, not a database, damaged
        _open[key] = new
    if db is not None:
        for listener in list(_listeners):
            listener(key)
    return new


def database_of_version(path: Path | str, version: str) -> Database:
    """The open Database of ``path`` whose data version is ``version`` (a session may still show an older file
    than the current one), else the current one."""
    db = _versions.get((str(Path(path).resolve()), version))
    return db if db is not None else open_database(path)


def forget_databases() -> None:
    """Close every cached connection (tests)."""
    with _open_lock:
        for db in _open.values():
            db.close()
        _open.clear()


# -- writing a new version of a file: built beside it, swapped in whole --------------------------------------
def temporary_path(path: Path, kind: str) -> Path:
    """A hidden name beside ``path`` for a file being built: ``.NAME.<pid>-<random>.<kind>``."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(3)}.{kind}")


def remove_stale_temporaries(path: Path) -> None:
    """Remove what a killed import or refresh left beside ``path`` (files whose process is gone)."""
    for tmp in path.parent.glob(f".{path.name}.*-*.*"):
        if tmp.suffix not in (".importing", ".rewriting", ".wal"):
            continue
        pid = tmp.name.removeprefix(f".{path.name}.").split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the file system allows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """One writer at a time per database file (``alliance import``, ``alliance refresh``): an advisory lock on
    the file itself (``flock``, which DuckDB's own locks do not touch). Readers never take it; a second writer
    is refused with a clear message. A file swapped in while waiting is locked anew, so the holder always
    has the file now at ``path``."""
    path = Path(os.path.realpath(path))
    if fcntl is None:
        yield
        return
    while True:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise DatabaseError(f"{path} cannot be opened ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DatabaseError(
                f"{path} is being written by another `alliance import` or `alliance refresh`; "
                "wait for it to finish and try again"
            ) from None
        st = os.fstat(fd)
        if file_identity(path) is not None and os.stat(path).st_ino == st.st_ino:
            break
        os.close(fd)  # replaced by the writer that held the lock: lock the new file
    try:
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def rewrite(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writable connection on a complete copy of the database file at ``path``, made beside it. When the
    block ends normally the copy is checkpointed, synced and swapped in with ``os.replace`` (atomic: a reader
    opens the old file or the new one, never a mix); when it raises, or the process dies, ``path`` is left as
    it was. Running servers notice the new file (``open_database``). Hold :func:`writer_lock` around it.
    A symbolic link is followed: the file it points to is replaced, and the link stays."""
    path = Path(os.path.realpath(path))
    remove_stale_temporaries(path)
    tmp = temporary_path(path, "rewriting")
    wal = Path(f"{path}.wal")
    try:
        shutil.copyfile(path, tmp)
        if wal.exists():  # a log a writer left unapplied: the copy applies it too
            shutil.copyfile(wal, f"{tmp}.wal")
        shutil.copymode(path, tmp)
        con = connect_writer(tmp)
        try:
            con.execute("SET enable_progress_bar = false")  # the command shows its own progress
            yield con
            con.execute(f"CHECKPOINT {CATALOG}")
        finally:
            con.close()
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        wal.unlink(missing_ok=True)  # its content is in the new file
        fsync_folder(path.parent)
    finally:
        for p in (tmp, Path(f"{tmp}.wal")):
            p.unlink(missing_ok=True)
