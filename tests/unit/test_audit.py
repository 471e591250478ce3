"""The audit trail: each audited action appends exactly one record; the store refuses UPDATE and DELETE, a
change made outside the application is found by ``verify``; several processes append at once with an unbroken
chain; nothing in the application can change or remove a record; hostile values are kept inert; and an action
whose record cannot be written does not happen."""

from __future__ import annotations

import csv
import datetime as dt
import inspect
import multiprocessing
import re
import sqlite3
from pathlib import Path

import pytest

from alliance import audit
from alliance.audit import AuditError, AuditLog
from alliance.cli import main
from alliance.marks import MarkStore
from tests.conftest import AS_OF, REPO
from tests.unit.audit_writer import append_many

HEADER = "client_id,clinician_id,session_date,session_number,instrument,score"


@pytest.fixture
def trail(tmp_path, monkeypatch) -> AuditLog:
    """A fresh trail for the test ($ALLIANCE_AUDIT), whatever database the code under test opens."""
    path = tmp_path / "trail" / "service.audit.sqlite"
    path.parent.mkdir()
    monkeypatch.setenv("ALLIANCE_AUDIT", str(path))
    return AuditLog(path)


@pytest.fixture
def broken(tmp_path, monkeypatch) -> Path:
    """A trail that cannot be written: $ALLIANCE_AUDIT names a folder."""
    path = tmp_path / "not-a-file.audit.sqlite"
    path.mkdir()
    monkeypatch.setenv("ALLIANCE_AUDIT", str(path))
    return path


def _count(log: AuditLog) -> int:
    return log.count() if log.path.exists() else 0


# -- the store --------------------------------------------------------------------------------------------
def test_a_record_holds_who_what_when_where(trail):
    before = dt.datetime.now(dt.UTC)
    seq = audit.record(
        "view_client", user="dr.k", client="C-1", episode="E1", detail="client page", remote="10.0.0.7"
    )
    after = dt.datetime.now(dt.UTC)
    assert seq == 1
    [rec] = trail.records()
    assert {k: rec[k] for k in ("action", "user", "remote", "clients", "episodes", "detail")} == {
        "action": "view_client",
        "user": "dr.k",
        "remote": "10.0.0.7",
        "clients": ["C-1"],
        "episodes": ["E1"],
        "detail": "client page",
    }
    assert before <= dt.datetime.fromisoformat(rec["at"]) <= after
    assert rec["prev_hash"] == audit.GENESIS and re.fullmatch(r"[0-9a-f]{64}", rec["hash"])


def test_outside_a_served_session_the_local_account_is_the_user(trail):
    audit.record("refresh")
    [rec] = trail.records()
    assert rec["user"].endswith("(local account)") and rec["remote"] == "local"


@pytest.mark.parametrize("action", audit.ACTIONS)
def test_each_action_appends_exactly_one_record(trail, action):
    audit.record("sign_in", user="someone")
    audit.record(action, user="u", client="C-9", episode="E9")
    recs = trail.records()
    assert len(recs) == 2 and recs[-1]["action"] == action
    assert recs[-1]["prev_hash"] == recs[0]["hash"]


def test_an_unknown_action_is_a_programming_error(trail):
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record("delete_everything", user="u")
    assert not trail.path.exists()


