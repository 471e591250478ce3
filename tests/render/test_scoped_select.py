"""A ``ScopedSelect`` drawn (or redrawn) while the page's state holds a value that is not among its options
shows no choice and leaves the state as it is. Panel's Select would set itself to its first option and the
state would follow: a deep link to a client not found showed the first client of the list as soon as the
select was drawn, where the page says the client is not found and shows no episode."""

from __future__ import annotations

from bokeh.document import Document

from alliance.pages import ClientPage
from alliance.service import Service


def test_a_select_drawn_on_a_value_outside_its_options_leaves_the_state_alone(demo_db):
    page = ClientPage(service=Service.open(demo_db))
    select = page.widgets[1]  # Client
    page.selection.client = "C-000000"  # not among the clients: as a link's ?client= is applied
    assert "No episode selected" in page.summary.object

    model = select.get_root(Document())
    assert page.selection.client == "C-000000" and select.value == "C-000000"
    assert "No episode selected" in page.summary.object
    assert model.data.value is None, "the select shows no choice"

    other = page.selection.param.client.objects[1]
    page.selection.client = other  # a client in the list: shown as usual
    assert model.data.value == other and f"Client {other} · episode" in page.summary.object


def test_a_long_list_goes_to_the_browser_as_one_group_titled_with_its_count():
    from alliance.guard import ScopedSelect

    codes = [f"CL{i:04d}" for i in range(ScopedSelect.LONG_LIST)]
    select = ScopedSelect(options=codes[:5], value=codes[1], label="Clinician")
    model = select.get_root(Document())
    assert model.data.options == codes[:5], "a short list as it is"
    select.options = codes
    assert model.data.options == {f"{len(codes):,} clinicians": codes}
    assert model.data.value == codes[1]
    select.options = codes[:3]
    assert model.data.options == codes[:3]


def test_without_an_episode_the_page_says_why_and_draws_no_empty_charts(demo_db):
    """A client not found has no episode to draw: the summary says so, with what to do; there are no empty
    axes and no "what this episode lacks" box (that is for an episode's gaps). An episode chosen afterwards
    brings its charts back."""
    page = ClientPage(service=Service.open(demo_db))
    assert page.charts._pane.visible, "the landing episode's charts"
    page.selection.client = "C-000000"
    assert "No episode selected" in page.summary.object
    assert "This client has no episode you can see. Choose a clinician and a client." in page.summary.object
    assert not page.charts._pane.visible and not page.notes.visible
    outcome, alliance = page.widgets[3], page.widgets[4]
    for select in (outcome, alliance):  # no episode: no measure offered, and the select says why
        assert select.disabled and select.value is None and select.value_label == "no episode"
    page.selection.client = page.selection.param.client.objects[1]
    assert "· episode" in page.summary.object and page.charts._pane.visible
    assert not outcome.disabled and outcome.value and outcome.value_label == ""
    assert page.selection.outcome_instrument == outcome.value
