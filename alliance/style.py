"""Styling in one place: status colours (colour-blind safe, always paired with a shape or text),
the instrument palette, and the HoloViews defaults of the validation report (the pages draw with Bokeh's own
glyphs and never import HoloViews)."""

from __future__ import annotations

import functools

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