def test_the_trail_survives_reopening_and_lives_beside_the_database(tmp_path, monkeypatch):
    monkeypatch.delenv("ALLIANCE_AUDIT", raising=False)
    db = tmp_path / "service.duckdb"
    assert audit.audit_path(db) == tmp_path / "service.audit.sqlite"
    audit.record("import", user="a", db=db)
    audit.record("refresh", user="b", db=db)
    assert [r["user"] for r in AuditLog(tmp_path / "service.audit.sqlite").records()] == ["a", "b"]
    assert audit.verify(db).ok and audit.verify(db).records == 2
    assert (tmp_path / "service.audit.sqlite").stat().st_mode & 0o777 == 0o600  # its owner's alone


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_record SET user = 'mallory'",
        "UPDATE audit_record SET detail = '' WHERE seq = 1",
        "DELETE FROM audit_record",
        "DELETE FROM audit_record WHERE seq = 2",
        "UPDATE audit_meta SET value = '0'",
        "DELETE FROM audit_meta",
    ],
)
def test_update_and_delete_are_refused_by_the_store_itself(trail, sql):
    audit.record("view_client", user="a", client="C-1")
    audit.record("view_client", user="b", client="C-2")
    con = sqlite3.connect(trail.path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute(sql)
        con.rollback()
    finally:
        con.close()
    assert [r["user"] for r in trail.records()] == ["a", "b"]
    assert trail.verify().ok


# -- tampering outside the application ---------------------------------------------------------------------
def _tamper(path: Path, *statements: str) -> None:
    con = sqlite3.connect(path)
    try:
        for sql in statements:
            con.execute(sql)
        con.commit()
    finally:
        con.close()


def _five(trail: AuditLog) -> None:
    for i in range(5):
        audit.record("view_client", user=f"user{i}", client=f"C-{i}", episode=f"E{i}")
    assert trail.verify().ok


DROP_TRIGGERS = ("DROP TRIGGER audit_record_no_update", "DROP TRIGGER audit_record_no_delete")


@pytest.mark.parametrize(
    "statements, found",
    [
        (
            (*DROP_TRIGGERS, "UPDATE audit_record SET user = 'someone else' WHERE seq = 3"),
            "record 3: its content",
        ),
        (
            (*DROP_TRIGGERS, "UPDATE audit_record SET at = '2020-01-01T00:00:00+00:00' WHERE seq = 1"),
            "record 1: its content",
        ),
        ((*DROP_TRIGGERS, "DELETE FROM audit_record WHERE seq = 2"), "record(s) 2 missing"),
        (
            (*DROP_TRIGGERS, "DELETE FROM audit_record WHERE seq >= 4"),
            "records 4–5 were written and are gone",
        ),
        # A removed record whose successor's links are rewritten to hide the gap: the hashes no longer match.
        (
            (
                *DROP_TRIGGERS,
                "DELETE FROM audit_record WHERE seq = 2",
                "UPDATE audit_record SET seq = seq - 1 WHERE seq > 2",
                "UPDATE audit_record SET prev_hash = (SELECT hash FROM audit_record WHERE seq = 1) WHERE seq = 2",
                "UPDATE sqlite_sequence SET seq = 4 WHERE name = 'audit_record'",
            ),
            "record 2: its content",
        ),
    ],
    ids=["edited user", "edited time", "removed record", "removed tail", "removed and relinked"],
)
def test_tampering_is_found_by_verify(trail, capsys, statements, found):
    _five(trail)
    _tamper(trail.path, *statements)
    result = trail.verify()
    assert not result.ok
    assert any(found in p for p in result.problems), result.problems
    assert any("trigger audit_record_no_update is missing" in p for p in result.problems)
    assert main(["audit", "--verify"]) == 1
    err = capsys.readouterr().err
    assert found in err and "has been tampered with" in err


def test_a_trail_with_its_triggers_restored_still_shows_the_edit(trail):
    _five(trail)
    _tamper(
        trail.path,
        "DROP TRIGGER audit_record_no_update",
        "UPDATE audit_record SET detail = 'nothing to see' WHERE seq = 4",
        "CREATE TRIGGER audit_record_no_update BEFORE UPDATE ON audit_record "
        "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
    )
    assert trail.verify().problems == ["record 4: its content does not match its hash (altered)"]


def test_an_intact_trail_verifies_with_its_last_hash(trail, capsys):
    _five(trail)
    assert main(["audit", "--verify"]) == 0
    out = capsys.readouterr().out
    assert "intact, 5 record(s)" in out and trail.records()[-1]["hash"] in out


def test_nothing_more_is_written_to_a_trail_whose_triggers_were_dropped(trail):
    _five(trail)
    _tamper(trail.path, "DROP TRIGGER audit_record_no_delete")
    with pytest.raises(AuditError, match="altered outside the application"):
        audit.record("view_client", user="x")
    assert trail.count() == 5


# -- several processes at once -----------------------------------------------------------------------------
def test_concurrent_writers_from_several_processes_keep_one_unbroken_chain(tmp_path):
    path = str(tmp_path / "concurrent.audit.sqlite")
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=append_many, args=(path, w, start)) for w in range(4)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(180)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    log = AuditLog(path)
    result = log.verify()
    assert result.ok, result.problems
    recs = log.records()
    assert [r["seq"] for r in recs] == list(range(1, 101))
    assert sorted(r["episodes"][0] for r in recs) == sorted(
        f"E{w}{i:03d}" for w in range(4) for i in range(25)
    )
    # Each writer's own records are in its own order.
    for w in range(4):
        mine = [r["episodes"][0] for r in recs if r["user"] == f"writer{w}"]
        assert mine == [f"E{w}{i:03d}" for i in range(25)]


