"""The meeting agenda as a triage board, on a small team built by hand and imported through `alliance import`:
ranks restart at 1 for each supervisee, reasons read aloud with the date they arose, the header per
supervisee, sessions since last discussed, "discussed" keeping its place during the meeting, last time's
action with its follow-up, what changed since the last meeting, and the marks store's schema migration.
Every expectation is worked out by hand from the ratings written here."""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3

import pandas as pd
import pytest

from alliance.agenda import agenda_day, meeting_agenda, meeting_board, said, since_last_meeting
from alliance.clinical import ClinicalMetrics, MetricSettings
from alliance.db import Database
from alliance.marks import MarkError, MarkStore
from alliance.scope import Scope
from alliance.service import Service

TODAY = dt.date.today()
SUP = "SUP1"


def _weekly(last: dt.date, n: int) -> list[dt.date]:
    return [last - dt.timedelta(days=7 * (n - 1 - i)) for i in range(n)]


#: episode: (client, clinician, session dates, ORS scores, SRS scores). ORS: higher is better (0–40, reliable
#: change about 5 points); SRS cut-off 36.
WORSE_DAYS = _weekly(TODAY - dt.timedelta(days=2), 6)
GONE_LAST = TODAY - dt.timedelta(days=30)  # no session for 30 days: over the 21-day rule
LOW_DAYS = _weekly(TODAY - dt.timedelta(days=3), 5)
EPISODES = {
    # Reliably worse: ORS 26 → 15 (11 points); alliance steady and fine.
    "A-WORSE": ("A-WORSE", "CLA", WORSE_DAYS, [26, 24, 22, 19, 17, 15], [38, 38, 38, 38, 38, 38]),
    # One session 30 days ago, not improved: a dropout risk only.
    "A-GONE": ("A-GONE", "CLA", [GONE_LAST], [20], [38]),
    # Outcome flat, SRS below the cut-off 36 at every rating (so at the last two).
    "B-LOW": ("B-LOW", "CLB", LOW_DAYS, [20, 20, 21, 20, 20], [33, 33, 34, 33, 33]),
    # Nothing to discuss: improving, alliance fine.
    "B-FINE": ("B-FINE", "CLB", _weekly(TODAY - dt.timedelta(days=4), 4), [18, 22, 26, 30], [38, 38, 38, 38]),
}


@pytest.fixture(scope="module")
def team_db(tmp_path_factory):
    from alliance.importer import import_csv

    folder = tmp_path_factory.mktemp("team")
    path = folder / "team.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            ["client_id", "clinician_id", "session_date", "session_number", "instrument", "score"]
            + ["team_id", "supervisor_id"]
        )
        for client, clinician, days, ors, srs in EPISODES.values():
            for n, (day, o, s) in enumerate(zip(days, ors, srs, strict=True), start=1):
                for code, score in (("ORS", o), ("SRS", s)):
                    w.writerow([client, clinician, day.isoformat(), n, code, score, "T1", SUP])
    db = folder / "team.duckdb"
    report = import_csv(path, db)
    assert report.ok, report.summary()
    return db


@pytest.fixture
def metrics(team_db):
    database = Database(team_db)
    yield ClinicalMetrics(Service(database, Scope.full_access()), MetricSettings(as_of=TODAY))
    database.close()


def test_said_reads_a_date_aloud():
    assert said(pd.Timestamp("2026-10-28"), 2026) == "28 Oct"
    assert said(pd.Timestamp("2025-10-03"), 2026) == "3 Oct 2025"
    assert said(pd.NaT, 2026) == "date unknown"


