""" "Open charts" on a served meeting page shows the loading indicator first and does its work at the server's
next turn (``MeetingPage.defer``, ``alliance.pages.later`` when served): on the board for the first client, on
the charts while they are open (not on "Back to the agenda", which stays clickable meanwhile); each indicator
is gone once the work has run."""

from __future__ import annotations

import pytest

from alliance.pages import MeetingPage
from alliance.service import Service


@pytest.fixture
def page(demo_db, tmp_path, monkeypatch) -> MeetingPage:
    monkeypatch.setenv("ALLIANCE_MARKS", str(tmp_path / "marks.sqlite"))
    monkeypatch.setenv("ALLIANCE_AUDIT", str(tmp_path / "audit.sqlite"))
    page = MeetingPage(service=Service.open(demo_db))
    assert page.state.agenda is not None and len(page.state.agenda) >= 2, "the demo's agenda has clients"
    return page


def test_open_charts_shows_the_indicator_then_the_client(page):
    handed: list = []
    page.defer = lambda work: handed.append(work) or True
    first, second = page.state.agenda.iloc[0], page.state.agenda.iloc[1]

    page.open_client(first["client_id"], first["episode_id"])
    assert len(handed) == 1 and page.board_column.loading, "the board shows the indicator at once"
    assert not page.client_view.visible and page.selection is None, "nothing built yet"
    handed.pop()()
    assert page.client_view.visible and page.selection.episode == first["episode_id"]
    assert not page.board_column.loading and not page.client_body.loading

    page.open_client(second["client_id"], second["episode_id"])  # the next client, charts open
    assert len(handed) == 1 and page.client_body.loading and not page.board_column.loading
    assert not page.client_view.loading and page.back not in page.client_body.objects, (
        "the indicator covers the charts, not the way back to the agenda"
    )
    assert page.selection.episode == first["episode_id"]
    handed.pop()()
    assert page.selection.episode == second["episode_id"] and f"episode {second['episode_id']}" in (
        page.summary.object
    )
    assert not page.client_body.loading

    page.open_client(second["client_id"], second["episode_id"])  # the same client again: nothing to swap
    handed.pop()()
    assert not page.client_body.loading, "an open with nothing to swap in leaves no indicator spinning"


def test_back_to_the_agenda_overtakes_an_open_still_waiting(page):
    """Under load an open (a key press moving the focus, "Open charts") may run after "Back to the agenda"
    was pressed: it must not show the charts again, nor record a view, and the latest open wins."""
    handed: list = []
    page.defer = lambda work: handed.append(work) or True
    first, second = page.state.agenda.iloc[0], page.state.agenda.iloc[1]
    page.open_client(first["client_id"], first["episode_id"])
    handed.pop()()
    assert page.client_view.visible

    page.open_client(second["client_id"], second["episode_id"])  # asked for, still waiting
    page._show_agenda()  # "Back to the agenda" pressed meanwhile
    handed.pop()()
    assert not page.client_view.visible, "the waiting open showed the charts again"
    assert page.selection.episode == first["episode_id"], "an overtaken open built its client"

    page.open_client(first["client_id"], first["episode_id"])
    page.open_client(second["client_id"], second["episode_id"])
    for work in [handed.pop(0), handed.pop(0)]:
        work()
    assert page.client_view.visible and page.selection.episode == second["episode_id"]
    assert not page.client_body.loading and not page.board_column.loading


def test_outside_a_served_session_open_charts_works_at_once(page):
    first = page.state.agenda.iloc[0]
    page.open_client(first["client_id"], first["episode_id"])
    assert page.client_view.visible and page.selection.episode == first["episode_id"]
    assert not page.board_column.loading and not page.client_body.loading


def test_discussed_undo_and_follow_up_show_the_indicator_then_the_board(page):
    """A mark is written and the agenda re-read (about 0.2 s at service scale, longer under load): the board
    shows the indicator at once, and the refreshed board ends it."""
    handed: list = []
    page.defer = lambda work: handed.append(work) or True
    episode = page.state.agenda.iloc[0]["episode_id"]

    page._act({"action": "discussed", "episode": episode, "note": "ask for feedback"})
    assert len(handed) == 1 and page.board_column.loading, "the indicator at once"
    assert not page.state.agenda.set_index("episode_id").loc[episode, "discussed_today"], "not written yet"
    handed.pop()()
    assert not page.board_column.loading
    assert page.state.agenda.set_index("episode_id").loc[episode, "discussed_today"]

    page._act({"action": "undo", "episode": episode})
    assert len(handed) == 1 and page.board_column.loading
    handed.pop()()
    assert not page.board_column.loading
    assert not page.state.agenda.set_index("episode_id").loc[episode, "discussed_today"]

    page._act({"action": "followup", "episode": episode, "value": "done"})  # nothing to follow up here
    assert len(handed) == 1 and page.board_column.loading
    handed.pop()()
    assert not page.board_column.loading, "a follow-up with nothing to record leaves no indicator"


def test_a_mark_that_cannot_be_written_ends_the_indicator_with_its_message(page, monkeypatch):
    from alliance.marks import MarkError

    handed: list = []
    page.defer = lambda work: handed.append(work) or True

    def refuse(*args):
        raise MarkError("the note is too long")

    monkeypatch.setattr(page.state, "mark", refuse)
    page.discussed(page.state.agenda.iloc[0]["episode_id"], "x")
    handed.pop()()
    assert not page.board_column.loading and page.message.visible
    assert "too long" in page.message.object