# -- nothing can change a record ---------------------------------------------------------------------------
ALTERING = re.compile(r"update|delete|remove|erase|clear|truncate|drop|edit|purge|rewrite|replace|set_|undo")


def test_the_module_offers_no_way_to_change_or_remove_a_record():
    public = [n for n in dir(audit) if not n.startswith("_")]
    methods = [n for n, _ in inspect.getmembers(AuditLog) if not n.startswith("_")]
    assert not [n for n in public + methods if ALTERING.search(n.lower())]
    assert set(methods) == {"beside", "beside_store", "count", "problem", "record", "records", "verify"}
    # The only statements the module runs on records: the INSERT and SELECTs (the triggers abort the rest).
    source = inspect.getsource(audit)
    statements = re.findall(r"\b(?:UPDATE|DELETE|DROP|ALTER|REPLACE)\s+\w+", source)
    assert statements == ["UPDATE ON", "DELETE ON", "UPDATE ON", "DELETE ON"], statements  # the triggers' own


def test_no_application_code_touches_the_audit_tables_except_the_audit_module():
    files = [*sorted((REPO / "alliance").rglob("*.py")), *sorted((REPO / "dashboards").glob("*.ipynb"))]
    files += [*sorted((REPO / "queries").glob("*.sql"))]
    touching = [
        f.relative_to(REPO).as_posix() for f in files if re.search(r"audit_(record|meta)", f.read_text())
    ]
    assert touching == ["alliance/audit.py"]


# -- hostile values ----------------------------------------------------------------------------------------
HOSTILE = {
    "html": "<img src=x onerror=alert(77)>",
    "formula": '=HYPERLINK("http://evil","x")',
    "nul": "C-1\x00DROP",
    "escape": "\x1b[31mred\x1b[0m\nsecond line\r",
    "long": "x" * 100_000,
    "sql": "E1'); DROP TABLE audit_record; --",
}


def test_hostile_values_are_stored_safely_and_printed_inert(trail, capsys, tmp_path):
    for name, value in HOSTILE.items():
        audit.record("view_client", user=value, client=value, episode=value, detail=value, remote=value)
        assert trail.records()[-1]["detail"] == audit.clean(value, audit.MAX_DETAIL), name
    recs = trail.records()
    assert len(recs) == len(HOSTILE) and trail.verify().ok
    nul = recs[2]
    assert nul["user"] == "C-1\\x00DROP" and nul["clients"] == ["C-1\\x00DROP"]
    assert recs[3]["detail"] == "\\x1b[31mred\\x1b[0m\\x0asecond line\\x0d"
    long = recs[4]
    assert len(long["user"]) <= audit.MAX_FIELD and "100,000 characters in all" in long["user"]
    assert len(long["detail"]) <= audit.MAX_DETAIL
    # The table: one line per record, no control character reaches the terminal.
    assert main(["audit"]) == 0
    out = capsys.readouterr().out
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", out)
    assert len(out.splitlines()) == 1 + len(HOSTILE) + 1  # header, records, count
    # The CSV: every value read back as text, never a formula.
    path = tmp_path / "audit.csv"
    assert main(["audit", "--csv", str(path)]) == 0
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(HOSTILE)
    formula = rows[1]
    assert formula["user"] == "'" + HOSTILE["formula"] and formula["detail"] == "'" + HOSTILE["formula"]
    for row in rows:
        for key, cell in row.items():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")) or re.fullmatch(r"-?\d+", cell), key
            assert "\x00" not in cell and "\x1b" not in cell