def test_ranks_restart_for_each_supervisee_with_reasons_read_aloud(metrics):
    agenda = meeting_agenda(metrics, SUP, TODAY)
    # By hand: CLA has a deterioration (rank 1 reason) and a dropout risk (rank 7); CLB an alliance below
    # the cut-off (rank 4); B-FINE has no reason. CLA's most urgent client comes first.
    assert agenda[["supervisee", "client_id", "rank"]].values.tolist() == [
        ["CLA", "A-WORSE", 1],
        ["CLA", "A-GONE", 2],
        ["CLB", "B-LOW", 1],
    ]
    rows = agenda.set_index("client_id")
    assert rows.loc["A-WORSE", "top_reason"] == "deterioration"
    assert rows.loc["A-WORSE", "headline"].startswith("ORS reliably worse since ")
    worse = next(r for r in rows.loc["A-WORSE", "reasons"] if r["reason"] == "deterioration")
    last = WORSE_DAYS[-1]
    assert worse["words"].startswith(f"ORS 26 at intake → 15 at session 6 ({said(last, TODAY.year)})")
    days = (TODAY - GONE_LAST).days
    gone = rows.loc["A-GONE", "reasons"]
    assert [r["reason"] for r in gone] == ["no_recent_session"]
    assert gone[0]["words"].startswith(f"no session for {days} days, last seen {said(GONE_LAST, TODAY.year)}")
    assert (
        rows.loc["A-GONE", "headline"]
        == f"no session for {days} days, last seen {said(GONE_LAST, TODAY.year)}"
    )
    assert gone[0]["date"] == pd.Timestamp(GONE_LAST + dt.timedelta(days=21))  # when it arose
    low = next(r for r in rows.loc["B-LOW", "reasons"] if r["reason"] == "below_cutoff")
    first, second = (said(d, TODAY.year) for d in LOW_DAYS[-2:])
    assert low["words"] == (
        f"SRS below the cut-off 36 at the last two ratings: 33 at session 4 ({first}), 33 at session 5 ({second})"
    )
    assert rows.loc["B-LOW", "headline"] == f"SRS below cut-off since {first}"


def test_supervisee_headers_and_courses(metrics):
    board = meeting_board(metrics, SUP, TODAY)
    h = board.headers.set_index("supervisee")
    assert h.loc["CLA", "open_episodes"] == 2 and h.loc["CLA", "flagged"] == 2
    assert h.loc["CLB", "open_episodes"] == 2 and h.loc["CLB", "flagged"] == 1
    # Every session here has both measures: 6 + 1 and 5 + 4 sessions.
    assert h.loc["CLA", "sessions_rated"] == 7 and h.loc["CLA", "completeness"] == 1.0
    assert h.loc["CLB", "sessions_rated"] == 9 and h.loc["CLB", "sessions_complete"] == 9
    assert h["flagged_then"].isna().all() and board.previous is None and board.since is None
    # The sparkline: ORS 26 → 15 on 0–40, higher is better, so 0.65 → 0.375; SRS 38 → 0.95.
    course = (
        board.courses["A-WORSE-1"]
        if "A-WORSE-1" in board.courses
        else board.courses[board.agenda.set_index("client_id").loc["A-WORSE", "episode_id"]]
    )
    assert course["outcome"][0] == (1, 0.65) and course["outcome"][-1] == (6, 0.375)
    assert course["alliance"][-1] == (6, 0.95)
    assert course["outcome_code"] == "ORS" and course["alliance_code"] == "SRS"


def test_discussed_stays_in_place_and_follow_up_is_kept(metrics, tmp_path):
    agenda = meeting_agenda(metrics, SUP, TODAY)
    ids = agenda["episode_id"].tolist()
    worse = agenda.set_index("client_id").loc["A-WORSE", "episode_id"]
    store = MarkStore(tmp_path / "m.sqlite")
    # Discussed at this meeting: same order, marked, with today's note; undo takes it back.
    mark = store.mark_discussed(worse, SUP, TODAY, "ask about the last two weeks")
    now = meeting_agenda(metrics, SUP, TODAY, store.marks_for(ids))
    assert now["episode_id"].tolist() == ids
    row = now.set_index("episode_id").loc[worse]
    assert row["discussed_today"] and row["today_action"] == "ask about the last two weeks"
    assert int(row["today_mark_id"]) == mark
    assert store.undo(mark) and not store.undo(mark)
    again = meeting_agenda(metrics, SUP, TODAY, store.marks_for(ids))
    assert not again.set_index("episode_id").loc[worse, "discussed_today"]

    # Discussed at a meeting 12 days ago (before sessions 5 and 6 of A-WORSE): at today's meeting that is
    # last time, with its action, 2 sessions since, and its follow-up recorded on that mark.
    before = TODAY - dt.timedelta(days=12)
    old = store.mark_discussed(worse, SUP, before, "review goals together")
    row = meeting_agenda(metrics, SUP, TODAY, store.marks_for(ids)).set_index("episode_id").loc[worse]
    assert row["last_action"] == "review goals together" and int(row["last_mark_id"]) == old
    assert row["sessions_since_discussed"] == sum(d > before for d in WORSE_DAYS) == 2
    assert row["followup"] == ""
    assert store.set_followup(old, "not done")
    row = meeting_agenda(metrics, SUP, TODAY, store.marks_for(ids)).set_index("episode_id").loc[worse]
    assert row["followup"] == "not done"
    with pytest.raises(MarkError):
        store.set_followup(old, "maybe")


