"""Shared fixtures: real DuckDB files built through the project's own paths (demo generator, importer),
and a real `panel serve` of the dashboards for the served and browser tiers."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import panel as pn
import pytest

from alliance.db import forget_databases
from alliance.importer import import_csv
from alliance.schema import create_schema
from alliance.serving import Server, free_port, wait_for_http  # noqa: F401 — used by the tiers
from alliance.state import forget_service_metrics

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
AS_OF = dt.date(2026, 11, 1)
CHROMIUM = Path(os.environ.get("ALLIANCE_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """The default-size generated service (1,500 episodes, ~30 clinicians in 4 teams), fixed seed and 'today':
    enough closed episodes for expected-response bands and clinician comparisons."""
    from alliance.demo import write_demo

    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    write_demo(path, n_episodes=1500, seed=7, as_of=AS_OF)
    return path


@pytest.fixture(scope="session")
def edge_db(tmp_path_factory) -> Path:
    """Hand-made episodes for the awkward cases, imported through `alliance import`'s code path:
    X-ONE a single rating of each measure; X-GAPS ORS missing at session 2 and no session 3 at all;
    X-NOALL PHQ-9 with no alliance measure; X-ONLYALL an adolescent with SRS only (clinician CL91)."""
    path = tmp_path_factory.mktemp("edge") / "edge.duckdb"
    report = import_csv(FIXTURES / "edge_cases.csv", path)
    assert report.ok, report.summary()
    return path


@pytest.fixture(scope="session")
def empty_db(tmp_path_factory) -> Path:
    """A valid Alliance database with the registry and no ratings."""
    import duckdb

    path = tmp_path_factory.mktemp("empty") / "empty.duckdb"
    con = duckdb.connect(str(path))
    create_schema(con)
    con.close()
    return path


@pytest.fixture(autouse=True)
def _fresh_connections():
    """Each test opens its own connections (and Panel state is reset)."""
    yield
    forget_databases()
    forget_service_metrics()
    pn.state.reset()


@pytest.fixture(scope="session")
def served(demo_db, tmp_path_factory):
    server = Server(demo_db, tmp_path_factory.mktemp("serve") / "panel.log")
    yield server
    server.stop()


def browser_available() -> str | None:
    """None when Chromium can run the browser tier, else the reason it cannot."""
    if not CHROMIUM.exists():
        return f"Chromium not found at {CHROMIUM} (install Debian's `chromium`, or set ALLIANCE_CHROMIUM)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install -e '.[test]')"
    return None


def pytest_collection_modifyitems(config, items):
    """The browser tier skips with a clear message where Chromium is absent — unless CI requires it
    (ALLIANCE_REQUIRE_BROWSER=1, set by .ci/run), where a missing browser fails every browser test."""
    reason = browser_available()
    if reason is None or os.environ.get("ALLIANCE_REQUIRE_BROWSER") == "1":
        return
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=f"browser tier skipped: {reason}"))


@pytest.fixture(scope="session")
def browser_type_launch_args():
    """pytest-playwright launches Debian's Chromium (no downloaded browser builds here)."""
    reason = browser_available()
    if reason:
        pytest.fail(f"ALLIANCE_REQUIRE_BROWSER=1 but the browser tier cannot run: {reason}")
    return {
        "executable_path": str(CHROMIUM),
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1400, "height": 1000}}