def test_a_trail_edited_to_hold_raw_control_characters_still_prints_inert(trail, capsys):
    audit.record("view_client", user="u", detail="fine")
    _tamper(
        trail.path,
        "DROP TRIGGER audit_record_no_update",
        "UPDATE audit_record SET detail = char(27) || '[2J'",
    )
    assert main(["audit"]) == 0
    assert "\x1b" not in capsys.readouterr().out


# -- the command -------------------------------------------------------------------------------------------
def test_the_command_filters_by_day_user_client_and_action(trail, capsys):
    audit.record("view_client", user="ann", client="C-1", episode="E1")
    audit.record("view_client", user="bob", client="C-12", episode="E12")
    audit.record("export_pack", user="ann", client=["C-12", "C-3"], episode=["E12", "E3"])
    audit.record("export_csv", user="bob")
    today = dt.datetime.now(dt.UTC).date()

    def shown(*args) -> list[str]:
        assert main(["audit", *args]) == 0
        lines = capsys.readouterr().out.splitlines()
        return [line.split()[0] for line in lines[1:-1]]  # sequence numbers

    assert shown() == ["1", "2", "3", "4"]
    assert shown("--since", today.isoformat()) == ["1", "2", "3", "4"]
    assert shown("--since", (today + dt.timedelta(days=1)).isoformat()) == []
    assert shown("--until", (today - dt.timedelta(days=1)).isoformat()) == []
    assert shown("--user", "ann") == ["1", "3"]
    assert shown("--client", "C-12") == ["2", "3"]  # the pack holds C-12; C-1 is not C-12
    assert shown("--client", "C-1") == ["1"]
    assert shown("--action", "export_csv") == ["4"]
    assert shown("--episode", "E3") == ["3"] and shown("--episode", "E12", "--user", "bob") == ["2"]
    assert shown("--client", "C-1' OR '1'='1") == []  # a bound parameter, not SQL


