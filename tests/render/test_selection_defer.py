"""A choice on a served client page shows the loading indicator first and does its work at the server's next
turn: with ``ClientSelection.defer`` set (as a served page sets it), the choice only marks the selection busy
and hands the cascade over; the story changes when the handed-over work runs, once, and the steps inside a
cascade are never handed over themselves. A page still being built (a deep link) or shown in a notebook works
at once (``alliance.pages.later`` declines)."""

from __future__ import annotations

from alliance.pages import episode_summary, later
from alliance.service import Service
from alliance.state import ClientSelection


def test_a_choice_hands_its_work_over_and_the_work_publishes_once(demo_db):
    selection = ClientSelection(service=Service.open(demo_db))
    handed: list = []
    selection.defer = lambda work: handed.append(work) or True
    builds = []
    selection.param.watch(lambda e: builds.append(e.new), ["story"])
    before, other = selection.client, next(c for c in selection.param.client.objects if c != selection.client)

    selection.client = other
    assert selection.busy, "the indicator's flag is set at once"
    assert len(handed) == 1 and not builds, "the work waits for the server's next turn"
    assert selection.episode_info.get("client_id") == before

    handed.pop()()  # the server's next turn
    assert not handed, "the steps inside the cascade ran in it, not handed over again"
    assert len(builds) == 1 and not selection.busy
    assert selection.episode_info.get("client_id") == other


def test_when_defer_declines_a_choice_does_its_work_at_once(demo_db):
    selection = ClientSelection(service=Service.open(demo_db))
    selection.defer = later  # no served session here: it declines
    other = next(c for c in selection.param.client.objects if c != selection.client)
    selection.client = other
    assert not selection.busy and selection.episode_info.get("client_id") == other


def test_later_declines_outside_a_loaded_served_session():
    ran = []
    assert later(lambda: ran.append(1)) is False
    assert not ran, "declining, it leaves the work to the caller"


def test_a_held_selection_builds_only_the_last_chosen_story_when_released(demo_db):
    """``hold_story`` (a served client page while its frame is built and drawn): choices are made and the
    episode's reads start, but no story is built until ``release_story``, which builds the one chosen last,
    the same story an unheld selection shows; after it, choices build their story at once."""
    service = Service.open(demo_db)
    held = ClientSelection(service=service, hold_story=True)
    builds = []
    held.param.watch(lambda e: builds.append(e.new), ["story"])
    assert held.story_held and held.story is None and held.episode_info == {}
    landing = (held.client, held.episode)
    other = next(c for c in held.param.client.objects if c != held.client)
    held.open(other)  # a link's client, before the page is drawn
    assert held.client == other and held.episode and not builds and not held.busy

    assert held.release_story() is True
    assert len(builds) == 1 and held.episode_info["client_id"] == other
    unheld = ClientSelection(service=service)
    unheld.open(other, held.episode)
    assert episode_summary(held.episode_info, held.story) == episode_summary(
        unheld.episode_info, unheld.story
    )
    assert held.story.methods == unheld.story.methods and held.notes == unheld.notes
    assert held.release_story() is False, "nothing more to build"

    held.open(*landing)  # released: a choice builds its story at once
    assert len(builds) == 2 and held.episode_info["client_id"] == landing[0] and not held.story_held
