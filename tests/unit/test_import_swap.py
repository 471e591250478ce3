"""A database file is replaced whole, never changed in place, and a process that reads it follows: an import
or a refresh builds a copy beside the file and swaps it in; ``open_database`` notices the new file by its
identity and opens it, while whoever holds the old version keeps reading it; a damaged file is a
``DatabaseError`` with a clear message, never a DuckDB traceback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from alliance.db import DatabaseError, database_of_version, open_database, rewrite, writer_lock
from alliance.importer import import_csv
from alliance.store import read_stamp, refresh

HEADER = "client_id,clinician_id,session_date,session_number,instrument,score"


@pytest.fixture
def db(tmp_path) -> Path:
    src = tmp_path / "in.csv"
    src.write_text(HEADER + "\nC-1,CL01,2026-01-05,1,ORS,18\nC-1,CL01,2026-01-12,2,ORS,21\n")
    path = tmp_path / "service.duckdb"
    assert import_csv(src, path).ok
    return path


def _add(db: Path, tmp_path: Path, row: str) -> None:
    src = tmp_path / "more.csv"
    src.write_text(HEADER + "\n" + row + "\n")
    report = import_csv(src, db)
    assert report.ok and report.written, report.summary()


def _ratings(database) -> int:
    from alliance.scope import Scope
    from alliance.service import Service

    return Service(database, Scope.full_access()).overview().n_ratings


def test_open_database_follows_a_swapped_in_file_and_the_old_version_stays_readable(db, tmp_path):
    old = open_database(db)
    assert open_database(db) is old  # unchanged file: the same connection
    version = old.data_version
    _add(db, tmp_path, "C-2,CL01,2026-01-06,1,ORS,30")
    new = open_database(db)
    assert new is not old and new.data_version != version
    assert (_ratings(old), _ratings(new)) == (2, 3)  # the holder of the old version still reads it whole
    assert database_of_version(db, version) is old
    assert database_of_version(db, new.data_version) is new


def test_a_refresh_swaps_in_a_new_file_and_a_failed_one_leaves_the_file(db, tmp_path):
    inode = db.stat().st_ino
    before = read_stamp(open_database(db))
    stamp = refresh(db)
    assert db.stat().st_ino != inode and stamp.data_version == before.data_version
    after = open_database(db)
    assert read_stamp(after) is not None
    digest = db.read_bytes()
    with pytest.raises(RuntimeError, match="stop here"), rewrite(db) as con:
        con.execute("DELETE FROM rating")
        raise RuntimeError("stop here")
    assert db.read_bytes() == digest
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_vanished_file_is_a_database_error_and_its_return_is_noticed(db, tmp_path):
    open_database(db)
    os.replace(db, tmp_path / "away.duckdb")
    with pytest.raises(DatabaseError, match="not found"):
        open_database(db)
    os.replace(tmp_path / "away.duckdb", db)
    assert _ratings(open_database(db)) == 2


def test_a_damaged_file_is_a_clear_database_error(tmp_path):
    from alliance.demo import write_demo

    path = tmp_path / "demo.duckdb"
    write_demo(path, n_episodes=60, seed=3)
    size = path.stat().st_size
    damaged = tmp_path / "damaged.duckdb"
    shutil.copy(path, damaged)
    with damaged.open("r+b") as f:
        for pos in range(12288 + 262144, size, 262144):
            f.seek(pos + 8)
            f.write(b"\x5a" * 64)
    with pytest.raises(DatabaseError, match="is damaged or incomplete and cannot be read .*checksum"):
        database = open_database(damaged)
        database.data_version  # noqa: B018 — reads every table
    truncated = tmp_path / "truncated.duckdb"
    truncated.write_bytes(path.read_bytes()[: size // 3])
    with pytest.raises(DatabaseError):
        open_database(truncated).data_version  # noqa: B018


def test_a_sqlite_or_text_file_is_refused_without_fetching_an_extension(tmp_path):
    import sqlite3

    lite = tmp_path / "lite.duckdb"
    sqlite3.connect(lite).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(DatabaseError, match="cannot be opened .*not a valid DuckDB database file"):
        open_database(lite)
    folder = tmp_path / "folder.duckdb"
    folder.mkdir()
    with pytest.raises(DatabaseError, match="is not a file"):
        open_database(folder)


def test_the_writer_lock_follows_a_file_swapped_in_while_waiting(db):
    with writer_lock(db):
        with pytest.raises(DatabaseError, match="is being written by another"), writer_lock(db):
            pass
    with writer_lock(db), rewrite(db) as con:
        con.execute("DELETE FROM rating_item")
    with writer_lock(db):  # the new file is free
        pass
    assert duckdb.connect(str(db), read_only=True).execute("SELECT count(*) FROM rating").fetchone()[0] == 2


def test_a_killed_import_into_an_existing_file_leaves_it_whole(db, tmp_path):
    """kill -9 while the copy is being written: the database keeps every byte; the next import removes the
    copy the killed one left and imports."""
    import hashlib
    import subprocess
    import sys

    before = hashlib.sha256(db.read_bytes()).hexdigest()
    src = tmp_path / "more.csv"
    src.write_text(HEADER + "\nC-2,CL01,2026-01-06,1,ORS,30\n")
    script = f"""
import os, signal
import alliance.importer as imp
real = imp._apply
def dying(con, plan, registry):
    real(con, plan, registry)
    os.kill(os.getpid(), signal.SIGKILL)
imp._apply = dying
imp.import_csv({str(src)!r}, {str(db)!r})
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == -9
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert [p for p in tmp_path.iterdir() if p.name.endswith(".rewriting")]  # the killed import's copy…
    _add(db, tmp_path, "C-2,CL01,2026-01-06,1,ORS,30")
    assert not [p for p in tmp_path.iterdir() if ".rewriting" in p.name]  # …removed by the next one
    assert _ratings(open_database(db)) == 3


def test_an_import_through_a_symbolic_link_replaces_the_file_and_keeps_the_link(db, tmp_path):
    link = tmp_path / "current.duckdb"
    link.symlink_to(db)
    assert _ratings(open_database(link)) == 2
    _add(link, tmp_path, "C-2,CL01,2026-01-06,1,ORS,30")
    assert link.is_symlink() and link.resolve() == db.resolve()
    assert _ratings(open_database(link)) == 3 and _ratings(open_database(db)) == 3
