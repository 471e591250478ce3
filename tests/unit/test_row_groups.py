"""The files Alliance writes keep row groups of WRITE_ROW_GROUP_SIZE rows (DuckDB's default is 122,880), so a
page's read of one episode decodes a small group: the demo, `alliance refresh` and `alliance import` all
write through ``connect_writer``."""

import datetime as dt
import shutil

import duckdb

from alliance import store
from alliance.db import WRITE_ROW_GROUP_SIZE, connect_writer, rewrite
from alliance.importer import import_csv


def _groups(path, table: str) -> list[int]:
    """Rows in each row group of ``table`` in the file at ``path``."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [
            n
            for (n,) in con.execute(
                "SELECT max(count) FROM pragma_storage_info($t) GROUP BY row_group_id ORDER BY row_group_id",
                {"t": table},
            ).fetchall()
        ]
    finally:
        con.close()


def test_a_new_file_is_written_in_small_row_groups(tmp_path):
    path = tmp_path / "new.duckdb"
    con = connect_writer(path)
    try:
        con.execute("CREATE TABLE t AS SELECT range AS i FROM range(40000)")
        # Cursors (the metrics store computes through them) read the same file by default.
        assert con.cursor().execute("SELECT count(*) FROM t").fetchone() == (40000,)
        con.execute("CHECKPOINT alliance_db")
    finally:
        con.close()
    assert _groups(path, "t") == [16384, 16384, 40000 - 2 * 16384]


def test_the_demo_writes_its_ratings_in_small_row_groups(demo_db):
    con = duckdb.connect(str(demo_db), read_only=True)
    n = con.execute("SELECT count(*) FROM rating").fetchone()[0]
    con.close()
    assert n > WRITE_ROW_GROUP_SIZE  # the fixture is big enough to need more than one group
    groups = _groups(demo_db, "rating")
    assert len(groups) >= 2 and max(groups) <= WRITE_ROW_GROUP_SIZE and sum(groups) == n


def test_an_import_writes_its_ratings_in_small_row_groups(tmp_path):
    # 1,800 clients with ten weekly ORS ratings each: 18,000 ratings, more than one group.
    start = dt.date(2026, 1, 5)
    lines = ["client_id,clinician_id,session_date,session_number,instrument,score,team_id,population"]
    for c in range(1800):
        for s in range(10):
            day = start + dt.timedelta(days=7 * s + c % 7)
            lines.append(f"C{c:05d},CL{c % 20:02d},{day},{s + 1},ORS,{15 + (c + s) % 20},T{c % 20 % 3},adult")
    csv = tmp_path / "ratings.csv"
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = tmp_path / "imported.duckdb"
    report = import_csv(csv, path)
    assert report.ok, report.summary()
    groups = _groups(path, "rating")
    assert sum(groups) == 18_000 and len(groups) == 2 and max(groups) == WRITE_ROW_GROUP_SIZE


def test_a_refresh_rewrites_the_store_in_small_row_groups(demo_db, tmp_path):
    # A file written with DuckDB's default row groups, as an earlier version of Alliance wrote it.
    old = tmp_path / "old.duckdb"
    con = duckdb.connect()
    con.execute(f"ATTACH '{demo_db}' AS src (READ_ONLY)")
    con.execute(f"ATTACH '{old}' AS dst")
    con.execute("COPY FROM DATABASE src TO dst")
    con.close()
    assert _groups(old, "metrics_ratings") == [sum(_groups(old, "metrics_ratings"))]  # one big group

    store.refresh(old)
    groups = _groups(old, "metrics_ratings")
    assert len(groups) >= 2 and max(groups) <= WRITE_ROW_GROUP_SIZE


def test_rewrite_writes_small_row_groups(demo_db, tmp_path):
    path = tmp_path / "copy.duckdb"
    shutil.copyfile(demo_db, path)
    with rewrite(path) as con:
        con.execute("CREATE TABLE extra AS SELECT range AS i FROM range(20000)")
    assert _groups(path, "extra") == [16384, 20000 - 16384]


def test_a_writer_spills_beside_its_file_not_into_the_working_folder(tmp_path, monkeypatch):
    """An in-memory DuckDB instance would spill into ``.tmp`` of whatever folder the command ran from."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    path = tmp_path / "w.duckdb"
    con = connect_writer(path)
    try:
        assert con.execute("SELECT current_setting('temp_directory')").fetchone() == (f"{path}.tmp",)
        con.execute("SET enable_progress_bar = false")
        con.execute("SET memory_limit = '64MB'")
        con.execute("SET threads = 1")
        con.execute("SET preserve_insertion_order = false")
        con.execute(
            "CREATE TABLE big AS SELECT range AS i, md5(range::VARCHAR) AS h FROM range(2000000) ORDER BY h"
        )
        assert con.execute("SELECT count(*) FROM big").fetchone() == (2_000_000,)
    finally:
        con.close()
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.duckdb", "work"]  # the spill folder is gone


def test_a_writer_takes_a_path_with_a_quote(tmp_path):
    path = tmp_path / "o'brien's service.duckdb"
    con = connect_writer(path)
    try:
        con.execute("CREATE TABLE t AS SELECT 1 AS i")
    finally:
        con.close()
    assert _groups(path, "t") == [1]
