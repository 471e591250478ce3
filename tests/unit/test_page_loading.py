"""The served pages' main area (``alliance.pages.LoadingArea``): built once the page is loaded, and under
Panel's loading indicator while a new choice rebuilds it."""

from __future__ import annotations

from alliance.pages import CaseloadPage, ComparisonPage, LoadingArea, caseload_page, comparison_page
from alliance.scope import Scope


def _loading_values(area: LoadingArea) -> list[bool]:
    seen: list[bool] = []
    area.param.watch(lambda e: seen.append(e.new), ["loading"])
    return seen


def test_the_main_area_is_built_on_load_and_loading_until_then():
    built = []
    area = LoadingArea(lambda: built.append(1) or "content")  # outside a server, onload runs at once
    assert built == [1] and area.filled and not area.loading
    area.fill()
    assert built == [1], "the content is built once"


def test_a_new_clinician_shows_the_loading_indicator_until_the_caseload_is_rebuilt(demo_db):
    page = caseload_page(demo_db, Scope.full_access())
    assert isinstance(page, CaseloadPage)
    page.page()
    assert page.main.filled and not page.main.loading
    seen = _loading_values(page.main)
    others = [c for c in page.state.param.clinician.objects if c != page.state.clinician]
    page.state.clinician = others[0]
    assert seen == [True, False]
    assert set(page.state.table["clinician_id"]) == {others[0]}


def test_a_new_filter_shows_the_loading_indicator_on_the_comparison(demo_db):
    page = comparison_page(demo_db, Scope.full_access())
    assert isinstance(page, ComparisonPage)
    page.page()
    seen = _loading_values(page.main)
    page.state.minimum = page.state.minimum + 1
    assert seen == [True, False] and not page.state.busy


def test_a_main_area_that_fails_to_build_shows_a_message_not_a_spinner():
    from alliance.db import DatabaseError
    from alliance.pages import LoadingArea

    def damaged():
        raise DatabaseError("Database file x.duckdb is damaged or incomplete and cannot be read.")

    def broken():
        raise KeyError("episode")

    for build, title in ((damaged, "The database cannot be used"), (broken, "This page could not be built")):
        area = LoadingArea(build)
        area.fill()
        assert area.loading is False
        shown = area.objects[0]  # the ProblemView's alert, as the column holds it
        assert shown.title == title and shown.severity == "error"
        assert "KeyError" not in shown.object  # no exception text on the page
