"""The client page opens on something to see: an open episode that is not on track, with a course to show,
not the first code in the list (which may hold a single rating); the summary counts in words."""

from __future__ import annotations

import re

import duckdb

from alliance.pages import client_page


def test_client_page_lands_on_an_open_red_episode_with_a_course(demo_db):
    page = client_page(demo_db)
    episode = page.selection.episode
    con = duckdb.connect(str(demo_db), read_only=True)
    try:
        status, n = con.execute(
            "SELECT s.status, c.n_ratings FROM metrics_episode_status s "
            "JOIN metrics_episode_change c USING (episode_id, instrument) "
            "WHERE s.episode_id = $e AND s.primary",
            {"e": episode},
        ).fetchone()
        closed = con.execute(
            "SELECT closed FROM metrics_episode_end WHERE episode_id = $e", {"e": episode}
        ).fetchone()[0]
    finally:
        con.close()
    assert status == "red" and n >= 2 and not closed
    summary = page.summary.object
    assert not re.search(r"\b1 (sessions|ratings)\b", summary)
    assert "-0.00" not in summary and "+0.00" not in summary
