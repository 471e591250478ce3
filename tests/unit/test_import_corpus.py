"""A corpus of bad inputs for `alliance import`: each gets its expected one-line message through the command
(never a traceback), and none writes — no new database appears (nor a temporary one beside it), and an
existing database keeps every byte. The files are in tests/fixtures/import/; database-path problems are made
here, since they need a place on disk."""

from __future__ import annotations

import csv
import hashlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from alliance.cli import main
from alliance.importer import import_csv

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "import"
HEADER = "client_id,clinician_id,session_date,session_number,instrument,score"

#: file → the message (row number first, as the command prints it after "alliance import: ").
EXPECTED = {
    # Not a ratings table at all.
    "binary.bin": "binary.bin is not a text file (binary content); export the ratings as CSV; nothing was written.",
    "ratings.csv.gz": "ratings.csv.gz is gzip-compressed; decompress it (gunzip) and import the file inside",
    "utf16.csv": "utf16.csv is UTF-16 text (Excel's 'Unicode Text'); save it as 'CSV UTF-8' and import that",
    "workbook.xlsx": "workbook.xlsx is not a readable Excel workbook (File contains no valid workbook part)",
    "login_page.html": "login_page.html is an HTML or XML page, not a CSV export",
    "empty.csv": "empty.csv is empty (0 bytes); nothing was written.",
    "header_only.csv": "row 1: file: has a header but no rows",
    # Damaged or mis-encoded text: blamed on the row that holds the damage.
    "latin1.csv": "row 3: client_id: is not UTF-8 text (byte 0xE9); save the file as 'CSV UTF-8'",
    "nul_byte.csv": "row 3: score: contains a NUL byte: the export is damaged in this row",
    "truncated.csv": "row 4: row: has 3 cells but the header has 6 (a truncated row, or the delimiter inside an unquoted value)",
    "truncated_quote.csv": "row 4: row: cannot be read as CSV: a quoted cell is never closed (the file may be truncated)",
    "shifted_row.csv": "row 2: row: has 7 cells but the header has 6",
    "blank_line.csv": "row 4: score: 41 is outside ORS's range 0–40",
    # Hostile codes are codes (made inert wherever shown); the values in messages are quoted, one line.
    "formula_ids.csv": "row 3: instrument: unknown instrument '=1+1' (known: ",
    "html_ids.csv": "row 3: instrument: unknown instrument '<b>ORS</b>' (known: ",
    # What the schema would refuse.
    "session_501.csv": "row 2: session_number: 501 is beyond session 500, the most the database holds",
    "session_1e12.csv": "row 2: session_number: '1e12' is not a session position (a whole number 1–500)",
    "item_0.csv": "row 1: item_0: items are numbered from 1 (item_1 … item_N)",
    "score_twice.csv": "row 1: SCORE: repeats column 'score': both would give score; keep one",
    "end_before_start.csv": "row 2: end_date: 2025-12-01 is before the first session of episode C-1-1 (2026-01-05)",
    # Implausible dates.
    "end_before_last_session.csv": "row 3: end_date: 2026-01-08 is before the last session of episode C-1-1 (2026-01-12, row 3)",
    "end_9999.csv": "row 2: end_date: 9999-12-31 is after today (",
    "implausible_dates.csv": "row 2: session_date: 1500-01-05 is before 1970: not a plausible session date",
    # One fact given two values: refused with its rows, never resolved by keeping one.
    "clinician_two_teams.csv": "row 3: team_id: clinician CL01 is in team T1 at row 2, T2 here (one team per clinician)",
    "team_two_supervisors.csv": "row 3: supervisor_id: team T1 has supervisor S1 at row 2, S2 here (one supervisor per team)",
    "episode_two_ends.csv": "row 3: end_date: episode C-1-1 ends 2026-02-01 (planned) at row 2 but 2026-02-08 (dropout) here",
    "misspelled_column.csv": "row 1: pop: is not a column Alliance knows; did you mean population? Rename it, or delete the column",
}
#: Further lines some files must also give.
ALSO = {
    "implausible_dates.csv": [
        "row 3: session_date: 1850-03-01 is before 1970: not a plausible session date",
        "row 4: session_date: 2099-01-05 is after today (",
    ],
}


