"""Start a real ``panel serve`` of the dashboards on a free local port (the benchmark and the served and
browser test tiers use it; ``make serve`` is the interactive way)."""

from __future__ import annotations

import os
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


class Server:
    """A real `panel serve` of every notebook in dashboards/ against one database, on localhost only."""

    def __init__(self, db: Path, log: Path, *, num_threads: int = 2, num_procs: int = 1, extra: tuple = ()):
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
                "--num-threads",
                str(num_threads),
                "--num-procs",
                str(num_procs),
                "--disable-index-redirect",  # the index lists the pages even when there is one
                "--index",
                str(config.REPO_ROOT / "alliance" / "templates" / "index.html"),
                *extra,
            ],
            cwd=config.REPO_ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_http(self.url + "/client", timeout=180)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"panel serve did not start:\n{log.read_text()[-3000:]}") from None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
