"""`panel serve dashboards/*.ipynb` answers 200 for every page and for the index that lists them."""

import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, Server

PAGES = sorted(p.stem for p in (REPO / "dashboards").glob("*.ipynb"))


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.status, r.read().decode()


@pytest.mark.served
@pytest.mark.parametrize("name", PAGES)
def test_every_page_answers(served, name):
    status, html = get(f"{served.url}/{name}")
    assert status == 200
    assert "bokeh" in html.lower() and "Traceback" not in html


@pytest.mark.served
def test_index_lists_every_page(served):
    status, html = get(served.url + "/")
    assert status == 200
    for name in PAGES:
        assert f"/{name}" in html


@pytest.mark.served
def test_a_missing_database_is_a_message_not_a_traceback(tmp_path: Path):
    server = Server(tmp_path / "missing.duckdb", tmp_path / "panel.log")
    try:
        status, html = get(f"{server.url}/client")
        assert status == 200 and "Traceback" not in html
    finally:
        server.stop()
    assert "Traceback" not in (tmp_path / "panel.log").read_text()
