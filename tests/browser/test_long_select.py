"""A ``ScopedSelect`` with a director's long list of clinicians, served and used in Chromium.

From ``ScopedSelect.LONG_LIST`` options on, the options go to the browser as one group titled with their
count (Material UI's select otherwise looks every option up again in the whole list each time it draws:
about 0.3 s per page with 4,000 clinicians). The list must still open, show every option in order under
its title, and send back the option chosen."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from playwright.sync_api import Page, expect

from alliance.guard import ScopedSelect
from alliance.serving import free_port, wait_for_http
from tests.conftest import REPO

TIMEOUT = 60_000
N = ScopedSelect.LONG_LIST + 100

APP = textwrap.dedent(
    f"""
    import panel as pn
    from alliance.guard import ScopedSelect

    codes = [f"CL{{i:04d}}" for i in range({N})]
    select = ScopedSelect(options=codes, value=codes[0], label="Clinician", searchable=True)
    chosen = pn.pane.Markdown(pn.bind(lambda value: f"chosen: {{value}}", select))
    pn.Column(select, chosen).servable()
    """
)


@pytest.fixture
def long_select_app(tmp_path):
    script = tmp_path / "long_select.py"
    script.write_text(APP)
    port = free_port()
    log = (tmp_path / "panel.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "panel",
            "serve",
            str(script),
            "--port",
            str(port),
            "--address",
            "127.0.0.1",
            "--allow-websocket-origin",
            f"localhost:{port}",
        ],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://localhost:{port}/long_select"
        wait_for_http(url, timeout=120)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_a_long_list_opens_under_its_count_and_sends_the_choice_back(page: Page, long_select_app):
    page.goto(long_select_app, timeout=TIMEOUT)
    expect(page.get_by_text("chosen: CL0000")).to_be_visible(timeout=TIMEOUT)
    page.get_by_role("combobox").first.click()
    expect(page.get_by_text(f"{N} clinicians", exact=True)).to_be_visible(timeout=TIMEOUT)
    items = [t.strip() for t in page.get_by_role("menuitem").all_inner_texts() if t.strip("\u200b ").strip()]
    assert items == [f"CL{i:04d}" for i in range(N)], "every option, in order, once"
    page.get_by_role("menuitem", name="CL0321", exact=True).click()
    expect(page.get_by_text("chosen: CL0321")).to_be_visible(timeout=TIMEOUT)
