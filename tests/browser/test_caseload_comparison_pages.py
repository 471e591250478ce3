"""The caseload and comparison pages in headless Chromium against a real `panel serve`: sort the caseload
table, click through to a client, filter the comparison by team, see the funnel plot. Screenshots of both
pages are kept under docs/ for the README."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_client_page import BOKEH_COLUMN, HEADING, TIMEOUT, choose
from tests.conftest import REPO

pytestmark = pytest.mark.browser


def wait_until(condition, page: Page, timeout_ms: int = TIMEOUT) -> None:
    """Poll the page until ``condition()`` holds (Panel renders in shadow DOM, out of wait_for_function's
    reach)."""
    for _ in range(timeout_ms // 250):
        if condition():
            return
        page.wait_for_timeout(250)
    assert condition()


def cells(page: Page, field: str) -> list[str]:
    return page.locator(f'.tabulator-row .tabulator-cell[tabulator-field="{field}"]').all_inner_texts()


def test_caseload_sort_and_click_through_to_a_client(page: Page, served):
    page.goto(f"{served.url}/caseload?clinician=CL03", timeout=TIMEOUT)
    expect(page.locator(".tabulator-row").first).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_text("on track (open)")).to_be_visible()
    expect(page.locator(".bk-Figure")).to_have_count(1, timeout=TIMEOUT)  # the caseload picture
    page.get_by_text("Show closed episodes").click()  # closed too: a longer table to sort
    expect(page.locator(".tabulator-row").nth(8)).to_be_visible(
        timeout=TIMEOUT
    )  # (Playwright pierces shadow DOM)
    page.locator('.tabulator-col[tabulator-field="sessions"] .tabulator-col-title').click()
    page.wait_for_timeout(500)
    first = [int(v) for v in cells(page, "sessions")]
    assert first == sorted(first), "sorted ascending by sessions"
    page.locator('.tabulator-col[tabulator-field="sessions"] .tabulator-col-title').click()
    page.wait_for_timeout(500)
    second = [int(v) for v in cells(page, "sessions")]
    assert second == sorted(second, reverse=True) and second != first
    page.screenshot(path=str(REPO / "docs" / "caseload.png"), full_page=False)

    link = page.locator('.tabulator-cell[tabulator-field="client"] a').first
    client = link.inner_text()
    link.click()
    expect(page.get_by_text(re.compile(rf"^Client {re.escape(client)} · episode"))).to_be_visible(
        timeout=TIMEOUT
    )
    expect(page.get_by_text(HEADING)).to_be_visible()


def test_comparison_filter_by_team_and_funnel(page: Page, served):
    page.goto(f"{served.url}/comparison", timeout=TIMEOUT)
    expect(page.locator(".tabulator-row").first).to_be_visible(timeout=TIMEOUT)
    expect(
        page.get_by_text(re.compile("Inside the funnel means no evidence of a difference"))
    ).to_be_visible()
    expect(page.locator(".bk-Figure")).to_have_count(2, timeout=TIMEOUT)  # funnel and caterpillar
    positions = page.evaluate(BOKEH_COLUMN, "position")
    assert positions and set(positions) <= {
        "above 99.8 %",
        "above 95 %",
        "inside",
        "below 95 %",
        "below 99.8 %",
    }
    teams = set(cells(page, "team"))
    assert len(teams) > 1
    page.screenshot(path=str(REPO / "docs" / "comparison.png"), full_page=False)
    team = sorted(teams)[0]
    choose(page, 1, team)  # the Team select
    wait_until(lambda: set(cells(page, "team")) == {team}, page)
    assert set(cells(page, "team")) == {team}