def _import(capsys, *args: str) -> tuple[int, list[str]]:
    code = main(["import", *map(str, args)])
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).splitlines()
    assert lines and all(line.startswith("alliance import: ") for line in lines), lines
    assert "Traceback" not in captured.err
    return code, [line.removeprefix("alliance import: ") for line in lines]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_corpus_file_has_an_expectation():
    # formats/ holds the good examples of docs/import.md (tests/unit/test_import_formats.py)
    assert sorted(p.name for p in CORPUS.iterdir() if p.name != "formats") == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_bad_file_gets_its_message_and_creates_nothing(tmp_path, capsys, name):
    db = tmp_path / "new.duckdb"
    code, lines = _import(capsys, CORPUS / name, "--db", db)
    assert code == 1
    text = "\n".join(lines)
    assert EXPECTED[name] in text
    for more in ALSO.get(name, []):
        assert more in text
    assert "nothing was written" in lines[-1] or "nothing was written" in text
    assert list(tmp_path.iterdir()) == []  # no database, no temporary file


@pytest.fixture(scope="module")
def existing(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("existing")
    src = folder / "in.csv"
    src.write_text(HEADER + "\nC-1,CL01,2026-01-05,1,ORS,18\nC-1,CL01,2026-01-12,2,ORS,21\n")
    db = folder / "existing.duckdb"
    assert import_csv(src, db, refresh_store=False).ok
    return db


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_bad_file_leaves_an_existing_database_byte_for_byte(tmp_path, capsys, existing, name):
    db = tmp_path / "db.duckdb"
    shutil.copy(existing, db)
    before = _digest(db)
    code, lines = _import(capsys, CORPUS / name, "--db", db)
    assert code == 1 and EXPECTED[name] in "\n".join(lines)
    assert _digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db.duckdb"]


def test_the_rejects_file_of_hostile_codes_is_inert(tmp_path):
    rejects = tmp_path / "rejects.csv"
    report = import_csv(CORPUS / "formula_ids.csv", tmp_path / "x.duckdb", rejects=rejects)
    assert not report.ok
    with rejects.open(encoding="utf-8-sig", newline="") as f:
        got = list(csv.DictReader(f))
    assert [(r["row"], r["column"], r["value"]) for r in got] == [("3", "instrument", "'=1+1")]
    report = import_csv(CORPUS / "nul_byte.csv", tmp_path / "x.duckdb", rejects=rejects)
    with rejects.open(encoding="utf-8-sig", newline="") as f:
        got = list(csv.DictReader(f))
    assert [(r["row"], r["line"], r["column"], r["value"]) for r in got] == [("3", "3", "score", "2\\x001")]


# -- database paths ---------------------------------------------------------------------------------------
def _good(tmp_path: Path) -> Path:
    src = tmp_path / "good.csv"
    src.write_text(HEADER + "\nC-1,CL01,2026-01-05,1,ORS,18\n")
    return src


def _foreign_duckdb(path: Path) -> Path:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE invoices (id INTEGER, amount DOUBLE)")
    con.close()
    return path


def _sqlite(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (a)")
    con.commit()
    con.close()
    return path


DB_CASES = {
    "missing folder": (lambda d: d / "nowhere" / "x.duckdb", "does not exist; create it first"),
    "text file": (lambda d: _write(d / "notes.txt", "hello\n"), "is not a DuckDB database file"),
    "0-byte file": (lambda d: _write(d / "zero.duckdb", ""), "is an empty file (0 bytes), not a database"),
    "folder": (lambda d: _mkdir(d / "dir.duckdb"), "is a folder; give a database file"),
    "SQLite file": (
        lambda d: _sqlite(d / "other.db"),
        "is a SQLite database, not an Alliance (DuckDB) database",
    ),
    "another application's DuckDB": (
        lambda d: _foreign_duckdb(d / "app.duckdb"),
        "is not an Alliance database (no alliance_meta table)",
    ),
    "a URL": (lambda d: "https://example.org/x.duckdb", "is not a file path; give a database file"),
    "MotherDuck": (lambda d: "md:alliance", "is not a file path; give a database file"),
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _snapshot(folder: Path) -> dict:
    return {p.name: (p.is_dir(), p.read_bytes() if p.is_file() else None) for p in folder.iterdir()}


@pytest.mark.parametrize("case", sorted(DB_CASES))
def test_a_database_path_that_cannot_be_one_gets_one_line(tmp_path, capsys, case):
    make, expected = DB_CASES[case]
    src = _good(tmp_path)
    db = make(tmp_path)
    before = _snapshot(tmp_path)
    code, lines = _import(capsys, src, "--db", db)
    assert code == 2
    assert len(lines) == 1 and expected in lines[0] and lines[0].endswith("nothing was written.")
    assert _snapshot(tmp_path) == before


def _holder(db: Path, read_only: bool) -> subprocess.Popen:
    """Another process with ``db`` open (a running dashboard reads it; another program may write it). It prints
    'open', then on each line it is sent prints how many ratings it sees."""
    code = (
        "import duckdb, sys\n"
        f"c = duckdb.connect({str(db)!r}, read_only={read_only})\n"
        "print('open', flush=True)\n"
        "for _ in sys.stdin:\n"
        "    print(c.execute('SELECT count(*) FROM rating').fetchone()[0], flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "open"
    return proc


def _ask(proc: subprocess.Popen) -> int:
    proc.stdin.write("\n")
    proc.stdin.flush()
    return int(proc.stdout.readline())


def _ratings(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM rating").fetchone()[0]
    finally:
        con.close()


def test_an_import_beside_a_running_reader_swaps_in_a_new_file(tmp_path, capsys, existing):
    """A dashboard holds the file open read-only: the import writes a new file beside it and swaps it in; the
    reader goes on reading the old file, whole, and nothing is left beside it."""
    db = tmp_path / "held.duckdb"
    shutil.copy(existing, db)
    inode = db.stat().st_ino
    reader = _holder(db, read_only=True)
    try:
        assert _ask(reader) == 2
        src = tmp_path / "more.csv"
        src.write_text(HEADER + "\nC-2,CL01,2026-01-05,1,ORS,18\n")
        code, lines = _import(capsys, src, "--db", db)
        assert code == 0 and lines[0].startswith(f"Imported {src} into {db}"), lines
        assert db.stat().st_ino != inode  # a new file, swapped in
        assert _ratings(db) == 3
        assert _ask(reader) == 2  # the reader's old file, unchanged
    finally:
        reader.kill()
        reader.wait()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no copy left beside it


def test_a_database_held_by_a_writer_gets_one_line(tmp_path, capsys, existing):
    db = tmp_path / "held.duckdb"
    shutil.copy(existing, db)
    before = _digest(db)
    writer = _holder(db, read_only=False)
    try:
        src = tmp_path / "more.csv"
        src.write_text(HEADER + "\nC-2,CL01,2026-01-05,1,ORS,18\n")
        for extra in ((), ("--dry-run",)):
            code, lines = _import(capsys, src, "--db", db, *extra)
            assert code == 2 and len(lines) == 1
            assert f"is in use by process {writer.pid}, which is writing to it" in lines[0]
    finally:
        writer.kill()
        writer.wait()
    assert _digest(db) == before


def test_a_second_writer_is_refused_while_one_writes(tmp_path, capsys, existing):
    """Two imports (or an import and a refresh) of one file never run at once: the second would copy the file
    before the first swaps in its version, and one of them would be lost."""
    from alliance.db import writer_lock

    db = tmp_path / "busy.duckdb"
    shutil.copy(existing, db)
    before = _digest(db)
    src = tmp_path / "more.csv"
    src.write_text(HEADER + "\nC-2,CL01,2026-01-05,1,ORS,18\n")
    with writer_lock(db):
        code, lines = _import(capsys, src, "--db", db)
        assert code == 2 and len(lines) == 1
        assert "is being written by another `alliance import` or `alliance refresh`" in lines[0]
        assert main(["refresh", "--db", str(db)]) == 2
        assert "is being written by another" in capsys.readouterr().err
    assert _digest(db) == before
    code, lines = _import(capsys, src, "--db", db)
    assert code == 0


@pytest.mark.parametrize(
    "given, expected",
    [
        (lambda d: d, "is a folder; give the exported ratings file"),
        (lambda d: "https://example.org/ratings.csv", "is a URL; download the file and import it from disk"),
        (lambda d: d / "missing.csv", "missing.csv not found"),
    ],
    ids=["folder", "URL", "missing"],
)
def test_an_input_path_that_is_not_a_file_gets_one_line(tmp_path, capsys, given, expected):
    code, lines = _import(capsys, given(tmp_path), "--db", tmp_path / "x.duckdb")
    assert code == 1 and len(lines) == 1 and expected in lines[0]
    assert not (tmp_path / "x.duckdb").exists()


def test_a_missing_instruments_file_gets_one_line(tmp_path, capsys):
    code, lines = _import(
        capsys, _good(tmp_path), "--db", tmp_path / "x.duckdb", "--instruments", tmp_path / "no.toml"
    )
    assert code == 2 and lines == [f"instrument registry file {tmp_path / 'no.toml'} not found"]


def test_an_unforeseen_failure_is_one_line_at_the_edge(tmp_path, capsys, monkeypatch):
    import alliance.importer as importer

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(importer, "import_csv", broken)
    code, lines = _import(capsys, _good(tmp_path), "--db", tmp_path / "x.duckdb")
    assert code == 2 and len(lines) == 1 and "failed (RuntimeError: disk on fire)" in lines[0]
