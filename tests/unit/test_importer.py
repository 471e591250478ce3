"""`alliance import`: valid files land whole; a file with any bad row is reported row by row and nothing
is written (neither a new file nor a change to an existing database)."""

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from alliance.importer import import_csv

HEADER = "client_id,clinician_id,session_date,session_number,instrument,score"


def write(tmp_path: Path, body: str, name="in.csv", header=HEADER) -> Path:
    path = tmp_path / name
    path.write_text(header + "\n" + body.strip() + "\n")
    return path


def counts(db: Path) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("episode", "session", "rating", "rating_item")
        }
    finally:
        con.close()


def test_valid_file_is_imported_with_codes_matched_case_insensitively(tmp_path):
    src = write(
        tmp_path,
        """
C-1,CL01,2026-01-05,1,ors,18.5
C-1,CL01,2026-01-05,1,srs,35
C-1,CL01,2026-01-12,2,Ors,21
C-2,CL02,2026-02-01,1,phq-9,16
""",
    )
    db = tmp_path / "out.duckdb"
    report = import_csv(src, db)
    assert report.ok, report.summary()
    con = duckdb.connect(str(db), read_only=True)
    assert sorted(r[0] for r in con.execute("SELECT DISTINCT instrument FROM rating").fetchall()) == [
        "ORS",
        "PHQ-9",
        "SRS",
    ]
    # Without episode_id each client's rows form one episode.
    assert con.execute("SELECT count(*) FROM episode").fetchone()[0] == 2
    assert (
        con.execute("SELECT start_date::VARCHAR FROM episode WHERE client_id='C-1'").fetchone()[0]
        == "2026-01-05"
    )
    con.close()


def test_a_missing_session_number_is_a_gap_not_a_renumbering(tmp_path):
    src = write(tmp_path, "C-1,CL01,2026-01-05,1,ORS,18\nC-1,CL01,2026-01-26,4,ORS,25")
    db = tmp_path / "out.duckdb"
    assert import_csv(src, db).ok
    con = duckdb.connect(str(db), read_only=True)
    assert [r[0] for r in con.execute("SELECT session_number FROM session ORDER BY 1").fetchall()] == [1, 4]
    con.close()


def test_bad_rows_are_reported_with_row_number_and_reason_and_nothing_is_written(tmp_path):
    src = write(
        tmp_path,
        """
C-1,CL01,2026-01-05,1,ORS,18
C-1,CL01,2026-01-12,2,ORS,41
C-1,CL01,2026-01-19,3,BDI,20
C-1,CL01,2026-01-26,4,PHQ-9,
C-1,CL01,2026-02-30,5,ORS,20
C-1,CL01,2026-02-09,0,ORS,20
C-1,,2026-02-16,6,ORS,20
C-1,CL01,2026-01-05,1,ORS,19
""",
    )
    db = tmp_path / "out.duckdb"
    report = import_csv(src, db)
    assert not report.ok
    found = {(p.row, p.column) for p in report.problems}
    # Row numbers as a spreadsheet shows them: the header is row 1.
    assert found == {
        (3, "score"),
        (4, "instrument"),
        (5, "score"),
        (6, "session_date"),
        (7, "session_number"),
        (8, "clinician_id"),
        (9, "session_number"),
    }
    text = report.summary()
    assert "row 3: score: 41 is outside ORS's range 0–40" in text
    assert "unknown instrument 'BDI'" in text
    assert "row 5: score: missing value" in text
    assert "nothing was written" in text
    assert not db.exists()


def test_a_bad_file_leaves_an_existing_database_untouched(tmp_path):
    db = tmp_path / "out.duckdb"
    assert import_csv(write(tmp_path, "C-1,CL01,2026-01-05,1,ORS,18", "a.csv"), db).ok
    before = counts(db)
    bad = write(tmp_path, "C-9,CL01,2026-01-05,1,ORS,18\nC-9,CL01,2026-01-12,2,ORS,99", "b.csv")
    assert not import_csv(bad, db).ok
    assert counts(db) == before


