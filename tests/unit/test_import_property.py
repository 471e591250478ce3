"""Property-based tests of `alliance import` (hypothesis): valid rows land exactly once, invalid rows never
do, every invalid row is named by its row number (blank lines counted), and a changed file updates exactly
the ratings that changed."""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alliance.importer import import_csv

COLUMNS = [
    "client_id",
    "clinician_id",
    "session_date",
    "session_number",
    "instrument",
    "score",
    "episode_id",
    "team_id",
    "supervisor_id",
    "end_date",
    "end_reason",
]
RANGES = {"ORS": (0, 40), "SRS": (0, 40), "PHQ-9": (0, 27)}
TEAM = {"CL1": ("T1", "CL1"), "CL2": ("T2", "CL9")}
START = dt.date(2024, 1, 1)
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    database=None,  # no .hypothesis folder in the work tree; failures print their reproducing example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def scores(draw, instrument: str) -> float:
    lo, hi = RANGES[instrument]
    return draw(st.integers(lo * 2, hi * 2)) / 2  # halves, as visual-analogue totals are given


@st.composite
def episodes(draw) -> list[dict]:
    """Valid rows: a few episodes, each with sessions (gaps allowed) in date order, some ended."""
    rows = []
    for e in range(draw(st.integers(1, 4))):
        clinician = draw(st.sampled_from(sorted(TEAM)))
        team, supervisor = TEAM[clinician]
        numbers = sorted(draw(st.sets(st.integers(1, 30), min_size=1, max_size=6)))
        day = START + dt.timedelta(days=draw(st.integers(0, 600)))
        sessions = []
        for n in numbers:
            day += dt.timedelta(days=draw(st.integers(0, 21)))
            sessions.append((n, day))
        end = None
        if draw(st.booleans()):
            end = (
                day + dt.timedelta(days=draw(st.integers(0, 30))),
                draw(st.sampled_from(["planned", "dropout", ""])),
            )
        for n, day in sessions:
            for instrument in draw(st.sets(st.sampled_from(sorted(RANGES)), min_size=1)):
                give_end = end is not None and draw(st.booleans())
                rows.append(
                    dict(
                        client_id=f"C{e % 3}",
                        clinician_id=clinician,
                        session_date=day.isoformat(),
                        session_number=str(n),
                        instrument=draw(st.sampled_from([instrument, instrument.lower()])),
                        score=f"{draw(scores(instrument)):g}",
                        episode_id=f"E{e}",
                        team_id=team,
                        supervisor_id=supervisor,
                        end_date=end[0].isoformat() if give_end else "",
                        end_reason=end[1] if give_end else "",
                    )
                )
    return rows


BROKEN = {
    "score": ["41", "-1", "abc", "", "1e999", "nan"],
    "instrument": ["BDI", "", "=1+1"],
    "session_date": ["2026-02-30", "1850-01-01", "2099-01-01", "05/01/2026", ""],
    "session_number": ["0", "501", "1.5", "1e12", "-3", ""],
    "clinician_id": ["", "CL\x1b[31m"],
    "end_date": ["9999-12-31", "not a date"],
}


@st.composite
def broken_rows(draw) -> list[dict]:
    out = []
    for j in range(draw(st.integers(0, 4))):
        column = draw(st.sampled_from(sorted(BROKEN)))
        row = dict(
            client_id=f"X{j}",
            clinician_id="CL1",
            session_date="2025-06-02",
            session_number="1",
            instrument="ORS",
            score="20",
            episode_id=f"BAD{j}",
            team_id="T1",
            supervisor_id="CL1",
            end_date="",
            end_reason="",
        )
        row[column] = draw(st.sampled_from(BROKEN[column]))
        out.append(row)
    return out


def write_file(path: Path, rows: list[dict | None]) -> dict[int, dict]:
    """Write rows (None: a blank line); returns each written row by its spreadsheet row number."""
    numbered = {}
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i, row in enumerate(rows, start=2):
            if row is None:
                f.write("\r\n")
            else:
                w.writerow([row[c] for c in COLUMNS])
                numbered[i] = row
    return numbered


def key(row: dict) -> tuple:
    return (row["episode_id"], int(row["session_number"]), row["instrument"].upper(), float(row["score"]))


def stored(db: Path) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return sorted(
            con.execute("SELECT episode_id, session_number, instrument, score FROM rating").fetchall()
        )
    finally:
        con.close()


