"""Start a real ``panel serve`` of the dashboards on a free local port (the benchmark and the served and
browser test tiers use it; ``make serve`` is the interactive way)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from alliance import config


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout: float = 90.0) -> None:
    """Wait until ``url`` answers 200 (the server has started), or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout}s ({last})")


_RECORD = re.compile(r"^(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", re.MULTILINE)
_RAISED = re.compile(r"^\s*[\w.]+(Error|Exception)\b")  # an exception's own line: "KeyError: 'x'"
_CLIENT_WENT_AWAY = ("tornado.websocket.WebSocketClosedError", "tornado.iostream.StreamClosedError")


def server_errors(log: str) -> list[str]:
    """Records of a ``panel serve`` log (each starts with a timestamp) that hold a traceback, leaving out the
    ones whose only exceptions are a closed websocket or stream."""
    errors = []
    for record in _RECORD.split(log):
        if "Traceback" not in record:
            continue
        raised = [line.strip() for line in record.splitlines() if _RAISED.match(line)]
        if raised and all(line.startswith(_CLIENT_WENT_AWAY) for line in raised):
            continue
        errors.append(record)
    return errors


class Server:
    """A real `panel serve` of every notebook in dashboards/ against one database, on localhost only."""

    def __init__(
        self, db: Path, log: Path, *, num_threads: int | None = None, num_procs: int = 1, extra: tuple = ()
    ):
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        self.log = log
        env = {**os.environ, config.DB_ENV: str(db)}
        notebooks = sorted(str(p) for p in (config.REPO_ROOT / "dashboards").glob("*.ipynb"))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "panel",
                "serve",
                *notebooks,
                "--port",
                str(self.port),
                "--address",
                "127.0.0.1",
                "--allow-websocket-origin",
                f"localhost:{self.port}",
                "--allow-websocket-origin",
                f"127.0.0.1:{self.port}",
                # None, as make serve: every session's callbacks run on the process's event loop (see
                # docs/deployment.md); a number only to compare with Panel's thread pool.
                *(["--num-threads", str(num_threads)] if num_threads else []),
                "--num-procs",
                str(num_procs),
                "--disable-index-redirect",  # the index lists the pages even when there is one
                "--index",
                str(config.REPO_ROOT / "alliance" / "templates" / "index.html"),
                "--setup",  # as make serve: the first visitor does not pay for imports and first drawing
                str(config.REPO_ROOT / "alliance" / "warmup.py"),
                # One session per page kept to render the page's HTML for later visitors; each visitor's own
                # session is built once, when its websocket connects (see docs/performance.md).
                "--reuse-sessions",
                *extra,
            ],
            cwd=config.REPO_ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            # Its own process group: with --num-procs the server forks, and the forks must stop with it.
            start_new_session=True,
        )
        try:
            wait_for_http(self.url + "/client", timeout=180)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"panel serve did not start:\n{log.read_text()[-3000:]}") from None

    def errors(self) -> list[str]:
        """The server log's records that hold a traceback, except a browser going away while the server
        writes to it (tornado's ``WebSocketClosedError``: the tab was closed or navigated, nothing failed)."""
        return server_errors(self.log.read_text())

    def stop(self) -> None:
        """Stop the server and every process it forked (``--num-procs``): the forks outlive their parent and
        do not all stop on SIGTERM, so the whole process group is asked to stop, then killed."""
        group = self.proc.pid
        try:
            os.killpg(group, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _group_alive(group):
            time.sleep(0.1)
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def _group_alive(group: int) -> bool:
    """Whether any process of the process group ``group`` is still running."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True
