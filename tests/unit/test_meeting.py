"""The supervision meeting: the agenda puts the planted events of a supervisor's team at the top, marks
persist and survive concurrent writers, a discussed client not worse since moves down, and the meeting pack is
one self-contained HTML file with every agenda client's charts."""

from __future__ import annotations

import datetime as dt
import html
import json
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
    """On the agenda with ``reason``, within the first N rows, N = rows whose strongest reason is
    deterioration, not on track (red) or unrepaired rupture (ranks 1–3, which include the planted ones)."""
    row = agenda[agenda["episode_id"] == episode_id]
    assert len(row) == 1, f"{episode_id} is not on the agenda"
    assert reason in {r["reason"] for r in row["reasons"].iloc[0]}, row["reasons_text"].iloc[0]
    n_top = int((agenda["top_rank"] <= TOP_RANKS).sum())
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


def test_reasons_are_in_words_with_session_and_date(metrics):
    agenda = meeting_agenda(metrics, supervisors(metrics.service)[0], AS_OF)
    assert len(agenda) and agenda["rank"].tolist() == list(range(1, len(agenda) + 1))
    assert agenda["top_rank"].is_monotonic_increasing  # nothing discussed yet: strongest reason first
    for reasons in agenda["reasons"]:
        for r in reasons:
            assert r["words"] and r["label"] == BY_KEY[r["reason"]].label
            assert r["session"] is not None and not pd.isna(r["date"])
            assert "session" in r["words"]
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
    assert int(row["rank"]) == len(later)  # the only discussed client: last
    assert later.iloc[0]["episode_id"] == agenda.iloc[1]["episode_id"]
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


# -- the pack -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pack(demo_db, tmp_path_factory):
    from alliance.pack import build_pack

    out = tmp_path_factory.mktemp("pack") / "pack.html"
    forget_service_metrics()
    service = Service.open(demo_db)
    supervisor = supervisors(service)[-1]
    agenda = build_pack(
        service, supervisor, AS_OF, out, MarkStore(out.with_suffix(".sqlite")), progress=False
    )
    return out, agenda, supervisor


def _pack_models(text: str) -> dict[str, dict]:
    """Every Bokeh model embedded in the pack (its one JSON document, HTML-escaped in its script), by id."""
    scripts = re.findall(r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>', text, re.S)
    assert len(scripts) == 1, "the pack embeds one Bokeh document"
    (doc,) = json.loads(html.unescape(scripts[0])).values()
    index: dict[str, dict] = {}

    def walk(o) -> None:
        if isinstance(o, dict):
            if o.get("type") == "object" and "id" in o:
                index[o["id"]] = {"attributes": {}, **o}
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(doc["roots"])
    return index


def _within(model: dict, index: dict[str, dict]) -> list[dict]:
    """``model`` and every model below it (references by id resolved)."""
    seen: set[str] = set()
    stack: list = [model]
    out: list[dict] = []
    while stack:
        o = stack.pop()
        if isinstance(o, dict):
            if o.get("type") == "object" and "id" in o or set(o) == {"id"}:  # a model or a reference to one
                if o["id"] in seen:
                    continue
                seen.add(o["id"])
                full = index[o["id"]]
                out.append(full)
                stack.extend(full["attributes"].values())
            else:
                stack.extend(o.values())
        elif isinstance(o, list):
            stack.extend(o)
    return out


def _n_rows(source: dict) -> int:
    """Rows of a serialized ColumnDataSource (its columns are a map of arrays or lists)."""
    data = source["attributes"]["data"]
    columns = data["entries"] if data.get("type") == "map" else list(data.items())
    return max((c["shape"][0] if isinstance(c, dict) else len(c) for _, c in columns), default=0)


def test_pack_is_self_contained_with_every_agenda_clients_chart(pack, metrics):
    out, agenda, supervisor = pack
    text = out.read_text(encoding="utf-8")
    # The pack holds the agenda of its supervisor's meeting, as the agenda API gives it (no marks yet).
    expected = meeting_agenda(metrics, supervisor, AS_OF)
    assert len(expected) >= 3
    assert agenda["episode_id"].tolist() == expected["episode_id"].tolist()
    assert agenda["client_id"].tolist() == expected["client_id"].tolist()

    # Nothing is fetched from the network: no remote script, style sheet, image, CSS import or url().
    assert not re.findall(r"<(?:script|img|iframe|source)\b[^>]*\bsrc\s*=\s*[\"']?https?:", text, re.I)
    assert not re.findall(r"<link\b[^>]*\bhref\s*=\s*[\"']?https?:", text, re.I)
    assert not re.findall(r"@import\s+(?:url\()?\s*[\"']?https?:", text, re.I)
    assert not re.findall(r"url\(\s*[\"']?https?:", text, re.I)
    assert "cdn.holoviz.org/panel" not in text
    index = _pack_models(text)
    remote = {
        u for m in index.values() for u in re.findall(r"https?://[^\s\"'\\]+", json.dumps(m["attributes"]))
    }
    assert not remote, f"models of the pack load {sorted(remote)}"  # e.g. stylesheets by URL

    # The agenda at the top names every client (a link to its section) ...
    texts = [html.unescape(t) for m in index.values() if isinstance(t := m["attributes"].get("text"), str)]
    heads = [t for t in texts if t.startswith(f"<h1>Supervision meeting · {supervisor} · ")]
    assert len(heads) == 1, "the pack opens with its supervisor's agenda"
    agenda_text = heads[0]
    assert f"{len(agenda)} client(s) on the agenda" in agenda_text
    # ... and each agenda client has its own section, with its heading and its charts: one linked grid of the
    # three client-page figures (outcome, alliance, events strip), drawing data.
    sections = {
        m["attributes"]["name"].removeprefix("pack-client-"): m
        for m in index.values()
        if str(m["attributes"].get("name", "")).startswith("pack-client-")
    }
    assert sorted(sections) == sorted(agenda["episode_id"]), "one section per agenda client, no other"
    for r in agenda.itertuples():
        assert f'<a href="#{r.episode_id}">Client {r.client_id} · episode {r.episode_id}</a>' in agenda_text
        below = _within(sections[r.episode_id], index)
        names = [m["name"] for m in below]
        assert names.count("GridPlot") == 1 and names.count("Figure") == 3, (r.episode_id, names)
        panes = " ".join(html.unescape(t) for m in below if isinstance(t := m["attributes"].get("text"), str))
        assert f"<h3>Client {r.client_id} · episode {r.episode_id}</h3>" in panes, r.episode_id
        drawn = [_n_rows(m) for m in below if m["name"] == "ColumnDataSource"]
        assert max(drawn, default=0) >= 1, f"the charts of {r.episode_id} draw nothing"


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
