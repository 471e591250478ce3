"""The supervision meeting: the agenda puts the planted events of a supervisor's team at the top, marks
persist and survive concurrent writers, a discussed client not worse since moves down, and the meeting pack is
one self-contained HTML file with every agenda client's charts."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import re

import duckdb
import pandas as pd
import pytest

from alliance.agenda import meeting_agenda, metrics_until, supervisors
from alliance.caseload import caseload_table
from alliance.clinical import ClinicalMetrics, MetricSettings
from alliance.db import Database
from alliance.flags import BY_KEY
from alliance.marks import MarkError, MarkStore, marks_path
from alliance.scope import Scope
from alliance.service import Service
from alliance.state import forget_service_metrics
from tests.conftest import AS_OF

#: Reasons ranked at or above an unrepaired rupture (docs/methods.md §11): deterioration, red, rupture.
TOP_RANKS = BY_KEY["unrepaired_rupture"].rank


@pytest.fixture(scope="module")
def metrics(demo_db):
    database = Database(demo_db)  # its own connection: the autouse fixture closes the shared ones
    yield ClinicalMetrics(Service(database, Scope.full_access()), MetricSettings(as_of=AS_OF))
    database.close()


def _planted(db, kind: str) -> pd.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT p.episode_id, p.session_number, s.session_date, t.supervisor_id "
            "FROM planted_events p JOIN session s USING (episode_id, session_number) "
            "JOIN clinician c ON c.clinician_id = p.clinician_id JOIN team t USING (team_id) "
            "WHERE p.event_type = ? AND p.clinician_id <> t.supervisor_id ORDER BY p.episode_id",
            [kind],
        ).df()
    finally:
        con.close()


def _check_top(agenda: pd.DataFrame, episode_id: str, reason: str) -> None:
    """On the agenda with ``reason``, within its supervisee's first N rows, N = that supervisee's rows whose
    strongest reason is deterioration, not on track (red) or unrepaired rupture (ranks 1–3, which include the
    planted ones). Ranks restart at 1 for each supervisee."""
    row = agenda[agenda["episode_id"] == episode_id]
    assert len(row) == 1, f"{episode_id} is not on the agenda"
    assert reason in {r["reason"] for r in row["reasons"].iloc[0]}, row["reasons_text"].iloc[0]
    theirs = agenda[agenda["supervisee"] == row["supervisee"].iloc[0]]
    n_top = int((theirs["top_rank"] <= TOP_RANKS).sum())
    assert int(row["rank"].iloc[0]) <= n_top, (episode_id, int(row["rank"].iloc[0]), n_top)


def test_planted_deteriorations_open_today_top_the_agenda(metrics, demo_db):
    table = caseload_table(metrics).set_index("episode_id")
    planted = _planted(demo_db, "deterioration")
    planted = planted[~planted["episode_id"].map(table["closed"]).astype(bool)]
    assert len(planted) >= 5
    for supervisor, rows in planted.groupby("supervisor_id"):
        agenda = meeting_agenda(metrics, supervisor, AS_OF)
        for eid in rows["episode_id"].unique():
            _check_top(agenda, eid, "deterioration")


def test_planted_unrepaired_ruptures_top_the_agenda_a_week_later(metrics, demo_db):
    """Every planted unrepaired rupture of a team, at a meeting a week after it (the demo's ruptures are all
    in episodes closed by 'today', so the agenda is taken as it stood then)."""
    planted = _planted(demo_db, "rupture_unrepaired")
    checked = 0
    for r in planted.itertuples():
        day = (pd.Timestamp(r.session_date) + pd.Timedelta(days=7)).date()
        then = metrics_until(metrics, day)
        end = then.episode_end.set_index("episode_id")
        if r.episode_id not in end.index or bool(end.loc[r.episode_id, "closed"]):
            continue  # ended within the week: not on a meeting agenda of open episodes
        _check_top(meeting_agenda(metrics, r.supervisor_id, day), r.episode_id, "unrepaired_rupture")
        checked += 1
    assert checked >= 10, f"only {checked} planted unrepaired ruptures were open a week later"


#: A date as read aloud: "28 Oct", or "28 Oct 2025" outside the meeting's year.
SAID = r"\b\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b"


def test_reasons_are_in_words_with_session_and_date(metrics):
    agenda = meeting_agenda(metrics, supervisors(metrics.service)[0], AS_OF)
    assert len(agenda) and agenda["supervisee"].nunique() >= 2
    # Each supervisee's clients together, ranked 1, 2, 3, … strongest reason first (nothing discussed yet).
    seen: list[str] = []
    for who, rows in agenda.groupby("supervisee", sort=False):
        assert who not in seen
        seen.append(who)
        assert rows.index.tolist() == list(range(rows.index[0], rows.index[0] + len(rows))), "not together"
        assert rows["rank"].tolist() == list(range(1, len(rows) + 1))
        assert rows["top_rank"].is_monotonic_increasing
    # Supervisees in the order of their most urgent client.
    firsts = agenda.groupby("supervisee", sort=False)["top_rank"].min().tolist()
    assert firsts == sorted(firsts)
    for row in agenda.itertuples():
        assert re.search(SAID, row.headline), row.headline
        for r in row.reasons:
            assert r["words"] and r["label"] == BY_KEY[r["reason"]].label
            assert r["session"] is not None and not pd.isna(r["date"])
            assert "session" in r["words"]
            # The date it arose, in words a supervisor reads aloud, inside the sentence (not a trailing date).
            d = pd.Timestamp(r["date"])
            spoken = f"{d.day} {d:%b}" + ("" if d.year == AS_OF.year else f" {d.year}")
            if r["reason"] == "no_recent_session":  # dated when the 21 days ran out; it says the last visit
                assert re.match(rf"^no session for \d+ days, last seen {SAID}", r["words"]), r["words"]
            else:
                assert spoken in r["words"], (spoken, r["words"])
            assert not re.search(r"\(\d{2} \w{3} \d{4}\)$", r["words"]), r["words"]
    assert agenda["episode_id"].is_unique


def test_rupture_reason_reads_like_a_sentence(metrics, demo_db):
    planted = _planted(demo_db, "rupture_unrepaired").iloc[0]
    day = (pd.Timestamp(planted.session_date) + pd.Timedelta(days=7)).date()
    agenda = meeting_agenda(metrics, planted.supervisor_id, day)
    words = [r["words"] for rs in agenda["reasons"] for r in rs if r["reason"] == "unrepaired_rupture"]
    assert words
    pattern = r"^(SRS|WAI-SR) fell from [\d.]+ to [\d.]+ at session \d+ .*— rupture, (not repaired by|still open at) session \d+"
    assert all(re.match(pattern, w) for w in words), words


# -- marks ----------------------------------------------------------------------------------------------
def test_marks_survive_reopening_and_refuse_long_notes(tmp_path):
    path = tmp_path / "demo.marks.sqlite"
    MarkStore(path).mark_discussed("E000001", "CL08", dt.date(2026, 11, 1), "try eliciting feedback on goals")
    again = MarkStore(path).marks_for(["E000001", "E000002"])
    assert again[["episode_id", "supervisor_id", "action_note"]].values.tolist() == [
        ["E000001", "CL08", "try eliciting feedback on goals"]
    ]
    assert again["meeting_date"].iloc[0] == pd.Timestamp("2026-11-01")
    with pytest.raises(MarkError, match="200"):
        MarkStore(path).mark_discussed("E000001", "CL08", dt.date(2026, 11, 1), "x" * 201)
    with pytest.raises(MarkError):
        MarkStore(path).mark_discussed("", "CL08", dt.date(2026, 11, 1))
    # Bound parameters: a hostile-looking code is stored as text, nothing else happens.
    MarkStore(path).mark_discussed("E1'); DROP TABLE discussed_mark; --", "CL08", "2026-11-01")
    assert MarkStore(path).count() == 2


def test_marks_path_beside_the_database(tmp_path, monkeypatch):
    monkeypatch.delenv("ALLIANCE_MARKS", raising=False)
    assert marks_path(tmp_path / "service.duckdb") == tmp_path / "service.marks.sqlite"
    monkeypatch.setenv("ALLIANCE_MARKS", str(tmp_path / "elsewhere.sqlite"))
    assert marks_path(tmp_path / "service.duckdb") == tmp_path / "elsewhere.sqlite"


def _mark_many(path: str, writer: int, start) -> None:
    start.wait()
    store = MarkStore(path)
    for i in range(50):
        store.mark_discussed(f"E{writer}{i:04d}", f"CL{writer:02d}", dt.date(2026, 11, 1), f"action {i}")


def test_concurrent_marking_from_two_processes(tmp_path):
    path = str(tmp_path / "concurrent.marks.sqlite")
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_mark_many, args=(path, w, start)) for w in (1, 2)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    store = MarkStore(path)
    assert store.count() == 100
    ids = [f"E{w}{i:04d}" for w in (1, 2) for i in range(50)]
    assert sorted(store.marks_for(ids)["episode_id"]) == sorted(ids)


# -- discussed and not worse moves down -----------------------------------------------------------------
def test_discussed_and_not_worse_moves_down(metrics, tmp_path):
    supervisor = supervisors(metrics.service)[0]
    agenda = meeting_agenda(metrics, supervisor, AS_OF)
    assert len(agenda) >= 3
    top = agenda.iloc[0]
    store = MarkStore(tmp_path / "m.sqlite")
    store.mark_discussed(top["episode_id"], supervisor, AS_OF, "review goals together")
    next_meeting = AS_OF + dt.timedelta(days=14)
    later = meeting_agenda(metrics, supervisor, next_meeting, store.marks_for(agenda["episode_id"]))
    row = later.set_index("episode_id").loc[top["episode_id"]]
    assert bool(row["discussed_not_worse"])
    assert row["last_discussed"] == pd.Timestamp(AS_OF) and row["last_action"] == "review goals together"
    theirs = later[later["supervisee"] == row["supervisee"]]
    assert int(row["rank"]) == len(theirs)  # the only discussed client: last of its supervisee
    assert int(row["sessions_since_discussed"]) == 0  # the data end at AS_OF: no session since
    # At the meeting where it was discussed it keeps its place, marked (the order changes next time).
    same = meeting_agenda(metrics, supervisor, AS_OF, store.marks_for(agenda["episode_id"]))
    assert same["episode_id"].tolist() == agenda["episode_id"].tolist()
    today = same.set_index("episode_id").loc[top["episode_id"]]
    assert bool(today["discussed_today"]) and today["today_action"] == "review goals together"
    assert pd.isna(today["last_discussed"]) and not today["discussed_not_worse"]
    # A mark from a meeting after this one does not count; a reason newer than the mark keeps it up.
    before = meeting_agenda(
        metrics, supervisor, AS_OF - dt.timedelta(days=1), store.marks_for([top.episode_id])
    )
    assert not before.set_index("episode_id").loc[top["episode_id"], "discussed_not_worse"]
    old = pd.DataFrame(
        {
            "episode_id": [top["episode_id"]],
            "supervisor_id": [supervisor],
            "meeting_date": [pd.Timestamp(top["latest_reason_date"]) - pd.Timedelta(days=1)],
            "action_note": [""],
            "marked_at": ["2026-01-01T00:00:00"],
        }
    )
    worse = meeting_agenda(metrics, supervisor, AS_OF, old)
    row = worse.set_index("episode_id").loc[top["episode_id"]]
    assert not row["discussed_not_worse"] and int(row["rank"]) == 1


# -- the pack: the file itself is tested in tests/unit/test_pack.py; here, the command ------------------
def test_cli_pack_writes_html(demo_db, tmp_path, monkeypatch):
    from alliance.cli import main

    forget_service_metrics()
    monkeypatch.setenv("ALLIANCE_MARKS", str(tmp_path / "m.sqlite"))
    out = tmp_path / "cli-pack.html"
    assert (
        main(
            ["pack", "--supervisor", "CL30", "--date", "2026-11-01", "--out", str(out), "--db", str(demo_db)]
        )
        == 0
    )
    assert out.stat().st_size > 100_000


def test_cli_pack_refuses_an_unknown_supervisor(demo_db, tmp_path, capsys):
    from alliance.cli import main

    out = tmp_path / "none.html"
    assert main(["pack", "--supervisor", "NOBODY", "--out", str(out), "--db", str(demo_db)]) == 2
    assert "no team has supervisor 'NOBODY'" in capsys.readouterr().err
    assert not out.exists()
