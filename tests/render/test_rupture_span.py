"""The span shaded after a rupture that was not repaired (unrepaired, or still open) ends at the episode's last
rating — nothing is known after it — on the session axis and on the date axis; a repaired rupture's span ends
at its repair."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
from bokeh.models import Quad

from alliance.service import Service
from alliance.state import ClientSelection, service_metrics
from alliance.views.client import ClientCharts


def _not_repaired(demo_db) -> list[tuple[str, str, str]]:
    """(client, episode, alliance instrument) of episodes with a rupture that was not repaired."""
    service = Service.open(demo_db)
    events = service_metrics(service).alliance_events
    rows = events[(events["event"] == "rupture") & (events["repair_status"].astype(str) != "repaired")]
    con = duckdb.connect(str(demo_db), read_only=True)
    try:
        clients = dict(con.execute("SELECT episode_id, client_id FROM episode").fetchall())
    finally:
        con.close()
    picked = rows.drop_duplicates("episode_id").head(6)
    return [(clients[r.episode_id], r.episode_id, r.instrument) for r in picked.itertuples()]


def _last_rating(demo_db, episode_id: str, instruments: list[str]) -> tuple[int, pd.Timestamp]:
    con = duckdb.connect(str(demo_db), read_only=True)
    try:
        n, day = con.execute(
            "SELECT r.session_number, s.session_date FROM rating r JOIN session s USING (episode_id, session_number) "
            "WHERE r.episode_id = ? AND list_contains(?, r.instrument) ORDER BY r.session_number DESC LIMIT 1",
            [episode_id, instruments],
        ).fetchone()
    finally:
        con.close()
    return int(n), pd.Timestamp(day)


def _spans(charts: ClientCharts) -> pd.DataFrame:
    """The rupture spans drawn on the alliance chart: left, right, status."""
    grid = charts.grid
    alliance = sorted(grid.children, key=lambda c: c[1])[1][0]
    (renderer,) = [r for r in alliance.renderers if isinstance(getattr(r, "glyph", None), Quad)]
    glyph, data = renderer.glyph, renderer.data_source.data

    def column(spec):
        return data[spec if isinstance(spec, str) else spec.field]

    return pd.DataFrame({"left": column(glyph.left), "right": column(glyph.right), "span": data["span"]})


@pytest.mark.parametrize("axis", ["session", "date"])
def test_a_span_not_repaired_ends_at_the_last_rating(demo_db, axis):
    cases = _not_repaired(demo_db)
    assert len(cases) >= 3, "the demo has ruptures not repaired"
    selection = ClientSelection(service=Service.open(demo_db))
    selection.x_axis = axis
    checked = 0
    for client, episode, instrument in cases:
        selection.open(client, episode)
        assert selection.episode == episode
        selection.alliance_instrument = instrument
        spans = _spans(ClientCharts(selection=selection))  # the charts as a page opened on it draws them
        open_spans = spans[spans["span"] != "rupture repaired"]
        assert len(open_spans), (episode, spans)
        n, day = _last_rating(demo_db, episode, [selection.outcome_instrument, instrument])
        last = n if axis == "session" else day
        right = open_spans["right"] if axis == "session" else pd.to_datetime(open_spans["right"])
        left = open_spans["left"] if axis == "session" else pd.to_datetime(open_spans["left"])
        # Up to the last rating, not past it (a rupture is at or before the last rating).
        assert (right == last).all(), (episode, axis, right.tolist(), last)
        assert (right > left).all()
        checked += 1
    assert checked == len(cases)
