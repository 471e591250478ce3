"""`make bench` keeps working: the benchmark runs end to end at a tiny size (its figures are read at service
scale, never asserted here — speed is measured by the benchmark, not by timed tests)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO, browser_available


@pytest.mark.served
def test_bench_runs_at_a_tiny_size():
    with_browser = browser_available() is None
    args = [
        "--episodes",
        "300",
        "--repeats",
        "2",
        "--users",
        "2",
        "--switches",
        "1",
        "--arrive",
        "1",
        "--spread",
    ]
    run = subprocess.run(
        [sys.executable, "-m", "alliance.bench", *args, *([] if with_browser else ["--no-browser"])],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    for name in (
        "first client page, fresh process",
        "client switch (selection.open)",
        "caseload page, biggest caseload",
        "comparison page, whole service",
        "meeting page",
    ):
        assert re.search(rf"^{re.escape(name)} +n=\d+ +median +\d+ ms +p95 +\d+ ms", out, re.M), name
    assert re.search(r"MB per extra session", out)
    assert re.search(r"^machine: 10 million Python additions took [\d.]+ s$", out, re.M)
    # The load test: real websocket sessions (alliance.loadgen) against two server processes, none failed,
    # no server traceback, and every switch and page timed.
    load = re.search(
        r"^load: 2 simultaneous sessions \(2 server processes, 1 s between actions, arriving over 1 s; "
        r"client page \(each user another clinician's client\), .*; (\d+) failed sessions; "
        r"server traceback: (\w+)",
        out,
        re.M,
    )
    assert load and load.groups() == ("0", "no"), out[-3000:]
    assert re.search(r"^load: server CPU by process, busiest first: [\d.]+ s(, [\d.]+ s)?$", out, re.M)
    for name in ("client switch", "client page", "caseload page", "comparison page", "meeting page"):
        assert re.search(rf"^load: {name}, 2 sessions +n=\d+ +median", out, re.M), name
    if with_browser:
        for name in ("client", "caseload", "comparison", "meeting"):
            assert re.search(rf"^browser: {name} +new session until content shows +[\d.]+ s", out, re.M), name
            assert re.search(rf"^browser: {name}, cache warm +n=3 +median", out, re.M), name
            assert re.search(rf"^browser: {name}, cache warm, laid out +n=3 +median", out, re.M), name
            assert re.search(rf"^browser: {name} +new session .*laid out after [\d.]+ s\)", out, re.M), name
        assert re.search(r"^browser: server tracebacks  0$", out, re.M), out[-3000:]
