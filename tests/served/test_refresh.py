"""A running `panel serve` follows its database file without a restart: `alliance import` (and `alliance
refresh`) write a new file beside the old one and swap it in, and the next page load shows the new data; an
open page offers to reload onto it. A file that vanishes, is damaged or truncated gives a clear message on
the page, the server survives, and the page works again when the file is back."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import AS_OF, Server
from tests.served.test_served import document_text, served_document

SUMMARY = re.compile(r"ORS</strong> ([\d.]+) → ([\d.]+) over (\d+) ratings")


@pytest.fixture(scope="module")
def small_db(tmp_path_factory) -> Path:
    from alliance.demo import write_demo

    path = tmp_path_factory.mktemp("refresh") / "small.duckdb"
    write_demo(path, n_episodes=150, seed=11, as_of=AS_OF)
    return path


def _episode(db: Path) -> dict:
    """An episode whose only outcome measure is the ORS, with at least three ORS ratings, and its latest ORS
    rating (what the client page's summary ends on)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute(
            """
            WITH only_ors AS (
                SELECT episode_id FROM rating JOIN instrument ON code = instrument
                WHERE construct = 'outcome' GROUP BY episode_id
                HAVING count(DISTINCT instrument) = 1 AND min(instrument) = 'ORS' AND count(*) >= 3
            )
            SELECT e.client_id, e.clinician_id, e.episode_id, r.session_number, s.session_date, r.score
            FROM rating r JOIN session s USING (episode_id, session_number) JOIN episode e USING (episode_id)
            WHERE r.instrument = 'ORS' AND episode_id IN (SELECT episode_id FROM only_ors)
            ORDER BY e.episode_id, r.session_number DESC LIMIT 1
            """
        ).fetchone()
    finally:
        con.close()
    keys = ("client_id", "clinician_id", "episode_id", "session_number", "session_date", "score")
    return dict(zip(keys, row, strict=True))


def _alliance(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "alliance.cli", *args], capture_output=True, text=True, timeout=600
    )


def _summary(server: Server, episode: dict) -> tuple[str, tuple[str, ...]]:
    args = {"client": episode["client_id"], "episode": episode["episode_id"]}
    text = document_text(served_document(f"{server.url}/client", args))
    found = SUMMARY.search(text)
    assert found, "the client page shows no ORS summary"
    return text, found.groups()


def _correction(folder: Path, episode: dict, score: float) -> Path:
    """A corrected export: the episode's latest ORS rating with another score."""
    path = folder / "correction.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "client_id",
                "clinician_id",
                "episode_id",
                "session_date",
                "session_number",
                "instrument",
                "score",
            ]
        )
        w.writerow(
            [
                episode["client_id"],
                episode["clinician_id"],
                episode["episode_id"],
                episode["session_date"],
                episode["session_number"],
                "ORS",
                score,
            ]
        )
    return path


@pytest.fixture
def server_db(small_db, tmp_path) -> Path:
    db = tmp_path / "served.duckdb"
    shutil.copy(small_db, db)
    return db


@pytest.mark.served
def test_an_import_under_a_running_server_shows_on_the_next_page_load(server_db, tmp_path):
    episode = _episode(server_db)
    new_score = 3.5 if episode["score"] > 20 else 36.5
    server = Server(server_db, tmp_path / "panel.log")
    try:
        before, (intake, latest, n) = _summary(server, episode)
        assert float(latest) == episode["score"]
        line = re.search(
            r"Data as of (\d\d \w{3} \d{4}), refreshed at (\d\d \w{3} \d{4} \d\d:\d\d UTC)", before
        )
        assert line and line.group(1) == f"{AS_OF:%d %b %Y}", "the page header gives no data date"
        inode = server_db.stat().st_ino

        done = _alliance("import", str(_correction(tmp_path, episode, new_score)), "--db", str(server_db))
        assert done.returncode == 0, done.stderr
        assert "ratings 1 updated" in done.stdout and "Stored metrics refreshed." in done.stdout
        assert server_db.stat().st_ino != inode  # swapped in whole, not written in place

        after, (intake2, latest2, n2) = _summary(server, episode)
        assert (intake2, n2) == (intake, n)
        assert float(latest2) == new_score, "the page still shows the old rating after the import"
        assert re.search(r"Data as of \d\d \w{3} \d{4}, refreshed at ", after)

        # `alliance refresh` swaps in a new file too; the page still works on it.
        done = _alliance("refresh", "--db", str(server_db))
        assert done.returncode == 0, done.stderr
        assert float(_summary(server, episode)[1][1]) == new_score
    finally:
        server.stop()
    assert not server.errors(), server.errors()[0]