def test_reimporting_the_same_file_changes_nothing_and_says_so(tmp_path):
    db = tmp_path / "out.duckdb"
    src = write(tmp_path, "C-1,CL01,2026-01-05,1,ORS,18")
    assert import_csv(src, db).ok
    before = db.read_bytes()
    report = import_csv(src, db)
    assert report.ok and not report.written
    assert "nothing to change" in report.summary()
    assert report.counts["ratings"] == {"inserted": 0, "updated": 0, "unchanged": 1}
    assert counts(db)["rating"] == 1
    assert db.read_bytes() == before  # not even opened for a write


def test_item_scores_are_checked_against_the_items_range_and_the_total(tmp_path):
    header = HEADER + ",item_1,item_2,item_3,item_4"
    src = write(
        tmp_path,
        """
C-1,CL01,2026-01-05,1,SRS,36,9,9,9,9
C-1,CL01,2026-01-12,2,SRS,36,9,9,9,10
C-1,CL01,2026-01-19,3,SRS,30,11,9,5,5
""",
        header=header,
    )
    report = import_csv(src, tmp_path / "x.duckdb")
    assert {(p.row, p.column) for p in report.problems} == {(3, "score"), (4, "item_1")}
    good = write(tmp_path, "C-1,CL01,2026-01-05,1,SRS,36.5,9,9.5,9,9", "g.csv", header=header)
    db = tmp_path / "g.duckdb"
    assert import_csv(good, db).ok
    assert counts(db)["rating_item"] == 4


def test_contradicting_rows_are_reported(tmp_path):
    src = write(
        tmp_path,
        """
C-1,CL01,2026-01-05,1,ORS,18
C-1,CL01,2026-01-06,1,SRS,35
C-1,CL01,2026-01-01,2,ORS,20
""",
    )
    report = import_csv(src, tmp_path / "x.duckdb")
    assert {(p.row, p.column) for p in report.problems} == {
        (3, "session_date"),
        (4, "session_date"),
    }


