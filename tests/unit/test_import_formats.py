"""The shapes services export, each documented in docs/import.md with its file in
tests/fixtures/import/formats/: long CSV, the same as an Excel workbook (dates as Excel dates, on the second
sheet) and as Parquet, the wide layout (a column per instrument) as CSV and as a workbook, and a service's own
export (semicolons, a BOM and Excel's sep= line, decimal commas, day/month/year dates, its own column names)
read through a mapping file. All land as the same ratings; a bad cell of a wide file is named by its row and
its column; a wrong mapping file is one line."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import duckdb
import pytest

from alliance.cli import main
from alliance.importer import import_csv

FORMATS = Path(__file__).resolve().parent.parent / "fixtures" / "import" / "formats"

#: What every example holds, written out by hand from the spreadsheet the examples were made from:
#: (episode, session, date, instrument, score); PHQ-9 was not given at E-1's second session.
EXPECTED = {
    ("E-1", 1, "2026-03-02", "ORS", 17.5),
    ("E-1", 1, "2026-03-02", "SRS", 36.0),
    ("E-1", 1, "2026-03-02", "PHQ-9", 14.0),
    ("E-1", 2, "2026-03-09", "ORS", 21.0),
    ("E-1", 2, "2026-03-09", "SRS", 37.5),
    ("E-1", 3, "2026-03-16", "ORS", 24.5),
    ("E-1", 3, "2026-03-16", "SRS", 38.0),
    ("E-1", 3, "2026-03-16", "PHQ-9", 9.0),
    ("E-2", 1, "2026-04-01", "ORS", 12.0),
    ("E-2", 1, "2026-04-01", "SRS", 30.0),
    ("E-2", 1, "2026-04-01", "PHQ-9", 20.0),
    ("E-2", 2, "2026-04-08", "ORS", 15.0),
    ("E-2", 2, "2026-04-08", "SRS", 33.0),
    ("E-2", 2, "2026-04-08", "PHQ-9", 18.0),
}
EPISODES = {("E-1", "C-101", "CL01"), ("E-2", "C-102", "CL02")}

EXAMPLES = {
    "long.csv": (None, None),
    "long.xlsx": (None, "Read worksheet 'Ratings'."),
    "long.parquet": (None, None),
    "wide.csv": (None, "Read as wide (one row per session, a column per instrument): 'ORS', 'SRS', 'PHQ9'."),
    "wide.xlsx": (None, "Read as wide (one row per session, a column per instrument): 'ORS', 'SRS', 'PHQ9'."),
    "service_export.csv": (
        "service_export.toml",
        "Read as wide (one row per session, a column per instrument): 'ORS total' as ORS, 'SRS total' as SRS, "
        "'PHQ-9 score' as PHQ-9.",
    ),
}


def _stored(db: Path) -> tuple[set, set]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        ratings = con.execute(
            "SELECT episode_id, session_number, strftime(session_date, '%Y-%m-%d'), instrument, score "
            "FROM rating JOIN session USING (episode_id, session_number)"
        ).fetchall()
        episodes = con.execute("SELECT episode_id, client_id, clinician_id FROM episode").fetchall()
    finally:
        con.close()
    return set(ratings), set(episodes)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_documented_shape_lands_as_the_same_ratings(tmp_path, name):
    mapping, note = EXAMPLES[name]
    db = tmp_path / "service.duckdb"
    report = import_csv(
        FORMATS / name, db, mapping=FORMATS / mapping if mapping else None, refresh_store=False
    )
    assert report.ok, report.summary()
    assert report.counts["ratings"]["inserted"] == len(EXPECTED)
    assert _stored(db) == (EXPECTED, EPISODES)
    if note:
        assert note in report.notes
    again = import_csv(FORMATS / name, db, mapping=FORMATS / mapping if mapping else None)
    assert again.ok and not again.written  # the same file twice changes nothing


def test_the_documented_examples_are_in_docs():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "import.md").read_text(encoding="utf-8")
    for name in [*EXAMPLES, "service_export.toml"]:
        assert name in docs, f"docs/import.md does not show {name}"


def test_a_bad_cell_of_a_wide_file_names_its_row_and_column(tmp_path, capsys):
    db = tmp_path / "service.duckdb"
    rejects = tmp_path / "rejects.csv"
    code = main(["import", str(FORMATS / "wide_bad_cell.csv"), "--db", str(db), "--rejects", str(rejects)])
    lines = capsys.readouterr().err.splitlines()
    assert code == 1
    assert lines[:2] == [
        "alliance import: row 4: PHQ9: 'n/a' is not a number",
        "alliance import: row 5: SRS: 51 is outside SRS's range 0–40",
    ]
    assert lines[2].endswith("wide_bad_cell.csv: 2 of 4 row(s) refused; nothing was written."), lines
    assert not db.exists()
    with rejects.open(encoding="utf-8-sig", newline="") as f:
        got = [(r["row"], r["column"], r["value"]) for r in csv.DictReader(f)]
    assert got == [("4", "PHQ9", "n/a"), ("5", "SRS", "51")]


def test_a_wide_file_with_a_short_row_names_the_row(tmp_path):
    src = tmp_path / "wide.csv"
    src.write_text(
        "client_id,clinician_id,session_number,session_date,ORS,SRS\n"
        "C-1,CL01,1,2026-03-02,17,36\n"
        "C-1,CL01,2,2026-03-09,21\n"
    )
    report = import_csv(src, tmp_path / "x.duckdb")
    assert [str(p) for p in report.problems] == [
        "row 3: row: has 5 cells but the header has 6 "
        "(a truncated row, or the delimiter inside an unquoted value)"
    ]


def test_item_columns_in_a_wide_file_are_refused(tmp_path):
    src = tmp_path / "wide.csv"
    src.write_text(
        "client_id,clinician_id,session_number,session_date,ORS,item_1\nC-1,CL01,1,2026-03-02,17,4\n"
    )
    report = import_csv(src, tmp_path / "x.duckdb")
    assert str(report.problems[0]).startswith("row 1: item_1: item columns need the long layout")


def test_a_date_in_neither_format_is_named_with_both(tmp_path):
    src = tmp_path / "export.csv"
    src.write_text(
        (FORMATS / "service_export.csv").read_text(encoding="utf-8-sig").replace("09/03/2026", "2026/03/09")
    )
    report = import_csv(src, tmp_path / "x.duckdb", mapping=FORMATS / "service_export.toml")
    assert [str(p) for p in report.problems] == [
        "row 3: session_date: '2026/03/09' is not a date (YYYY-MM-DD or DD/MM/YYYY)"
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("date_format = \n", "is not valid TOML"),
        (
            'sheets = "x"\n',
            "unknown part(s) 'sheets' (a mapping has sheet, date_format, columns, instruments)",
        ),
        ('[columns]\n"Client" = "client"\n', "maps 'Client' to 'client', which is not an Alliance column"),
        ('[columns]\n"A" = "client_id"\n"B" = "client_id"\n', "maps two columns to client_id"),
        ('date_format = "dd/mm/yyyy"\n', "date_format 'dd/mm/yyyy' does not read a date back"),
        ("[columns]\nClient = 3\n", '[columns] must be lines of the form "column" = "name"'),
        ('[instruments]\n"ORS total" = "ORZ"\n', "[instruments] 'ORS total' = 'ORZ': no such instrument"),
    ],
)
def test_a_wrong_mapping_file_is_one_line_and_nothing_is_written(tmp_path, capsys, text, expected):
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(text)
    db = tmp_path / "x.duckdb"
    code = main(["import", str(FORMATS / "service_export.csv"), "--db", str(db), "--mapping", str(mapping)])
    lines = capsys.readouterr().err.splitlines()
    assert code == 1 and len(lines) == 1, lines
    assert expected in lines[0] and lines[0].endswith("nothing was written.")
    assert not db.exists()


def test_a_missing_mapping_file_or_worksheet_is_one_line(tmp_path, capsys):
    code = main(
        ["import", str(FORMATS / "wide.csv"), "--db", str(tmp_path / "x.duckdb"), "--mapping", "nope.toml"]
    )
    assert code == 1
    assert "mapping file nope.toml not found" in capsys.readouterr().err
    mapping = tmp_path / "m.toml"
    mapping.write_text('sheet = "Sessions"\n')
    code = main(
        ["import", str(FORMATS / "long.xlsx"), "--db", str(tmp_path / "x.duckdb"), "--mapping", str(mapping)]
    )
    err = capsys.readouterr().err
    assert code == 1 and "has no worksheet 'Sessions' (it has 'Notes', 'Ratings')" in err


def test_an_excel_date_needs_no_format_and_a_formula_gives_its_saved_value(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["client_id", "clinician_id", "session_date", "session_number", "instrument", "score"])
    ws.append(["C-1", "CL01", dt.datetime(2026, 3, 2), 1, "ORS", 17.5])
    ws.append(["C-1", "CL01", dt.date(2026, 3, 9), 2.0, "ORS", "=10+11"])  # never calculated: no value saved
    path = tmp_path / "book.xlsx"
    wb.save(path)
    report = import_csv(path, tmp_path / "x.duckdb")
    assert [str(p) for p in report.problems] == ["row 3: score: missing value"]
