"""The comparison table greys the clinicians under the minimum (they are not ranked) and sets the viewer's own
row apart, and only those rows: every other row is plain, and after the filters change the styles follow the
new table instead of piling up on the old one."""

from __future__ import annotations

import dataclasses

import duckdb
import numpy as np
import pandas as pd
import pytest

from alliance.clinician_comparison import RATES
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


def test_the_table_shows_each_clinicians_numbers_in_words_made_once_per_comparison(table, demo_db):
    """Each row says its clinician's numbers (checked against the comparison's own figures, formatted by
    hand here); the words are made once with the comparison and kept with it, so a second session of the
    page gets the same kept rows, named for its own viewer."""
    me, table = table
    frames = table.state.frames
    numbers = frames["table"].set_index("clinician_id").loc[f"you ({me})"]
    row = table.widget.value.set_index("clinician").loc[f"you ({me})"]

    def pct(v):
        return "—" if pd.isna(v) else f"{round(100 * v)} %"

    for key, words in RATES.items():
        rate, low, high, n = (numbers[f"{key}_{s}"] for s in ("rate", "low", "high", "n"))
        expected = f"{pct(rate)} ({pct(low)}–{pct(high)}) n={0 if pd.isna(n) else int(n)}"
        assert row[f"{words} (95 % CI)"] == expected, key
    if not pd.isna(numbers.get("es", np.nan)):
        es = f"{numbers['es']:.2f} ({numbers['es_low']:.2f} to {numbers['es_high']:.2f})"
        assert row["effect size (95 % CI)"] == es
    assert row["closed"] == numbers["closed"] and row["open"] == numbers["open"]
    ranked = table.widget.value[table.widget.value["eligible"].astype(bool)]["rank"].astype(int).tolist()
    assert ranked == sorted(ranked), "ranked clinicians first, in rank order"

    # A director's sessions share the process's kept comparison: the rows were made once, not per session.
    director = comparison_store(Service.open(demo_db))
    first, second = ComparisonState(director), ComparisonState(director)
    assert first.frames["table_text"] is second.frames["table_text"]
    assert "clinician_id" in first.frames["table_text"]  # codes in the kept rows; names given per viewer
    shown = set(table.widget.value["clinician"])
    assert {n for n in shown if not n.startswith("clinician ")} == {f"you ({me})"}, "colleagues by code"
