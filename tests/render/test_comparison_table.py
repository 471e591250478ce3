"""The comparison table greys the clinicians under the minimum (they are not ranked) and sets the viewer's own
row apart, and only those rows: every other row is plain, and after the filters change the styles follow the
new table instead of piling up on the old one."""

from __future__ import annotations

import dataclasses

import duckdb
import pytest

from alliance.pages import comparison_store
from alliance.scope import Scope
from alliance.service import Service
from alliance.state import ComparisonState
from alliance.views.comparison import ComparisonTable

GREY = ("color", "#9e9e9e")
OWN = ("background-color", "#e6f2f8")


@pytest.fixture()
def table(demo_db):
    con = duckdb.connect(str(demo_db), read_only=True)
    try:
        (me,) = con.execute("SELECT min(clinician_id) FROM episode").fetchone()
    finally:
        con.close()
    # A clinician's view: the whole service compared, the clinician named "you", colleagues pseudonymous.
    scope = dataclasses.replace(Scope.clinicians(me), named=(me,), you=me, compare_all=True)
    state = ComparisonState(comparison_store(Service.open(demo_db, scope)))
    return me, ComparisonTable(state=state)


def middle_minimum(table: ComparisonTable) -> int:
    """A minimum some clinicians reach and some do not."""
    closed = sorted(table.widget.value["closed"])
    return int(closed[len(closed) // 2]) + 1


def styles_by_row(table: ComparisonTable) -> dict[str, set]:
    """Each styled row's clinician and the CSS of its cells, as Panel sends it to the browser."""
    widget = table.widget
    frame = widget._processed.reset_index(drop=True)
    rows: dict[str, set] = {}
    pages = -(-len(frame) // widget.page_size)
    for page in range(1, pages + 1):  # the table sends one page of rows (and of styles) at a time
        widget.page = page
        for row, by_column in widget._get_style_data()["data"].items():
            clinician = str(frame.loc[(page - 1) * widget.page_size + row, "clinician"])
            for css in by_column.values():
                rows.setdefault(clinician, set()).update(map(tuple, css))
    widget.page = 1
    return rows


def test_the_unranked_and_the_viewer_and_nobody_else_are_styled(table):
    me, table = table
    table.state.minimum = middle_minimum(table)
    frame = table.widget.value
    unranked = set(frame.loc[~frame["eligible"].astype(bool), "clinician"].astype(str))
    ranked = set(frame.loc[frame["eligible"].astype(bool), "clinician"].astype(str))
    assert unranked and ranked, "the demo should have clinicians on both sides of this minimum"
    styled = styles_by_row(table)
    own = f"you ({me})"
    assert OWN in styled[own] and ("font-weight", "700") in styled[own]
    for name in unranked:
        assert GREY in styled[name], name
    plain = ranked - {own}
    assert not set(styled) & plain, "a ranked colleague's row is styled"


def test_styles_follow_the_table_when_the_filters_change(table):
    me, table = table
    table.state.minimum = middle_minimum(table)
    table.state.minimum = 1  # everyone ranked now
    table.state.minimum = 2
    frame = table.widget.value
    unranked = set(frame.loc[~frame["eligible"].astype(bool), "clinician"].astype(str))
    styled = styles_by_row(table)
    assert set(styled) == unranked | {f"you ({me})"}
    assert len(table.widget.style._todo) == 1, "styles of earlier tables are still applied"