def test_since_the_last_meeting(metrics, tmp_path):
    agenda = meeting_agenda(metrics, SUP, TODAY)
    ids = agenda["episode_id"].tolist()
    eid = agenda.set_index("client_id")["episode_id"]
    store = MarkStore(tmp_path / "since.sqlite")
    # The last meeting: 20 days ago, when A-WORSE was discussed after its session 3 (ORS 22, 4 points below
    # intake: not yet reliable). Its session 4 (ORS 19, 16 days ago) made it reliably worse.
    last_meeting = TODAY - dt.timedelta(days=20)
    store.mark_discussed(eid["A-WORSE"], SUP, last_meeting, "")
    board = meeting_board(metrics, SUP, TODAY, store.marks_for(ids))
    assert board.previous == last_meeting
    worse = board.since["worse"]
    assert worse["client_id"].tolist() == ["A-WORSE"]  # a reason arose after it was discussed
    # New since then: that deterioration, and A-GONE's 21 days, which ran out 9 days ago; nothing resolved.
    # (B-LOW's outcome status rests on the service's expected course, not worked out here: left aside.)
    new = board.since["new"]
    new = set(zip(new["client_id"], new["reason"], strict=True))
    assert {n for n in new if n[0].startswith("A-")} == {
        ("A-GONE", "no_recent_session"),
        ("A-WORSE", "deterioration"),
    }
    assert ("B-LOW", "below_cutoff") not in new  # below the cut-off then too
    assert board.since["resolved"].empty
    # B-LOW was already below the cut-off then (its SRS was 33, 33 at sessions 1–2 twenty days ago).
    h = board.headers.set_index("supervisee")
    assert (h.loc["CLA", "flagged_then"], h.loc["CLB", "flagged_then"]) == (0, 1)


def _reasons(rows):
    return pd.DataFrame(
        [
            {
                "episode_id": e,
                "reason": k,
                "rank": r,
                "label": k,
                "session": 1,
                "date": pd.Timestamp("2026-11-01"),
                "words": k,
                "short": k,
            }
            for e, k, r in rows
        ]
    )


def test_since_counts_tiers_of_the_outcome_status_once():
    """Red → deterioration is new (worse); yellow → red resolves nothing; red → yellow resolves red and
    adds no new yellow; a rupture that is gone is resolved."""
    episodes = pd.DataFrame(
        {"episode_id": ["E1", "E2", "E3"], "client_id": ["C1", "C2", "C3"], "clinician_id": ["X", "X", "Y"]}
    )
    then = _reasons(
        [
            ("E1", "not_on_track", 2),
            ("E2", "at_risk", 6),
            ("E3", "not_on_track", 2),
            ("E3", "unrepaired_rupture", 3),
        ]
    )
    now = _reasons([("E1", "deterioration", 1), ("E2", "not_on_track", 2), ("E3", "at_risk", 6)])
    agenda = pd.DataFrame(columns=["last_discussed", "discussed_not_worse"])
    since = since_last_meeting(now, then, agenda, episodes)
    assert sorted(zip(since["new"]["episode_id"], since["new"]["reason"], strict=True)) == [
        ("E1", "deterioration"),
        ("E2", "not_on_track"),
    ]
    assert sorted(zip(since["resolved"]["episode_id"], since["resolved"]["reason"], strict=True)) == [
        ("E3", "not_on_track"),
        ("E3", "unrepaired_rupture"),
    ]
    assert since["worse"].empty


