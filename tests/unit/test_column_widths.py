"""``alliance.style.column_widths``: the comparison table's widths, given so the browser does not measure
every cell. Checked here against the font's own widths (Roboto at 16 px, advance widths from the font's
metrics: a digit is 0.5615 em, 8.98 px) and for rows beyond the first page; the browser tier checks that
nothing is cut on the page."""

from __future__ import annotations

import pandas as pd

from alliance.style import CELL_PADDING, column_widths, text_width


def test_digits_take_at_least_their_width_in_the_font():
    assert text_width("0123456789") >= 10 * 8.98


def test_a_bold_title_is_wider_than_the_same_text_in_a_cell():
    assert text_width("mean sessions", bold=True) > text_width("mean sessions")


def test_the_widest_value_anywhere_in_the_frame_sets_the_width():
    frame = pd.DataFrame({"n": ["1"] * 100 + ["1234567890123"]})
    widths = column_widths(frame)
    assert widths["n"] >= 13 * 8.98 + CELL_PADDING
    assert column_widths(frame.head(100))["n"] < widths["n"]


def test_a_title_wider_than_the_values_sets_the_width_and_a_cap_holds():
    frame = pd.DataFrame({"sessions below alliance cut-off": ["3 %"], "note": ["x" * 500]})
    widths = column_widths(frame, most=420)
    assert widths["sessions below alliance cut-off"] > text_width("3 %") + CELL_PADDING
    assert widths["note"] == 420


def test_a_character_beyond_ascii_counts_a_full_em():
    # A code or name imported from a service's own data may hold any character: a CJK ideograph is one em
    # (16 px) wide in any font, the widest common glyph.
    assert text_width("診療") >= 2 * 16
    assert text_width("") == 0
