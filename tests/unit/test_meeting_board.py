"""The triage board's HTML (alliance.views.meeting): hostile codes and notes stay text, the sparkline draws
the normalised ratings where a hand calculation puts them, the supervisee header counts, and the row shows
last time's action with its follow-up."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd

from alliance.views.meeting import agenda_item, board_html, since_html, sparkline_svg, status_chip

HOSTILE = "<img src=x onerror=alert(1)>"


def _row(**over):
    base = {
        "rank": 1,
        "supervisee": HOSTILE,
        "client_id": HOSTILE,
        "episode_id": "E1",
        "headline": "ORS reliably worse since 3 Oct",
        "n_reasons": 2,
        "reasons": [
            {
                "label": "reliable deterioration",
                "words": "ORS 30 at intake → 20 at session 5 (3 Oct): <b>x</b>",
            },
            {"label": "at risk (yellow)", "words": "ORS at risk since session 4 (26 Sep)"},
        ],
        "last_discussed": pd.Timestamp("2026-09-20"),
        "last_action": HOSTILE + " [a](javascript:alert(2))",
        "followup": "done",
        "discussed_not_worse": False,
        "discussed_today": False,
        "today_action": "",
        "sessions_since_discussed": 3,
        "status": "red",
        "status_words": "not on track",
    }
    base.update(over)
    return pd.DataFrame([base])


def test_sparkline_puts_points_where_the_hand_calculation_does():
    # Width 150, height 34, padding 4: session 1 → x 4, session 3 → x 146; 0 → y 30, 1 → y 4, 0.5 → y 17.
    svg = sparkline_svg(
        {
            "outcome": [(1, 0.0), (3, 1.0)],
            "alliance": [(1, 0.5), (3, 0.5)],
            "ruptures_open": [3],
            "losses": [],
        }
    )
    assert 'points="4.0,30.0 146.0,4.0"' in svg  # outcome, solid
    assert 'points="4.0,17.0 146.0,17.0"' in svg  # alliance, dashed
    assert "stroke-dasharray" in svg and svg.count("mark-ruptures_open") == 1
    # The rupture's ✕ is centred on the alliance rating of session 3: (146, 17).
    assert re.search(r'd="M142\.8,13\.8L149\.2,20\.2', svg), svg
    assert sparkline_svg({}).count("<polyline") == 0


def test_row_keeps_hostile_strings_as_text_and_shows_last_action():
    r = next(_row().itertuples())
    html = agenda_item(r, None, 2026)
    assert "<img" not in html and "javascript:alert" not in html.replace("javascript&#58;", "")
    assert "&lt;img src&#61;x onerror&#61;alert&#40;1&#41;&gt;" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html  # a reason's words are text too
    assert "Action from 20 Sep:" in html and "a reason has arisen since" in html
    assert re.search(r'data-value="done" aria-pressed="true"', html)
    assert re.search(r'data-value="not done" aria-pressed="false"', html)
    assert "3 sessions since discussed 20 Sep" in html and "+1 more" in html
    assert 'data-action="discussed"' in html and 'aria-label="Action note"' in html
    # The client page, in a new tab, with the codes URL-encoded.
    assert 'href="client?client=%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E&amp;episode=E1"' in html
    today = agenda_item(next(_row(discussed_today=True, today_action=HOSTILE).itertuples()), None, 2026)
    assert "✓ Discussed today" in today and 'data-action="undo"' in today and "<img" not in today
    assert 'aria-label="Action note"' not in today  # marked: the note was taken


def test_status_chip_has_shape_and_words():
    assert "▲" in status_chip("red", "not on track") and "not on track" in status_chip("red", "not on track")
    assert "◆" in status_chip("yellow", "at risk")
    assert "no outcome status" in status_chip(None, None)


def test_board_headers_and_since_box():
    agenda = _row()
    headers = pd.DataFrame(
        [
            {
                "supervisee": HOSTILE,
                "open_episodes": 4,
                "flagged": 1,
                "sessions_rated": 20,
                "sessions_complete": 15,
                "completeness": 0.75,
                "flagged_then": 3,
            },
            {
                "supervisee": "CL2",
                "open_episodes": 2,
                "flagged": 0,
                "sessions_rated": 0,
                "sessions_complete": 0,
                "completeness": float("nan"),
                "flagged_then": 0,
            },
        ]
    )
    html = board_html(agenda, headers, {}, dt.date(2026, 10, 18), 2026)
    assert "<img" not in html
    assert "4 open · <b>1 flagged</b> (-2 since 18 Oct: 3 then) · ratings complete 75%" in html
    assert "Supervisee CL2" in html and "No open episode of this supervisee needs discussion." in html
    none = since_html(None, None, 2026)
    assert "No earlier meeting" in none
    frame = pd.DataFrame([{"client_id": HOSTILE, "supervisee": "CL1", "short": "ORS at risk since 3 Oct"}])
    empty = frame.iloc[:0]
    box = since_html({"new": frame, "resolved": empty, "worse": empty}, dt.date(2026, 10, 18), 2026)
    assert "Since the last meeting (18 Oct)" in box and "1 new flag<" in box and "0 resolved" in box
    assert "<img" not in box