def test_marks_schema_migration_keeps_existing_marks(tmp_path):
    path = tmp_path / "old.marks.sqlite"
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE discussed_mark (
            mark_id INTEGER PRIMARY KEY AUTOINCREMENT, episode_id TEXT NOT NULL, supervisor_id TEXT NOT NULL,
            meeting_date TEXT NOT NULL, action_note TEXT NOT NULL DEFAULT '', marked_at TEXT NOT NULL);
        INSERT INTO discussed_mark (episode_id, supervisor_id, meeting_date, action_note, marked_at)
        VALUES ('E1', 'S1', '2026-10-01', 'try a goals form', '2026-10-01T10:00:00+00:00');
        """
    )
    con.commit()
    con.close()
    store = MarkStore(path)
    marks = store.marks_for(["E1"])
    assert marks[["episode_id", "supervisor_id", "action_note", "followup"]].values.tolist() == [
        ["E1", "S1", "try a goals form", ""]
    ]
    assert store.set_followup(int(marks["mark_id"].iloc[0]), "done")
    assert store.marks_for(["E1"])["followup"].tolist() == ["done"]
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    con.close()


def test_meeting_state_marks_undoes_and_records_the_follow_up(team_db, tmp_path):
    from alliance.state import MeetingState

    state = MeetingState(service=Service.open(team_db), store=MarkStore(tmp_path / "state.sqlite"))
    state.meeting_date = TODAY
    order = state.agenda["episode_id"].tolist()
    assert state.supervisor == SUP and len(order) == 3
    first = order[0]
    state.mark(first, "ask about sleep")
    row = state.agenda.set_index("episode_id").loc[first]
    assert row["discussed_today"] and row["today_action"] == "ask about sleep"
    assert state.agenda["episode_id"].tolist() == order  # in place
    assert state.undo(first)
    assert not state.agenda.set_index("episode_id").loc[first, "discussed_today"]
    # Last time's action (a mark two weeks ago) takes its follow-up from this meeting.
    state.store.mark_discussed(first, SUP, TODAY - dt.timedelta(days=14), "try a goals form")
    state.refresh()
    assert state.previous == TODAY - dt.timedelta(days=14) and state.since is not None
    assert state.follow_up(first, "done")
    assert state.agenda.set_index("episode_id").loc[first, "followup"] == "done"
    assert state.store.marks_for([first])["followup"].tolist() == ["done"]


def test_meeting_pages_share_what_a_day_rests_on_and_a_mark_only_reranks(team_db, tmp_path, monkeypatch):
    """What a day's agenda rests on (reasons, caseload rows, session dates, sparklines) is made once per
    process, scope and day: a second session, a mark and last meeting's day reuse it, and the board is the
    same as one made from scratch with the same marks."""
    import alliance.datastore as datastore
    from alliance.state import MeetingState

    datastore.forget_cached_reads()
    made = []

    def counted(scoped, day, reasons=None):
        made.append(day)
        return agenda_day(scoped, day, reasons)

    monkeypatch.setattr(datastore, "agenda_day", counted)
    store = MarkStore(tmp_path / "shared.sqlite")
    earlier = TODAY - dt.timedelta(days=14)
    first = MeetingState(service=Service.open(team_db), store=store, meeting_date=TODAY)
    store.mark_discussed(first.agenda["episode_id"].iloc[0], SUP, earlier, "try a goals form")
    second = MeetingState(service=Service.open(team_db), store=store, meeting_date=TODAY)
    second.mark(second.agenda["episode_id"].iloc[1], "ask about sleep")
    assert second.previous == earlier and second.since is not None
    assert sorted(made) == [earlier, TODAY], "each day made once, whatever the sessions and marks"

    service = Service.open(team_db)
    metrics = ClinicalMetrics(service, MetricSettings())
    ids = second.agenda["episode_id"].tolist()
    fresh = meeting_board(metrics, SUP, TODAY, store.marks_for(ids))
    pd.testing.assert_frame_equal(second.agenda, fresh.agenda)
    pd.testing.assert_frame_equal(second.headers, fresh.headers)
    assert second.courses == fresh.courses and second.since.keys() == fresh.since.keys()
    for key, frame in fresh.since.items():
        pd.testing.assert_frame_equal(second.since[key], frame)
    # Another supervisee shown is another scope: made for it (today and last meeting's day), never answered
    # from the team's.
    second.supervisee = second.param.supervisee.objects[1]
    assert set(second.agenda["supervisee"]) == {second.supervisee} and sorted(made[2:]) == [earlier, TODAY]
