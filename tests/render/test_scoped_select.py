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
