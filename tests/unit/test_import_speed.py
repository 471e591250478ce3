"""The importer's vectorised checks (``_fast_records``: column by column, for a million rows in seconds) are
only a shortcut: they accept exactly the rows the row-by-row checks accept, with the same values, and leave
every other row to the row-by-row checks, which name its problems. Checked on every file of the corpus, the
documented examples, the hand-made edge cases and a file of awkward but valid cells. And the progress bar
shows on request without changing what the command says."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

import alliance.importer as imp
from alliance.import_formats import Mapping, load_mapping
from alliance.registry import load_registry

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FORMATS = FIXTURES / "import" / "formats"
TODAY = dt.date(2026, 11, 1)

AWKWARD = """client_id,clinician_id,episode_id,session_date,session_number,instrument,score,population,end_date,end_reason,team_id,supervisor_id
 C-1 ,CL01,E1,2026-01-05,1,ors,+17.50,ADULT,,,T1,S1
C-1,CL01,E1,2026-01-12,2.0,ORS,1e1,,2026-02-01,Planned,T1,
C-1,CL01,E1,2026-01-12,2,SRS,.5,,2026-02-01,planned,,
C-2,CL02,E2,2026-01-12,3.,phq-9,27,child,,,,
C-2,CL02,E2,2026-01-19,4,PHQ-9,20,child,,,,
C-3,CL02,E3,1969-12-31,1,ORS,10,,,,,
C-3,CL02,E3,2026-02-30,2,ORS,10,,,,,
C-3,CL02,E3,2026-03-01,501,ORS,10,,,,,
C-3,CL02,E3,2026-03-01,0,ORS,10,,,,,
C-3,CL02,E3,2026-03-01,1,ORS,inf,,,,,
C-3,CL02,E3,2026-03-01,1,ORS,nan,,,,,
C-3,CL02,E3,2026-03-01,1,ORS,1_0,,,,,
C-3,CL02,E3,2026-03-01,1,ORS,40.01,,,,,
C-3,CL02,E3,2026-03-01,1,ORS,10,teen,,,,
C-3,CL02,E3,2026-03-01,1,ORS,10,,,dropout,,
C-3,CL02,E3,2026-03-01,1,ORS,10,,,,,S9
C-3,CL02,,2026-03-01,1,ORS,10,,,,,
C-3,CL02\tX,E3,2026-03-01,1,ORS,10,,,,,
C-3,CL02,E3,2026-03-01,1,ORS,10,,2099-01-01,,,
"""


def _cases(tmp_path: Path):
    awkward = tmp_path / "awkward.csv"
    awkward.write_text(AWKWARD)
    yield awkward, None
    yield FIXTURES / "edge_cases.csv", None
    for path in sorted((FIXTURES / "import").iterdir()):
        if path.is_file():
            yield path, None
    for path in sorted(FORMATS.iterdir()):
        if path.suffix in (".csv", ".xlsx", ".parquet"):
            yield path, FORMATS / "service_export.toml" if path.stem == "service_export" else None


def _check(path: Path, mapping: Path | None, fast: bool, monkeypatch):
    if not fast:
        monkeypatch.setattr(imp, "_fast_records", lambda table, *a, **k: [None] * len(table.rows))
    registry = load_registry()
    notes: list[str] = []
    shape = load_mapping(mapping, {*imp.REQUIRED, *imp.OPTIONAL}) if mapping else Mapping()
    try:
        table = imp._read_input(path, shape, notes)
    except imp._Refused:
        return None
    if any(p.row <= 1 for p in imp._reshape(table, registry, shape, notes)):
        return None
    columns, header = imp._map_columns(table, notes)
    if header:
        return None
    records, problems = imp._check_rows(table, columns, registry, TODAY, notes, shape.date_format)
    monkeypatch.undo()
    return records, problems, notes


def test_the_vectorised_checks_accept_exactly_what_the_row_checks_accept(tmp_path, monkeypatch):
    compared = 0
    for path, mapping in _cases(tmp_path):
        fast = _check(path, mapping, True, monkeypatch)
        slow = _check(path, mapping, False, monkeypatch)
        assert fast == slow, path.name
        compared += fast is not None and bool(fast[0])
    assert compared >= 10  # files with valid rows were compared, not only refused ones
    records, problems, _ = _check(tmp_path / "awkward.csv", None, True, monkeypatch)
    assert len(records) == 5 and {p.row for p in problems} == set(range(7, 21))


def test_the_progress_bar_shows_on_request_and_changes_nothing_else(tmp_path):
    db = tmp_path / "x.duckdb"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "alliance.cli",
            "import",
            str(FORMATS / "wide.csv"),
            "--db",
            str(db),
            "--progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "alliance import: checking 14 rows" in run.stderr and "refreshing the stored metrics" in run.stderr
    assert run.stdout.startswith(f"alliance import: Imported {FORMATS / 'wide.csv'} into {db}: 5 row(s)")
    quiet = subprocess.run(
        [sys.executable, "-m", "alliance.cli", "import", str(FORMATS / "wide.csv"), "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert quiet.returncode == 0 and quiet.stderr == ""  # not a terminal, not asked: no bar


@pytest.mark.parametrize("rows", [2_000])
def test_the_benchmark_file_is_valid_and_imports_whole(tmp_path, rows):
    from alliance.import_bench import ratings_csv

    src = ratings_csv(tmp_path / "r.csv", rows)
    report = imp.import_csv(src, tmp_path / "r.duckdb", refresh_store=False)
    assert report.ok and report.counts["ratings"]["inserted"] == rows
