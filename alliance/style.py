"""Styling in one place: status colours (colour-blind safe, always paired with a shape or text),
the instrument palette, and the HoloViews defaults of the validation report (the pages draw with Bokeh's own
glyphs and never import HoloViews)."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

# Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
STATUS_COLOURS = {"red": "#D55E00", "yellow": "#E69F00", "green": "#009E73", "white": "#999999"}
STATUS_SYMBOLS = {"red": "▲", "yellow": "◆", "green": "●", "white": "■"}
STATUS_MARKERS = {"red": "triangle", "yellow": "diamond", "green": "circle", "white": "square"}
CONSTRUCT_COLOURS = {"outcome": "#0072B2", "alliance": "#CC79A7"}
CUTOFF_COLOUR = "#555555"
BAND_COLOUR = "#56B4E9"  # expected course (sky blue)
RC_BAND_COLOUR = "#777777"  # reliable-change band around the intake
GAP_COLOUR = "#BBBBBB"

PLOT_WIDTH = 900
PANEL_HEIGHT = 260


@functools.cache  # once per process
def apply_defaults() -> None:
    """HoloViews option defaults of the validation report's charts (imported here, not by the pages)."""
    import holoviews as hv
    import holoviews.plotting.bokeh  # noqa: F401 — registers the Bokeh backend (no notebook output)

    hv.Store.set_current_backend("bokeh")
    hv.opts.defaults(
        hv.opts.Curve(line_width=2, tools=[], show_grid=True),
        hv.opts.Scatter(size=9, show_grid=True),
        hv.opts.Overlay(show_legend=False),
    )


def lean_renderers(*figures) -> None:
    """Drop the glyph copies Bokeh makes for every renderer's unselected and muted looks. Nothing on these
    charts selects or mutes (no tap, box-select or legend tools), and every copy is one more model that each
    session builds, walks, serialises and sends: a third of the client charts' glyph models."""
    from bokeh.models import GlyphRenderer

    for fig in figures:
        for renderer in fig.renderers:
            if isinstance(renderer, GlyphRenderer):
                renderer.nonselection_glyph = None
                renderer.muted_glyph = None


#: Advance widths in pixels of the tables' font (Roboto, 16 px, as the Material UI theme sets it; the server
#: serves the font itself) by kind of character, rounded up: kind -> (characters, pixels). Any other ASCII
#: character counts as ``OTHER_ADVANCE``, any other character as a full em (``NON_ASCII_ADVANCE``, the
#: widest common glyph); bold titles are a little wider (``BOLD``).
ADVANCES = {
    "space": (" ", 4.2),
    "narrow": ("()[].,:;'|!iljft-", 5.6),
    "wide": ("%mwMW@\u2014", 12.0),  # and the em dash
    "dash": ("\u2013", 9.0),  # the en dash of intervals
    "digit": ("0123456789", 9.0),
    "upper": ("ABCDEFGHIJKLNOPQRSTUVXYZ", 10.8),
    "lower": ("abcdeghknopqrsuvxyz", 8.0),
}
OTHER_ADVANCE = 9.0
NON_ASCII_ADVANCE = 16.0
BOLD = 1.06
#: Tabulator's padding and sort arrow around a header's title (31 px measured) and a margin.
CELL_PADDING = 34


@functools.cache
def _advances() -> dict[int, float]:
    return {ord(c): pixels for chars, pixels in ADVANCES.values() for c in chars}


@functools.cache
def _ascii_advances() -> np.ndarray:
    table = np.full(128, OTHER_ADVANCE)
    for code, pixels in _advances().items():
        if code < 128:
            table[code] = pixels
    return table


def text_widths(texts, bold: bool = False) -> np.ndarray:
    """Pixels each line of text takes in a table cell, estimated from the kinds of its characters (never under
    the font's own width for the digits, signs and lower-case text of Alliance's tables). Counted on the
    characters' codes with numpy: a table of thousands of rows takes a few milliseconds."""
    texts = [str(t) for t in texts]
    if not texts:
        return np.zeros(0)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
    pixels = np.where(codes < 128, _ascii_advances()[np.minimum(codes, 127)], NON_ASCII_ADVANCE)
    for code, advance in _advances().items():
        if code >= 128:
            pixels[codes == code] = advance
    total = np.concatenate([[0.0], np.cumsum(pixels)])
    ends = np.cumsum(lengths)
    return (total[ends] - total[ends - lengths]) * (BOLD if bold else 1.0)


def text_width(text: str, bold: bool = False) -> float:
    """Pixels one line of text takes in a table cell (``text_widths``)."""
    return float(text_widths([text], bold=bold)[0])


def percent(v) -> str:
    """A share as the tables and hover texts write it: "42 %", or "—" when there is none."""
    return "—" if v is None or pd.isna(v) else f"{100 * v:.0f} %"


def column_widths(frame: pd.DataFrame, most: int = 420) -> dict[str, int]:
    """Each column's width for a Tabulator showing ``frame``: its widest text (the bold header or any
    value of the whole frame, not only the page shown) plus the cell's padding, at most ``most`` pixels.

    Given the widths, the browser does not measure every cell of the table to fit the columns to their
    content (Tabulator's ``fitData``: about 0.5 s of a new comparison page at 200,000 episodes), and the
    columns keep their widths from one page of rows to the next."""
    widths = {}
    for column in frame.columns:
        values = frame[column].astype(str).unique()
        widest = max(text_width(str(column), bold=True), *text_widths(values))
        widths[str(column)] = int(min(most, widest + CELL_PADDING) + 0.999)
    return widths