def _damage(path: Path) -> None:
    """Overwrite a stretch of every 256 KiB block after the file's headers: the checksums no longer match."""
    size = path.stat().st_size
    with path.open("r+b") as f:
        for pos in range(12288 + 262144, size, 262144):
            f.seek(pos + 8)
            f.write(b"\x5a" * 64)


@pytest.mark.served
def test_a_vanished_damaged_or_truncated_file_is_a_message_and_the_server_recovers(server_db, tmp_path):
    episode = _episode(server_db)
    keep = tmp_path / "kept.duckdb"
    server = Server(server_db, tmp_path / "panel.log")
    try:
        assert _summary(server, episode)[1][1]

        os.replace(server_db, keep)  # the file vanishes
        text = document_text(served_document(f"{server.url}/client"))
        assert "The database cannot be used" in text and f"{server_db} not found" in text
        assert "Traceback" not in text

        shutil.copy(keep, server_db)  # back: the page works again without a restart
        assert float(_summary(server, episode)[1][1]) == episode["score"]

        damaged = tmp_path / "damaged.duckdb"
        shutil.copy(keep, damaged)
        _damage(damaged)
        os.replace(damaged, server_db)
        text = document_text(served_document(f"{server.url}/client"))
        assert "The database cannot be used" in text
        assert "is damaged or incomplete and cannot be read" in text and "checksum" in text
        assert "Traceback" not in text

        truncated = tmp_path / "truncated.duckdb"
        truncated.write_bytes(keep.read_bytes()[: keep.stat().st_size // 3])
        os.replace(truncated, server_db)
        text = document_text(served_document(f"{server.url}/client"))
        assert "The database cannot be used" in text and str(server_db) in text
        assert "Traceback" not in text

        server_db.write_bytes(os.urandom(50_000))  # garbage written in place
        text = document_text(served_document(f"{server.url}/client"))
        assert "The database cannot be used" in text and "cannot be opened" in text

        shutil.copy(keep, server_db)
        assert float(_summary(server, episode)[1][1]) == episode["score"]
    finally:
        server.stop()
    assert not server.errors(), server.errors()[0]


@pytest.mark.browser
def test_an_open_page_offers_the_new_data_and_reloads_onto_it(server_db, tmp_path, monkeypatch, page):
    """A page left open while an import swaps in a new file says so in its header; its button reloads the page
    onto the new data. The page checks the file every ALLIANCE_CHECK_SECONDS (1 s here)."""
    from playwright.sync_api import expect

    monkeypatch.setenv("ALLIANCE_CHECK_SECONDS", "1")
    episode = _episode(server_db)
    new_score = 3.5 if episode["score"] > 20 else 36.5
    server = Server(server_db, tmp_path / "panel.log")
    try:
        page.set_viewport_size({"width": 1366, "height": 768})
        page.goto(f"{server.url}/client?client={episode['client_id']}&episode={episode['episode_id']}")
        expect(page.get_by_text(f"→ {episode['score']:g} over")).to_be_visible(timeout=60_000)
        expect(page.get_by_text(re.compile(r"^Data as of \d\d \w{3} \d{4}, refreshed at"))).to_be_visible()
        reload = page.get_by_role("button", name="New data: reload")
        expect(reload).to_be_hidden()

        done = _alliance("import", str(_correction(tmp_path, episode, new_score)), "--db", str(server_db))
        assert done.returncode == 0, done.stderr
        expect(reload).to_be_visible(timeout=30_000)
        expect(page.get_by_text(f"→ {episode['score']:g} over")).to_be_visible()  # nothing changes by itself
        page.screenshot(path=str(tmp_path / "new-data.png"))
        if os.environ.get("ALLIANCE_SCREENSHOTS"):
            shutil.copy(tmp_path / "new-data.png", os.environ["ALLIANCE_SCREENSHOTS"])

        reload.click()
        expect(page.get_by_text(f"→ {new_score:g} over")).to_be_visible(timeout=60_000)
        expect(reload).to_be_hidden()

        os.replace(server_db, tmp_path / "away.duckdb")  # the file goes: the open page says so
        expect(page.get_by_text(re.compile(r"has gone; this page shows what it read before"))).to_be_visible(
            timeout=30_000
        )
        os.replace(tmp_path / "away.duckdb", server_db)
        expect(page.get_by_text(re.compile(r"has gone"))).to_be_hidden(timeout=30_000)
    finally:
        server.stop()
    assert not server.errors(), server.errors()[0]
