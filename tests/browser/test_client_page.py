"""The client page in headless Chromium against a real `panel serve`: both charts appear, and choosing
another client changes them. A screenshot is saved under test-artifacts/ when a test fails."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Server

pytestmark = pytest.mark.browser
TIMEOUT = 60_000


def open_client_page(page: Page, url: str) -> str:
    page.goto(f"{url}/client", timeout=TIMEOUT)
    heading = page.get_by_text(re.compile(r"^Client \S+ · episode"))
    expect(heading).to_be_visible(timeout=TIMEOUT)
    return heading.inner_text()


def choose(page: Page, label_index: int, option: str) -> None:
    """Pick ``option`` in the n-th Material UI select of the sidebar."""
    page.get_by_role("combobox").nth(label_index).click()
    page.get_by_role("menuitem", name=option, exact=True).click()


def test_client_page_shows_both_charts_and_follows_the_chosen_client(page: Page, served):
    first = open_client_page(page, served.url)
    figures = page.locator(".bk-Figure")
    expect(figures).to_have_count(2, timeout=TIMEOUT)  # outcome above, alliance below
    expect(page.get_by_text("Viewing scope: full access (demo)")).to_be_visible()
    charts = page.locator(".bk-GridPlot").first
    page.wait_for_timeout(500)  # let Bokeh finish drawing before the reference picture
    before = charts.screenshot()

    client_select = page.get_by_role("combobox").nth(1)
    current = client_select.inner_text()
    client_select.click()
    options = [t for t in page.get_by_role("menuitem").all_inner_texts() if t.strip("\u200b ").strip()]
    other = next(o for o in options if o != current)
    page.get_by_role("menuitem", name=other, exact=True).click()

    expect(page.get_by_text(re.compile(rf"^Client {re.escape(other)} · episode"))).to_be_visible(
        timeout=TIMEOUT
    )
    assert page.get_by_text(re.compile(r"^Client \S+ · episode")).inner_text() != first
    expect(figures).to_have_count(2)
    page.wait_for_timeout(500)
    assert charts.screenshot() != before, "the charts did not change with the client"


def test_missing_database_shows_a_message_in_the_browser(page: Page, tmp_path):
    server = Server(tmp_path / "missing.duckdb", tmp_path / "panel.log")
    try:
        page.goto(f"{server.url}/client", timeout=TIMEOUT)
        expect(page.get_by_text("The database cannot be used")).to_be_visible(timeout=TIMEOUT)
        expect(page.get_by_text(re.compile("not found"))).to_be_visible()
    finally:
        server.stop()
