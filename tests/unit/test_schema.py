"""The DuckDB schema: keys and range checks are enforced by the database itself, and the version is
recorded and checked."""

import duckdb
import pytest

from alliance import config
from alliance.db import Database, DatabaseError
from alliance.schema import create_schema


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "s.duckdb"))
    create_schema(c)
    c.execute("INSERT INTO team VALUES ('T1', 'North', 'CL01')")
    c.execute("INSERT INTO clinician VALUES ('CL01', 'T1')")
    c.execute("INSERT INTO client VALUES ('C-1')")
    c.execute("INSERT INTO episode VALUES ('E1', 'C-1', 'CL01', 'adult', DATE '2026-01-01', NULL, NULL)")
    c.execute("INSERT INTO session VALUES ('E1', 1, DATE '2026-01-01')")
    yield c
    c.close()


def test_schema_version_is_recorded(con):
    assert con.execute("SELECT value FROM alliance_meta WHERE key='schema_version'").fetchone()[0] == (
        config.SCHEMA_VERSION
    )


def test_registry_is_loaded_with_sources(con):
    assert con.execute("SELECT count(*) FROM instrument").fetchone()[0] == 7
    assert con.execute("SELECT count(*) FROM instrument_norm WHERE source IS NULL").fetchone()[0] == 0
    assert (
        con.execute(
            "SELECT subscale FROM instrument_item WHERE instrument='WAI-SR' AND item_no=3"
        ).fetchone()[0]
        == "Bond"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO session VALUES ('E1', 0, DATE '2026-01-02')",  # positions start at 1
        "INSERT INTO session VALUES ('E1', 1, DATE '2026-01-02')",  # duplicate key
        "INSERT INTO session VALUES ('E9', 2, DATE '2026-01-02')",  # unknown episode
        "INSERT INTO rating VALUES ('E1', 1, 'NOPE', 10)",  # unknown instrument
        "INSERT INTO rating VALUES ('E1', 2, 'ORS', 10)",  # no such session
        "INSERT INTO rating VALUES ('E1', 1, 'ORS', -1)",  # negative score
        "INSERT INTO episode VALUES ('E2', 'C-1', 'CL01', 'elderly', DATE '2026-01-01', NULL, NULL)",
        "INSERT INTO episode VALUES ('E2', 'C-1', 'CL01', 'adult', DATE '2026-01-01', DATE '2025-01-01', NULL)",
        "INSERT INTO episode VALUES ('E2', 'C-1', 'CL01', 'adult', DATE '2026-01-01', NULL, 'dropout')",
        "INSERT INTO instrument_norm (instrument, population, source, reliability) "
        "VALUES ('ORS', 'adult', 'x', 1.5)",
    ],
)
def test_constraints_are_enforced_by_duckdb(con, sql):
    with pytest.raises(duckdb.ConstraintException):
        con.execute(sql)


def test_missing_file_gives_a_clear_message(tmp_path):
    with pytest.raises(DatabaseError, match="not found.*ALLIANCE_DB"):
        Database(tmp_path / "nope.duckdb")


def test_a_non_duckdb_file_gives_a_clear_message(tmp_path):
    bad = tmp_path / "notes.duckdb"
    bad.write_text("this is not a database")
    with pytest.raises(DatabaseError, match="cannot be opened"):
        Database(bad)


def test_a_foreign_duckdb_file_is_refused(tmp_path):
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).execute("CREATE TABLE x (a INT)").close()
    with pytest.raises(DatabaseError, match="not an Alliance database"):
        Database(other)


def test_another_schema_version_is_refused(tmp_path):
    path = tmp_path / "old.duckdb"
    c = duckdb.connect(str(path))
    create_schema(c)
    c.execute("UPDATE alliance_meta SET value = '0' WHERE key = 'schema_version'")
    c.close()
    with pytest.raises(DatabaseError, match="schema version '0'"):
        Database(path)


def test_demo_truth_stays_out_of_the_production_schema(tmp_path):
    """planted_events is the demo generator's answer key: an imported or empty database never has it."""
    import duckdb

    from alliance.schema import TABLES, create_schema

    con = duckdb.connect(str(tmp_path / "plain.duckdb"))
    create_schema(con)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    con.close()
    assert "planted_events" not in tables and "planted_events" not in TABLES
    assert set(TABLES) <= tables