def test_missing_required_column_names_it(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("client_id,clinician_id,session_date,instrument,score\nC-1,CL01,2026-01-05,ORS,18\n")
    report = import_csv(src, tmp_path / "x.duckdb")
    assert "missing required column(s) session_number" in report.summary()


def test_optional_columns_episode_team_population_and_end(tmp_path):
    header = HEADER + ",episode_id,team_id,supervisor_id,population,end_date,end_reason"
    src = write(
        tmp_path,
        """
C-1,CL01,2025-01-05,1,ORS,18,EP-A,T1,CL01,child,2025-03-01,planned
C-1,CL01,2025-06-05,1,ORS,20,EP-B,T1,CL01,child,,
""",
        header=header,
    )
    db = tmp_path / "x.duckdb"
    assert import_csv(src, db).ok
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT episode_id, population, end_reason FROM episode ORDER BY 1").fetchall()
    assert rows == [("EP-A", "child", "planned"), ("EP-B", "child", None)]
    assert con.execute("SELECT supervisor_id FROM team").fetchone()[0] == "CL01"
    con.close()


def test_command_line_exit_codes(tmp_path):
    good = write(tmp_path, "C-1,CL01,2026-01-05,1,ORS,18", "good.csv")
    bad = write(tmp_path, "C-1,CL01,2026-01-05,1,ORS,50", "bad.csv")
    run = [sys.executable, "-m", "alliance.cli", "import"]
    ok = subprocess.run([*run, str(good), "--db", str(tmp_path / "a.duckdb")], capture_output=True, text=True)
    assert ok.returncode == 0 and "Imported" in ok.stdout
    no = subprocess.run([*run, str(bad), "--db", str(tmp_path / "b.duckdb")], capture_output=True, text=True)
    assert no.returncode == 1 and "row 2: score" in no.stderr


@pytest.mark.parametrize("content", ["", "\x00\x01garbage"])
def test_unreadable_files_get_a_message(tmp_path, content):
    src = tmp_path / "in.csv"
    src.write_text(content)
    report = import_csv(src, tmp_path / "x.duckdb")
    assert not report.ok and report.problems[0].row in (0, 1)


# -- incremental imports --------------------------------------------------------------------------------
FULL = HEADER + ",episode_id,team_id,supervisor_id,end_date,end_reason"


def rows(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_corrected_file_updates_exactly_what_changed(tmp_path):
    db = tmp_path / "out.duckdb"
    first = """
C-1,CL01,2026-01-05,1,ORS,18,E1,T1,S1,,
C-1,CL01,2026-01-12,2,ORS,20,E1,T1,S1,,
C-2,CL01,2026-01-06,1,ORS,25,E2,T1,S1,,
"""
    assert import_csv(write(tmp_path, first, "a.csv", FULL), db).ok
    # One score corrected, one session re-dated, one new session, one episode closed.
    second = """
C-1,CL01,2026-01-05,1,ORS,19,E1,T1,S1,,
C-1,CL01,2026-01-13,2,ORS,20,E1,T1,S1,,
C-1,CL01,2026-01-20,3,ORS,24,E1,T1,S1,,
C-2,CL01,2026-01-06,1,ORS,25,E2,T1,S1,2026-02-01,planned
"""
    src = write(tmp_path, second, "b.csv", FULL)
    dry = import_csv(src, db, dry_run=True)
    assert dry.ok and not dry.written
    assert rows(db, "SELECT score FROM rating WHERE episode_id='E1' AND session_number=1") == [(18.0,)]
    report = import_csv(src, db)
    assert report.ok and report.written
    assert report.counts == dry.counts  # a dry run reports what the import then does
    assert report.counts["ratings"] == {"inserted": 1, "updated": 1, "unchanged": 2}
    assert report.counts["sessions"] == {"inserted": 1, "updated": 1, "unchanged": 2}
    assert report.counts["episodes"] == {"inserted": 0, "updated": 1, "unchanged": 1}
    assert "Dry run, nothing written" in dry.summary() and "Imported" in report.summary()
    assert rows(
        db,
        "SELECT episode_id, session_number, session_date::VARCHAR, score FROM rating JOIN session USING (episode_id, session_number) ORDER BY 1, 2",
    ) == [
        ("E1", 1, "2026-01-05", 19.0),
        ("E1", 2, "2026-01-13", 20.0),
        ("E1", 3, "2026-01-20", 24.0),
        ("E2", 1, "2026-01-06", 25.0),
    ]
    assert rows(db, "SELECT end_date::VARCHAR, end_reason FROM episode WHERE episode_id='E2'") == [
        ("2026-02-01", "planned")
    ]
    # Nothing is ever deleted: a later file with only some rows leaves the others.
    assert import_csv(write(tmp_path, "C-1,CL01,2026-01-05,1,ORS,19,E1,T1,S1,,", "c.csv", FULL), db).ok
    assert counts(db)["rating"] == 4


def test_a_session_after_the_stored_end_needs_a_new_end(tmp_path):
    db = tmp_path / "out.duckdb"
    closed = "C-1,CL01,2026-01-05,1,ORS,18,E1,T1,S1,2026-01-05,planned"
    assert import_csv(write(tmp_path, closed, "a.csv", FULL), db).ok
    later = write(tmp_path, "C-1,CL01,2026-02-02,2,ORS,22,E1,T1,S1,,", "b.csv", FULL)
    report = import_csv(later, db)
    assert [str(p) for p in report.problems] == [
        "row 2: session_date: session 2 (2026-02-02) is after the end of episode E1 in the database "
        "(2026-01-05); give the episode's new end_date"
    ]
    reopened = write(tmp_path, "C-1,CL01,2026-02-02,2,ORS,22,E1,T1,S1,2026-02-02,planned", "c.csv", FULL)
    assert import_csv(reopened, db).ok


def test_an_episode_cannot_change_client_or_clinician(tmp_path):
    db = tmp_path / "out.duckdb"
    assert import_csv(write(tmp_path, "C-1,CL01,2026-01-05,1,ORS,18,E1,T1,S1,,", "a.csv", FULL), db).ok
    other = write(tmp_path, "C-9,CL02,2026-01-12,2,ORS,18,E1,T1,S1,,", "b.csv", FULL)
    found = {(p.row, p.column) for p in import_csv(other, db).problems}
    assert found == {(2, "client_id"), (2, "clinician_id")}


def test_a_clinician_moving_team_is_refused_a_new_supervisor_applied_and_reported(tmp_path):
    db = tmp_path / "out.duckdb"
    assert import_csv(write(tmp_path, "C-1,CL01,2026-01-05,1,ORS,18,E1,T1,S1,,", "a.csv", FULL), db).ok
    moved = write(tmp_path, "C-2,CL01,2026-02-05,1,ORS,18,E2,T2,S2,,", "b.csv", FULL)
    report = import_csv(moved, db)
    assert [(p.row, p.column) for p in report.problems] == [(2, "team_id")]
    assert (
        "clinician CL01 is in team T1 in the database; an import does not move a clinician"
        in report.summary()
    )
    supervisor = write(tmp_path, "C-3,CL02,2026-02-05,1,ORS,18,E3,T1,S9,,", "c.csv", FULL)
    report = import_csv(supervisor, db)
    assert report.ok, report.summary()
    assert "team T1's supervisor changes from S1 to S9." in report.summary()
    assert rows(db, "SELECT clinician_id, team_id FROM clinician ORDER BY 1") == [
        ("CL01", "T1"),
        ("CL02", "T1"),
    ]
    assert rows(db, "SELECT team_id, supervisor_id FROM team ORDER BY 1") == [("T1", "S9")]
    # A file without team columns leaves every clinician in their team.
    assert import_csv(write(tmp_path, "C-4,CL01,2026-03-05,1,ORS,18", "d.csv"), db).ok
    assert rows(db, "SELECT team_id FROM clinician WHERE clinician_id='CL01'") == [("T1",)]


MINE = """
[[instrument]]
code = "MINE"
name = "A measure of our own"
construct = "outcome"
min = 0
max = 20
higher_is_better = false
n_items = 2
items = ["mood", "sleep"]
source = "ours"

[[instrument.norm]]
population = "adult"
cutoff = 8
clinical_side = "at_or_above"
reliable_change = 3
source = "ours"
"""


def test_a_later_import_without_instruments_keeps_a_user_instrument(tmp_path):
    from alliance import config
    from alliance.registry import load_registry

    toml = tmp_path / "mine.toml"
    toml.write_text(MINE)
    db = tmp_path / "out.duckdb"
    mine = load_registry([config.DEFAULT_REGISTRY, toml])
    assert import_csv(write(tmp_path, "C-1,CL01,2026-01-05,1,MINE,12", "a.csv"), db, registry=mine).ok
    norms = "SELECT instrument, cutoff FROM instrument_norm WHERE instrument='MINE'"
    items = "SELECT item_no, label FROM instrument_item WHERE instrument='MINE' ORDER BY 1"
    assert rows(db, norms) == [("MINE", 8.0)]
    # Without --instruments: the stored definition is kept, and its ratings are still accepted.
    report = import_csv(
        write(tmp_path, "C-1,CL01,2026-01-12,2,mine,10\nC-2,CL01,2026-01-12,1,ORS,20", "b.csv"), db
    )
    assert report.ok, report.summary()
    assert "instrument" not in " ".join(report.notes)
    assert rows(db, norms) == [("MINE", 8.0)]
    assert rows(db, items) == [(1, "mood"), (2, "sleep")]
    # A changed definition is applied and reported.
    toml.write_text(MINE.replace("cutoff = 8", "cutoff = 9"))
    changed = load_registry([config.DEFAULT_REGISTRY, toml])
    report = import_csv(write(tmp_path, "C-1,CL01,2026-01-12,2,mine,10", "c.csv"), db, registry=changed)
    assert report.ok and "instrument definition(s) updated from the registry: MINE." in report.summary()
    assert rows(db, norms) == [("MINE", 9.0)]


def test_item_scores_follow_their_total(tmp_path):
    header = HEADER + ",item_1,item_2,item_3,item_4"
    db = tmp_path / "out.duckdb"
    assert import_csv(write(tmp_path, "C-1,CL01,2026-01-05,1,SRS,36,9,9,9,9", "a.csv", header), db).ok
    # Same total, one item corrected: the rating is updated, its items replaced.
    report = import_csv(write(tmp_path, "C-1,CL01,2026-01-05,1,SRS,36,8,10,9,9", "b.csv", header), db)
    assert report.counts["ratings"]["updated"] == 1
    assert report.counts["item scores"] == {"inserted": 4, "removed": 4}
    assert rows(db, "SELECT score FROM rating_item ORDER BY item_no") == [(8.0,), (10.0,), (9.0,), (9.0,)]
    # A file without item columns keeps the stored items while the total is unchanged…
    assert not import_csv(write(tmp_path, "C-1,CL01,2026-01-05,1,SRS,36", "c.csv"), db).written
    # …and removes them with a changed total they no longer add up to.
    report = import_csv(write(tmp_path, "C-1,CL01,2026-01-05,1,SRS,30", "d.csv"), db)
    assert report.counts["item scores"] == {"inserted": 0, "removed": 4}
    assert counts(db)["rating_item"] == 0


# -- formats ------------------------------------------------------------------------------------------
GOOD_ROWS = [
    ("C-1", "CL01", "2026-01-05", "1", "ORS", "17.5"),
    ("C-1", "CL01", "2026-01-12", "2", "ORS", "21"),
]


def _stored_scores(db: Path) -> list[tuple]:
    return rows(db, "SELECT episode_id, session_number, score FROM rating ORDER BY 1, 2")


@pytest.mark.parametrize(
    "text",
    [
        "\ufeff" + HEADER + "\n" + "\n".join(",".join(r) for r in GOOD_ROWS) + "\n",  # UTF-8 with a BOM
        HEADER.replace(",", ";")
        + "\r\n"
        + "\r\n".join(";".join(r) for r in GOOD_ROWS).replace("17.5", "17,5")
        + "\r\n",
        HEADER.replace(",", "\t") + "\n" + "\n".join("\t".join(r) for r in GOOD_ROWS) + "\n",
        "sep=|\n" + HEADER.replace(",", "|") + "\n" + "\n".join("|".join(r) for r in GOOD_ROWS) + "\n",
        '"sep=;"\n' + HEADER.replace(",", ";") + "\n" + "\n".join(";".join(r) for r in GOOD_ROWS) + "\n",
    ],
    ids=["bom", "semicolon-decimal-comma", "tab", "sep-line", "quoted-sep-line"],
)
def test_csv_dialects_services_export(tmp_path, text):
    src = tmp_path / "in.csv"
    src.write_bytes(text.encode("utf-8"))
    db = tmp_path / "out.duckdb"
    report = import_csv(src, db)
    assert report.ok, report.summary()
    assert _stored_scores(db) == [("C-1-1", 1, 17.5), ("C-1-1", 2, 21.0)]
    if "17,5" in text:
        assert "decimal comma" in report.summary()


def test_row_numbers_after_a_sep_line_and_blank_lines_are_the_spreadsheets(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text(
        "sep=;\n"
        + HEADER.replace(",", ";")
        + "\n\nC-1;CL01;2026-01-05;1;ORS;18\n\n\nC-1;CL01;2026-01-12;2;ORS;99\n"
    )
    report = import_csv(src, tmp_path / "x.duckdb")
    assert [(p.row, p.line) for p in report.problems] == [(6, 7)]  # row as Excel shows it; line in the file


def test_parquet_is_read_like_csv(tmp_path):
    src = tmp_path / "in.parquet"
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT * FROM (VALUES ('C-1', 'CL01', DATE '2026-01-05', 1, 'ORS', 17.5), "
        "('C-1', 'CL01', DATE '2026-01-12', 2, 'ors', 21.0)) t(client_id, clinician_id, session_date, "
        f"session_number, instrument, score)) TO '{src}' (FORMAT parquet)"
    )
    con.close()
    db = tmp_path / "out.duckdb"
    report = import_csv(src, db)
    assert report.ok, report.summary()
    assert _stored_scores(db) == [("C-1-1", 1, 17.5), ("C-1-1", 2, 21.0)]
    assert not import_csv(src, db).written  # idempotent here too


def test_differently_written_column_names_are_read_and_reported_unknown_ones_ignored_and_reported(tmp_path):
    header = "Client ID,clinician_id,session_date,session_number,instrument,score,Episode-ID,notes"
    db = tmp_path / "out.duckdb"
    report = import_csv(write(tmp_path, "C-1,CL01,2026-01-05,1,ORS,18,EP-7,seen late", header=header), db)
    assert report.ok, report.summary()
    text = report.summary()
    assert "Column 'Client ID' read as client_id." in text
    assert "Column 'Episode-ID' read as episode_id." in text
    assert "Ignored column(s) Alliance does not use: 'notes'." in text
    assert rows(db, "SELECT episode_id FROM episode") == [("EP-7",)]


# -- the rejects file and the new-file guarantee ------------------------------------------------------
def test_rejects_file_lists_every_problem_with_inert_cells(tmp_path):
    import csv

    src = write(
        tmp_path,
        "=cmd|' /C calc'!A0,CL01,2026-01-05,1,ORS,18\n@x,CL01,2026-01-05,1,=2+3,18\nC-1,CL01,2026-01-05,0,ORS,99",
    )
    rejects = tmp_path / "rejects.csv"
    report = import_csv(src, tmp_path / "x.duckdb", rejects=rejects)
    assert not report.ok and report.refused == 2
    with rejects.open(encoding="utf-8-sig", newline="") as f:
        got = list(csv.DictReader(f))
    assert [(r["row"], r["line"], r["column"], r["value"]) for r in got] == [
        ("3", "3", "instrument", "'=2+3"),
        ("4", "4", "score", "99"),
        ("4", "4", "session_number", "0"),
    ]
    assert all(not r["reason"].startswith(("=", "+", "-", "@")) for r in got)
    assert f"Refused rows listed in {rejects}" in report.summary()


def test_a_killed_import_into_a_new_file_leaves_no_database(tmp_path):
    """kill -9 half-way through writing: the target never exists (built under a temporary name)."""
    src = write(tmp_path, "C-1,CL01,2026-01-05,1,ORS,18")
    db = tmp_path / "new.duckdb"
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
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == -9
    assert not db.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".new.duckdb")]
    assert leftovers  # the temporary file of the killed process…
    assert import_csv(src, db).ok  # …is cleared by the next import, which builds the file
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".new.duckdb")] == []