@SETTINGS
@given(valid=episodes(), broken=broken_rows(), data=st.data())
def test_valid_rows_land_exactly_once_and_invalid_rows_never_do(valid, broken, data):
    rows: list[dict | None] = data.draw(st.permutations(valid + broken))
    for _ in range(data.draw(st.integers(0, 3))):  # blank lines anywhere
        rows.insert(data.draw(st.integers(0, len(rows))), None)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        numbered = write_file(folder / "in.csv", rows)
        db = folder / "out.duckdb"
        report = import_csv(folder / "in.csv", db, refresh_store=False)
        bad_rows = {i for i, r in numbered.items() if r["client_id"].startswith("X")}
        if broken:
            assert not report.ok
            assert {p.row for p in report.problems} == bad_rows  # exactly the invalid rows, by number
            assert not db.exists() and sorted(p.name for p in folder.iterdir()) == ["in.csv"]
            numbered = write_file(folder / "in.csv", [r for r in rows if r is not None and r not in broken])
            report = import_csv(folder / "in.csv", db, refresh_store=False)
        assert report.ok, report.summary()
        assert report.counts["ratings"] == {"inserted": len(valid), "updated": 0, "unchanged": 0}
        assert stored(db) == sorted(key(r) for r in valid)
        again = import_csv(folder / "in.csv", db, refresh_store=False)
        assert again.ok and not again.written
        assert again.counts["ratings"] == {"inserted": 0, "updated": 0, "unchanged": len(valid)}
        assert stored(db) == sorted(key(r) for r in valid)


@SETTINGS
@given(valid=episodes(), data=st.data())
def test_a_later_file_inserts_the_new_and_updates_exactly_the_changed_ratings(valid, data):
    first = data.draw(st.sets(st.integers(0, len(valid) - 1)))
    changed = data.draw(st.sets(st.sampled_from(sorted(first)))) if first else set()
    later = [dict(r) for r in valid]
    for i in changed:
        lo, hi = RANGES[later[i]["instrument"].upper()]
        old = float(later[i]["score"])
        later[i]["score"] = f"{(old + 1 if old + 1 <= hi else lo):g}"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = folder / "out.duckdb"
        if first:
            write_file(folder / "a.csv", [valid[i] for i in sorted(first)])
            assert import_csv(folder / "a.csv", db, refresh_store=False).ok
        write_file(folder / "b.csv", data.draw(st.permutations(later)))
        dry = import_csv(folder / "b.csv", db, dry_run=True, refresh_store=False)
        report = import_csv(folder / "b.csv", db, refresh_store=False)
        assert report.ok, report.summary()
        expected = {
            "inserted": len(valid) - len(first),
            "updated": len(changed),
            "unchanged": len(first) - len(changed),
        }
        assert dry.counts == report.counts and report.counts["ratings"] == expected
        assert stored(db) == sorted(key(r) for r in later)
        assert not import_csv(folder / "b.csv", db, refresh_store=False).written


VALID = (
    b"client_id,clinician_id,session_date,session_number,instrument,score,item_1,item_2,item_3,item_4\r\n"
    b"C-1,CL01,2026-01-05,1,ORS,18,4,5,4,5\r\nC-1,CL01,2026-01-12,2,SRS,36,9,9,9,9\r\n"
)


@st.composite
def mangled(draw) -> bytes:
    """A valid file with bytes inserted, deleted or replaced, or cut short."""
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "cut"]))
        byte = draw(st.sampled_from([0, 0x0A, 0x0D, 0x22, 0x2C, 0x3B, 0x09, 0xE9, 0xFF, 0x31, 0x2D]))
        if kind == "insert":
            data.insert(at, byte)
        elif kind == "delete" and at < len(data):
            del data[at]
        elif kind == "replace" and at < len(data):
            data[at] = byte
        elif kind == "cut":
            del data[at:]
    return bytes(data)


@SETTINGS
@given(content=st.one_of(mangled(), st.binary(max_size=400)))
def test_no_input_crashes_the_importer_and_a_refused_one_writes_nothing(content):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "in.csv").write_bytes(content)
        db = folder / "out.duckdb"
        report = import_csv(folder / "in.csv", db, refresh_store=False)
        lines = report.lines()
        assert lines and all("\n" not in line for line in lines)
        if report.ok:
            assert db.exists() and report.written
        else:
            assert sorted(p.name for p in folder.iterdir()) == ["in.csv"]
            assert all(p.row >= 0 for p in report.problems)
