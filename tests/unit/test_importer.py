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


def test_reimporting_the_same_episodes_is_refused(tmp_path):
    db = tmp_path / "out.duckdb"
    src = write(tmp_path, "C-1,CL01,2026-01-05,1,ORS,18")
    assert import_csv(src, db).ok
    report = import_csv(src, db)
    assert not report.ok and "already in" in report.summary()
    assert counts(db)["rating"] == 1


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