def test_command_line_messages_are_one_line_each_with_the_command_name(tmp_path):
    from alliance.cli import main

    bad = write(tmp_path, "C-1,CL01,2026-01-05,501,ORS,18\nC-1,CL01,1850-01-12,2,ORS,20", "bad.csv")
    run = [sys.executable, "-m", "alliance.cli", "import", str(bad), "--db", str(tmp_path / "x.duckdb")]
    out = subprocess.run(run, capture_output=True, text=True)
    assert out.returncode == 1 and out.stdout == ""
    lines = out.stderr.splitlines()
    assert lines[:2] == [
        "alliance import: row 2: session_number: 501 is beyond session 500, the most the database holds",
        "alliance import: row 3: session_date: 1850-01-12 is before 1970: not a plausible session date",
    ]
    assert all(line.startswith("alliance import: ") for line in lines)
    assert main(["import", str(bad), "--db", str(tmp_path / "x.duckdb"), "--dry-run"]) == 1
    assert not (tmp_path / "x.duckdb").exists()


def test_a_stored_end_is_kept_and_named_and_a_population_is_not_changed(tmp_path):
    header = FULL + ",population"
    db = tmp_path / "out.duckdb"
    closed = "C-1,CL01,2026-01-05,1,ORS,18,E1,T1,S1,2026-01-20,planned,child"
    assert import_csv(write(tmp_path, closed, "a.csv", header), db).ok
    again = write(tmp_path, "C-1,CL01,2026-01-05,1,ORS,18,E1,T1,S1,,,", "b.csv", header)
    report = import_csv(again, db)
    assert report.ok and not report.written
    assert (
        "1 episode(s) keep the end recorded in the database, which the file does not give: E1"
        in report.summary()
    )
    adult = write(tmp_path, "C-1,CL01,2026-01-05,1,ORS,18,E1,T1,S1,,,adult", "c.csv", header)
    assert [str(p) for p in import_csv(adult, db).problems] == [
        "row 2: population: episode E1 is child in the database; an import does not change an episode's population"
    ]


def test_a_rejects_path_that_is_the_input_is_refused(tmp_path):
    src = write(tmp_path, "C-1,CL01,2026-01-05,1,ORS,99")
    report = import_csv(src, tmp_path / "x.duckdb", rejects=src)
    assert "would overwrite the input or the database" in report.summary()
    assert src.read_text().startswith(HEADER)