def test_the_command_without_a_trail_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ALLIANCE_AUDIT", raising=False)
    assert main(["audit", "--db", str(tmp_path / "x.duckdb")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"alliance audit: there is no audit trail at {tmp_path / 'x.audit.sqlite'} (nothing has been recorded there)"
    )
    assert main(["audit", "--db", str(tmp_path / "x.duckdb"), "--verify"]) == 2
    assert not (tmp_path / "x.audit.sqlite").exists()


def test_a_file_that_is_not_a_trail_is_refused_not_written(tmp_path, monkeypatch):
    other = tmp_path / "other.sqlite"
    _tamper(other, "CREATE TABLE t (a)")
    monkeypatch.setenv("ALLIANCE_AUDIT", str(other))
    with pytest.raises(AuditError, match="another application's SQLite file"):
        audit.record("refresh", user="u")
    assert main(["audit"]) == 2


# -- the audited commands ----------------------------------------------------------------------------------
def _csv(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "ratings.csv"
    path.write_text(HEADER + "\n" + body + "\n")
    return path


def test_import_refresh_and_metrics_each_write_one_record(trail, tmp_path, capsys):
    import hashlib

    db = tmp_path / "service.duckdb"
    src = _csv(tmp_path, "C-1,CL01,2026-01-05,1,ORS,18\nC-1,CL01,2026-01-12,2,ORS,21")
    assert main(["import", str(src), "--db", str(db)]) == 0
    [rec] = trail.records()
    assert rec["action"] == "import" and rec["detail"].startswith(
        f"ratings.csv (sha256 {hashlib.sha256(src.read_bytes()).hexdigest()}): Imported"
    )
    assert main(["import", str(src), "--db", str(db), "--dry-run"]) == 0
    assert [r["action"] for r in trail.records()] == ["import", "import"]
    assert "Dry run, nothing written" in trail.records()[-1]["detail"]
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "\nC-1,CL01,2026-01-05,1,ORS,99\n")
    assert main(["import", str(bad), "--db", str(db)]) == 1  # refused, nothing written: nothing recorded
    assert trail.count() == 2
    assert main(["refresh", "--db", str(db), "--as-of", "2026-02-01"]) == 0
    assert trail.records()[-1]["action"] == "refresh" and "as of 2026-02-01" in trail.records()[-1]["detail"]
    assert main(["metrics", "--db", str(db), "--out", str(tmp_path / "out")]) == 0
    assert (
        trail.records()[-1]["action"] == "export_csv"
        and str(tmp_path / "out") in trail.records()[-1]["detail"]
    )
    assert [r["action"] for r in trail.records()] == ["import", "import", "refresh", "export_csv"]
    assert trail.verify().ok
    capsys.readouterr()


def test_commands_are_refused_when_the_trail_cannot_be_written(broken, tmp_path, capsys):
    db = tmp_path / "service.duckdb"
    src = _csv(tmp_path, "C-1,CL01,2026-01-05,1,ORS,18")
    assert main(["import", str(src), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("alliance import: refused: the audit trail") and "is a folder" in err
    assert len(err.splitlines()) == 1 and not db.exists()
    # A database made without the command, then each command that needs a record is refused.
    from alliance.importer import import_csv

    assert import_csv(src, db).ok
    before = db.read_bytes()
    assert main(["refresh", "--db", str(db)]) == 2
    assert "alliance refresh: refused: the audit trail" in capsys.readouterr().err
    assert db.read_bytes() == before
    assert main(["metrics", "--db", str(db), "--out", str(tmp_path / "out")]) == 2
    assert "alliance metrics: refused: the audit trail" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_pack_writes_one_record_naming_its_clients_or_is_not_written(demo_db, trail, tmp_path, monkeypatch):
    from alliance.pack import build_pack
    from alliance.service import Service

    monkeypatch.setenv("ALLIANCE_MARKS", str(tmp_path / "m.sqlite"))
    out = tmp_path / "pack.html"
    agenda = build_pack(Service.open(demo_db), "CL30", AS_OF, out, progress=False)
    [rec] = trail.records()
    assert rec["action"] == "export_pack" and len(agenda) >= 1
    assert rec["clients"] == agenda["client_id"].tolist() and rec["episodes"] == agenda["episode_id"].tolist()
    assert "supervisor CL30" in rec["detail"] and out.exists()
    monkeypatch.setenv("ALLIANCE_AUDIT", str(tmp_path))  # a folder: cannot be written
    out2 = tmp_path / "pack2.html"
    assert (
        main(
            [
                "pack",
                "--supervisor",
                "CL30",
                "--date",
                AS_OF.isoformat(),
                "--out",
                str(out2),
                "--db",
                str(demo_db),
            ]
        )
        == 2
    )
    assert not out2.exists()


# -- discussed-marks ---------------------------------------------------------------------------------------
def test_marking_and_undoing_each_write_one_record_first(tmp_path, monkeypatch):
    monkeypatch.delenv("ALLIANCE_AUDIT", raising=False)
    db = tmp_path / "service.duckdb"
    monkeypatch.setenv("ALLIANCE_MARKS", str(tmp_path / "elsewhere" / "m.sqlite"))
    store = MarkStore.beside(db)
    log = AuditLog.beside(db)  # the database's trail, wherever the marks are kept
    mark = store.mark_discussed("E7", "CL08", AS_OF, "review goals")
    [rec] = log.records()
    assert (rec["action"], rec["episodes"]) == ("mark_discussed", ["E7"])
    assert "supervisor CL08" in rec["detail"] and "review goals" in rec["detail"]
    assert store.undo(mark) is True
    assert [r["action"] for r in log.records()] == ["mark_discussed", "unmark"]
    assert log.records()[-1]["episodes"] == ["E7"]
    assert store.undo(mark) is False  # nothing to undo: nothing recorded
    assert log.count() == 2


def test_a_mark_is_refused_when_the_trail_cannot_be_written(broken, tmp_path):
    store = MarkStore(tmp_path / "service.marks.sqlite")
    with pytest.raises(AuditError, match="is a folder"):
        store.mark_discussed("E7", "CL08", AS_OF, "review goals")
    assert store.count() == 0


# -- the pages (in process; tests/served/test_audit_served.py does the same against `panel serve`) -----------
def _other_episode(service, info: dict) -> tuple[str, str]:
    """Another client's episode, in the viewer's scope."""
    episodes = service.scoped_episodes()
    other = episodes[episodes["client_id"] != info["client_id"]].iloc[0]
    return str(other["client_id"]), str(other["episode_id"])


def test_the_client_page_records_each_episode_once_when_it_is_shown(demo_db, trail):
    from alliance.pages import ClientPage
    from alliance.service import Service

    service = Service.open(demo_db)
    page = ClientPage(service=service)
    assert not trail.path.exists()  # built, not shown yet
    page.page()
    first = dict(page.selection.episode_info)
    assert [(r["action"], r["clients"], r["episodes"]) for r in trail.records()] == [
        ("view_client", [first["client_id"]], [first["episode_id"]])
    ]
    client, episode = _other_episode(service, first)
    page.selection.open(client, episode)
    assert page.selection.episode == episode
    page.selection.open(client, episode)  # the same episode published again (a cascade): no new record
    page.selection.x_axis = "date"  # the same episode redrawn: no new record
    page.selection.breakdown = "items as lines"
    assert [r["episodes"] for r in trail.records()] == [[first["episode_id"]], [episode]]
    page.selection.open(first["client_id"], first["episode_id"])  # shown again: recorded again
    assert [r["episodes"][0] for r in trail.records()] == [first["episode_id"], episode, first["episode_id"]]
    assert trail.verify().ok


def test_the_client_page_shows_a_refusal_not_the_episode_when_the_trail_cannot_be_written(
    demo_db, broken, monkeypatch
):
    from alliance.pages import ClientPage
    from alliance.service import Service

    service = Service.open(demo_db)
    page = ClientPage(service=service)
    page.page()
    [shown] = page.episode_view.objects
    assert shown.name == "audit-refusal" and "cannot be written" in shown.object
    # (the one object shown: no summary, notes, charts or methods)
    # Once the trail can be written again, the next episode chosen is recorded and shown.
    trail = AuditLog(broken.parent / "again.audit.sqlite")
    monkeypatch.setenv("ALLIANCE_AUDIT", str(trail.path))
    client, episode = _other_episode(service, page.selection.episode_info)
    page.selection.open(client, episode)
    assert [r["episodes"] for r in trail.records()] == [[episode]]
    objects = page.episode_view.objects
    assert objects[0] is page.summary and len(objects) == 4  # summary, notes, charts, methods
    assert not [o for o in objects if o.name == "audit-refusal"]
    assert f"episode {episode}" in page.summary.object


def test_the_meeting_page_records_a_client_opened_in_place_or_refuses_it(
    demo_db, trail, tmp_path, monkeypatch
):
    from alliance.pages import MeetingPage
    from alliance.service import Service

    monkeypatch.setenv("ALLIANCE_MARKS", str(tmp_path / "m.sqlite"))
    service = Service.open(demo_db)
    page = MeetingPage(service=service)
    client, episode = _other_episode(service, {"client_id": ""})
    page.open_client(client, episode)
    assert page.client_view.visible
    assert [(r["action"], r["clients"], r["episodes"], r["detail"]) for r in trail.records()] == [
        ("view_client", [client], [episode], "meeting")
    ]
    page.open_client(client, episode)  # still open: not a new view
    assert trail.count() == 1
    page._show_agenda()
    page.open_client(client, episode)  # shown again
    assert trail.count() == 2
    page._show_agenda()
    monkeypatch.setenv("ALLIANCE_AUDIT", str(tmp_path))  # a folder: cannot be written
    page.open_client(client, episode)
    assert (
        not page.client_view.visible and page.message.visible and "cannot be written" in page.message.object
    )
