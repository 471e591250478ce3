"""On a served page, a filter of the comparison page and another supervisor, supervisee or meeting date on the
meeting page show the loading indicator first and do their work at the server's next turn (``HandsOver``:
``defer`` set as a served page sets it). Several changes before the work runs are done by one run, with the
last choices; without ``defer`` (a notebook, a page being built) the work is done at once."""

from __future__ import annotations

import pytest

from alliance.pages import ComparisonPage, MeetingPage
from alliance.service import Service


def _hand_to(handed: list):
    return lambda work: handed.append(work) or True


@pytest.fixture
def comparison(demo_db) -> ComparisonPage:
    return ComparisonPage(service=Service.open(demo_db))


@pytest.fixture
def meeting(demo_db, tmp_path, monkeypatch) -> MeetingPage:
    monkeypatch.setenv("ALLIANCE_MARKS", str(tmp_path / "marks.sqlite"))
    monkeypatch.setenv("ALLIANCE_AUDIT", str(tmp_path / "audit.sqlite"))
    return MeetingPage(service=Service.open(demo_db))


def test_a_comparison_filter_shows_the_indicator_then_one_computation(comparison):
    state, handed = comparison.state, []
    state.defer = _hand_to(handed)
    teams = [t for t in state.param.team.objects if t != "all teams"]
    before = state.revision
    team_codes = set(state.frames["table"]["team_id"])
    assert len(team_codes) > 1, "the demo's comparison spans several teams"

    state.team = teams[0]
    state.minimum = 3
    assert state.busy and comparison.content.loading, "the indicator at once"
    assert len(handed) == 1 and state.revision == before, "one run waits for the server's next turn"

    handed.pop()()
    assert state.revision == before + 1 and not state.busy and not comparison.content.loading
    assert set(state.frames["table"]["team_id"]) == {teams[0]}, "computed with the last choices"
    table = state.frames["table"]
    assert (table["eligible"] == (table["closed"] >= 3)).all(), "and the last minimum"


def test_without_defer_a_comparison_filter_computes_at_once(comparison):
    state = comparison.state
    state.defer = None
    teams = [t for t in state.param.team.objects if t != "all teams"]
    state.team = teams[0]
    assert not state.busy and set(state.frames["table"]["team_id"]) == {teams[0]}


def test_another_supervisor_or_supervisee_shows_the_indicator_then_the_agenda(meeting):
    state, handed = meeting.state, []
    state.defer = _hand_to(handed)
    first, other = state.supervisor, next(s for s in state.param.supervisor.objects if s != state.supervisor)
    agenda = state.agenda

    state.supervisor = other
    assert state.busy and meeting.board_column.loading and state.agenda is agenda and len(handed) == 1
    handed.pop()()
    assert not state.busy and not meeting.board_column.loading
    assert f"Agenda for {other}" in meeting.title.object and first not in meeting.title.object

    supervisee = state.param.supervisee.objects[1]
    state.supervisee = supervisee
    assert state.busy and meeting.board_column.loading and len(handed) == 1
    handed.pop()()
    assert not state.busy and not meeting.board_column.loading
    assert set(state.agenda["supervisee"]) <= {supervisee}
