"""Every notebook in dashboards/ executes top to bottom in a real kernel (inline use in Jupyter), and the page
it displays is that page, built from the demo database (not an error message)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import duckdb
import nbformat
import pytest
from nbclient import NotebookClient

from alliance import config

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "dashboards").glob("*.ipynb"))

# Inside the displayed bundle the page's text sits in Bokeh's JSON document, so "·" may be written \u00b7.
DOT = r"(?:·|\\u00b7)"
# What a page shows instead of itself when something is wrong (alliance.pages.ProblemView) or an exception.
FAILURES = ("Traceback", "The database cannot be used", "No ratings to show", "Exception")


def _demo(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _episodes(db: Path) -> dict[tuple[str, str], tuple[str, object]]:
    """(client, episode) → (clinician, end_date) for every episode of the demo."""
    rows = _demo(db, "SELECT client_id, episode_id, clinician_id, end_date FROM episode")
    return {(c, e): (cl, end) for c, e, cl, end in rows}


#: The seven choices of the client page (the notebook's text describes them): inline, all of them are shown.
CLIENT_CHOICES = (
    "Clinician",
    "Client",
    "Episode",
    "Outcome measure",
    "Alliance measure",
    "Axis",
    "Alliance breakdown",
)
#: Notebooks whose inline view leaves no empty output area (Panel's print capture is off in them).
NO_EMPTY_OUTPUT = {"client"}


def check_client(text: str, db: Path) -> None:
    missing = [c for c in CLIENT_CHOICES if not re.search(rf'"label":\s*"{c}"', text)]
    assert not missing, f"the inline client page lacks the choices {missing}"
    heading = re.search(rf"<h3>Client (C-[0-9a-f]{{6}}) {DOT} episode (E\d+)</h3>", text)
    assert heading, "the client page shows no episode heading"
    episodes = _episodes(db)
    assert heading.groups() in episodes, f"{heading.groups()} is not an episode of the demo"
    clinician = episodes[heading.groups()][0]
    assert re.search(rf"Clinician <strong>{clinician}</strong>", text), "the summary names another clinician"
    assert "Viewing scope: full access (demo)" in text


def check_caseload(text: str, db: Path) -> None:
    assert "Episodes (flagged first; click a client code to open the client page)" in text
    assert "This caseload by quarter" in text
    links = set(re.findall(r"client\?client=(C-[0-9a-f]{6})&episode=(E\d+)", text))
    assert links, "the caseload table links no client"
    episodes = _episodes(db)
    assert links <= set(episodes), links - set(episodes)
    assert len({episodes[k][0] for k in links}) == 1, "a caseload holds one clinician's clients"
    assert all(episodes[k][1] is None for k in links), "closed episodes are hidden by default"


def check_comparison(text: str, db: Path) -> None:
    assert "Clinicians (ranked on the severity-adjusted effect size" in text
    assert "Inside the funnel means no evidence of a difference" in text
    shown = set(re.findall(r"\bCL\d\d\b", text))
    demo = {c for (c,) in _demo(db, "SELECT clinician_id FROM clinician")}
    assert len(shown) >= 10 and shown <= demo, sorted(shown - demo)


def check_meeting(text: str, db: Path) -> None:
    heading = re.search(rf"Agenda for (CL\d\d) {DOT} meeting", text)
    assert heading, "the meeting page shows no agenda"
    supervisor = heading.group(1)
    team = {
        c
        for (c,) in _demo(
            db,
            "SELECT c.clinician_id FROM clinician c JOIN team t USING (team_id) WHERE t.supervisor_id = ?",
            [supervisor],
        )
    }
    assert team, f"{supervisor} supervises no team in the demo"
    items = re.findall(rf"#\d+ {DOT} Client (C-[0-9a-f]{{6}}) {DOT} episode (E\d+)", text)
    assert items, "the agenda lists no client"
    episodes = _episodes(db)
    for item in items:
        assert item in episodes, f"{item} is not an episode of the demo"
        assert episodes[item][0] in team, f"{item} is not of {supervisor}'s team"


CHECKS = {
    "client": ("ClientPage", check_client),
    "caseload": ("CaseloadPage", check_caseload),
    "comparison": ("ComparisonPage", check_comparison),
    "meeting": ("MeetingPage", check_meeting),
}


def test_every_notebook_has_a_check():
    assert {p.stem for p in NOTEBOOKS} == set(CHECKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, demo_db, monkeypatch):
    monkeypatch.setenv(config.DB_ENV, str(demo_db))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, [e.get("ename") for e in errors]
    streams = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "Traceback" not in streams and "Error" not in streams, streams[-2000:]

    if path.stem in NO_EMPTY_OUTPUT:  # an output that shows nothing is an empty box under the page
        empty = [
            o for o in outputs if o.get("output_type") in ("display_data", "execute_result") and not o["data"]
        ]
        assert not empty, f"{len(empty)} empty output(s)"

    # The page object is displayed inline: a Panel/Bokeh bundle of that page, not an error message.
    shown = [o for o in outputs if o.get("output_type") == "execute_result"]
    assert len(shown) == 1, "the notebook shows its page inline, once"
    data = shown[0]["data"]
    page_class, check = CHECKS[path.stem]
    assert data["text/plain"].startswith(f"{page_class}("), data["text/plain"]
    assert "application/vnd.holoviews_exec.v0+json" in data
    text = html.unescape(data["text/html"])
    for failure in FAILURES:
        assert failure not in text, f"the {path.stem} page shows {failure!r}"
    check(text, demo_db)
