"""The client page's charts: outcome above alliance on one shared axis (session number or date), with the
expected course, the reliable-change band, events and an optional item breakdown.

Drawn with Bokeh's own glyphs: the figures are made once for an axis and a breakdown, every layer reads its
own ``ColumnDataSource``, and another episode is one batch of new source data, ranges, axis labels and cut-off
lines — no figure is made again and nothing is laid out again (a switch under HoloViews re-rendered about
fifteen elements and took most of a client switch). Switching the axis or the breakdown makes the figures for
it. The meeting pack draws the same charts without toolbars (``PrintedCharts``).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.core.properties import field
from bokeh.layouts import gridplot
from bokeh.models import (
    BasicTicker,
    ColorBar,
    ColumnDataSource,
    DataRange1d,
    FactorRange,
    HoverTool,
    Legend,
    LegendItem,
    LinearColorMapper,
    Range1d,
    Span,
)
from bokeh.palettes import Category10_10, Purples256
from bokeh.plotting import figure
from panel.viewable import Viewer

from alliance import model_graph, style
from alliance.state import ClientSelection

X_LABEL = {"session": "Session", "date": "Date"}
X_COLUMN = {"session": "session_number", "date": "session_date"}
OUTCOME, ALLIANCE, ITEM = "outcome_score", "alliance_score", "item_score"
REPAIR_COLOURS = {"repaired": "#009E73", "unrepaired": "#D55E00", "open": "#E69F00"}
SUDDEN_COLOURS = {"gain": "#009E73", "loss": "#D55E00"}
EVENT_STYLE = {  # kind: (colour, marker)
    "missing": ("#999999", "circle"),
    "red": (style.STATUS_COLOURS["red"], "triangle"),
    "rupture": ("#D55E00", "x"),
    "loss": ("#D55E00", "inverted_triangle"),
    "planned": ("#009E73", "square"),
    "unplanned": ("#D55E00", "square_x"),
}
EVENT_ROWS = ["End", "Alert", "Missing rating"]


HOVER = [("", "@description")]
LINES, HEAT = "items as lines", "items as heat strip"
ITEM_HEIGHT = {LINES: 220, HEAT: 170}
EVENTS_HEIGHT = 130
TOOLBAR_HEIGHT = 30  # the toolbar above the charts on the page
DAY_MS = 86_400_000  # a day on Bokeh's datetime axis (milliseconds)

#: Every data source of the charts and its columns (``x`` is the axis column: session number or date).
SOURCES = {
    "band": ["x", "p10", "p25", "p50", "p75", "p90"],
    "rc_band": ["x", "low", "high"],
    "outcome_line": ["x", OUTCOME],
    "sudden": ["x0", OUTCOME, "x1", "y1", "description", "colour", "kind"],
    "outcome_points": ["x", OUTCOME, "description", "colour", "marker", "status"],
    "spans": ["left", "right", "bottom", "top", "description", "colour", "span"],
    "alliance_line": ["x", ALLIANCE],
    "dips": ["x", ALLIANCE, "description", "colour"],
    "alliance_points": ["x", ALLIANCE, "description", "colour"],
    "rupture_marks": ["x", ALLIANCE, "description", "colour"],
    "events": ["x", "row", "description", "colour", "marker"],
    "heat": ["x", "label", ITEM],
}


def _x(frame: pd.DataFrame, axis: str, column: str = "session_number", date_column: str = "session_date"):
    """The x values of a frame for the axis (session numbers, or dates)."""
    if axis == "session":
        return frame[column].astype(float)
    return pd.to_datetime(frame[date_column])


#: The columns without which a row of a source cannot be drawn (by default its positions, below).
REQUIRED = {"band": SOURCES["band"], "rc_band": SOURCES["rc_band"]}
POSITIONS = ("x", "x0", "x1", OUTCOME, ALLIANCE, "left", "right")


def _data(frame: pd.DataFrame | None, name: str, axis: str, build) -> dict:
    """A source's columns as arrays: ``build(frame)`` gives each column of the source (a Series, an array
    or one value for every row; ``x`` is named after the axis column), and the rows that cannot be drawn
    are left out; empty columns when there is nothing to draw. Plain arrays, no DataFrame per layer: this
    runs for a dozen layers on every client switch."""
    columns, xname = SOURCES[name], X_COLUMN[axis]
    if frame is None or frame.empty:
        return {
            xname if c == "x" else c: np.array([], dtype=float if c.endswith("_score") else object)
            for c in columns
        }
    n, raw = len(frame), build(frame)
    arrays = {}
    for c in columns:
        v = raw[c]
        arrays[c] = (
            np.full(n, v, dtype=object if isinstance(v, str) else float) if np.ndim(v) == 0 else np.asarray(v)
        )
    keep = np.ones(n, dtype=bool)
    for c in REQUIRED.get(name, POSITIONS):
        if c in arrays:
            keep &= ~pd.isna(arrays[c])
    return {(xname if c == "x" else c): (v if keep.all() else v[keep]) for c, v in arrays.items()}


class ChartLayers:
    """Every layer of the client charts, drawn from an episode story on Bokeh figures made once per axis and
    breakdown: the client page (:class:`ClientCharts`) and the meeting pack (:class:`PrintedCharts`) show
    the same charts. :meth:`_make` makes the figures; :meth:`_draw` puts a story on them."""

    def __init__(self, printed: bool = False):
        self._printed = printed  # charts for print: no toolbar, nothing to pan or zoom (hover stays)
        self._axis, self._breakdown = "session", None
        self._extent: tuple = (None, None, None)  # (story, axis, extent) of the last _x_extent
        self._grid = None

    # -- making the figures -----------------------------------------------------------------------------
    def _figure(self, height: int, y_range, ylabel: str = "", **kwargs):
        printed = self._printed
        fig = figure(
            height=height,
            sizing_mode="stretch_width",
            x_range=self._x_range,
            y_range=y_range,
            x_axis_type="datetime" if self._axis == "date" else "linear",
            tools="" if printed else "xpan,xwheel_zoom,reset,save",
            active_scroll="auto" if printed else "xwheel_zoom",
            toolbar_location=None if printed else "above",
            x_axis_label=X_LABEL[self._axis],
            y_axis_label=ylabel,
            **kwargs,
        )
        # The same look on the page (themed by Panel) and in the pack (Bokeh's defaults): upright labels, no
        # minor ticks.
        fig.axis.axis_label_text_font_style = "normal"
        fig.axis.minor_tick_line_color = None
        if self._axis == "session":  # sessions are whole numbers
            ticker = BasicTicker(min_interval=1, desired_num_ticks=10)
            fig.xaxis.ticker = ticker
            fig.xgrid.ticker = ticker
        return fig

    def _hover(self, fig, *renderers, tooltips=HOVER) -> None:
        fig.add_tools(HoverTool(renderers=list(renderers), tooltips=tooltips))

    def _make(self, axis: str, breakdown: str | None = None):
        """The figures for an axis and a breakdown, with every layer's glyph on its (empty) source."""
        self._axis, self._breakdown = axis, breakdown
        self._sources = {name: ColumnDataSource(_data(None, name, axis, None)) for name in SOURCES}
        src, x = self._sources, X_COLUMN[axis]
        self._x_range = Range1d(start=0, end=1)
        self._cutoffs = {}

        # Outcome: the expected course (10-90 and 25-75 bands, median), the reliable-change band, the
        # cut-off, the scores joined by a line, sudden gains and losses, and each score's point.
        outcome = self._figure(style.PANEL_HEIGHT, Range1d(start=0, end=1), "Outcome")
        outcome.varea(x, "p10", "p90", source=src["band"], fill_color=style.BAND_COLOUR, fill_alpha=0.15)
        outcome.varea(x, "p25", "p75", source=src["band"], fill_color=style.BAND_COLOUR, fill_alpha=0.25)
        outcome.line(x, "p50", source=src["band"], color=style.BAND_COLOUR, line_dash="dotted", line_width=2)
        outcome.varea(
            x, "low", "high", source=src["rc_band"], fill_color=style.RC_BAND_COLOUR, fill_alpha=0.12
        )
        self._cutoffs["outcome"] = self._cutoff(outcome)
        colour = style.CONSTRUCT_COLOURS["outcome"]
        outcome.line(x, OUTCOME, source=src["outcome_line"], color=colour, line_width=2)
        sudden = outcome.segment(
            "x0", OUTCOME, "x1", "y1", source=src["sudden"], color=field("colour"), line_width=7, alpha=0.45
        )
        points = outcome.scatter(
            x,
            OUTCOME,
            source=src["outcome_points"],
            marker=field("marker"),
            fill_color=field("colour"),
            line_color="white",
            size=12,
        )
        self._hover(outcome, sudden, points)

        # Alliance: rupture spans (shaded to the repair, or to the last rating), the cut-off, the line,
        # dips, each rating's point (below the cut-off in yellow) and the rupture marks.
        alliance = self._figure(style.PANEL_HEIGHT, Range1d(start=0, end=1), "Alliance")
        spans = alliance.quad(
            left="left",
            right="right",
            bottom="bottom",
            top="top",
            source=src["spans"],
            fill_color=field("colour"),
            fill_alpha=0.15,
            line_alpha=0,
        )
        self._cutoffs["alliance"] = self._cutoff(alliance)
        colour = style.CONSTRUCT_COLOURS["alliance"]
        alliance.line(x, ALLIANCE, source=src["alliance_line"], color=colour, line_width=2)
        dips = alliance.scatter(
            x,
            ALLIANCE,
            source=src["dips"],
            marker="inverted_triangle",
            color=field("colour"),
            size=6,
            alpha=0.6,
        )
        points = alliance.scatter(
            x,
            ALLIANCE,
            source=src["alliance_points"],
            fill_color=field("colour"),
            line_color="white",
            size=10,
        )
        marks = alliance.scatter(
            x,
            ALLIANCE,
            source=src["rupture_marks"],
            marker="x",
            line_color=field("colour"),
            line_width=3,
            size=18,
        )
        self._hover(alliance, spans, dips, points, marks)
        figures = [outcome, alliance]

        if breakdown == LINES:
            self._items = self._figure(ITEM_HEIGHT[LINES], DataRange1d(), "Item or subscale")
            self._items.add_layout(Legend(items=[], location="top_left"), "right")
            # The point's own session or date (not the mouse's position), and its score.
            where = "@{session_number}" if axis == "session" else "@{session_date}{%d %b %Y}"
            self._item_hover = HoverTool(
                renderers=[],
                tooltips=[("item", "$name"), (X_LABEL[axis], where), ("score", f"@{ITEM}")],
                formatters={"@{session_date}": "datetime"},
            )
            self._items.add_tools(self._item_hover)
            figures.append(self._items)
        elif breakdown == HEAT:
            self._heat_range = FactorRange(factors=[])
            heat = self._figure(ITEM_HEIGHT[HEAT], self._heat_range)
            self._mapper = LinearColorMapper(palette=Purples256, low=0, high=1)
            cells = heat.rect(
                x,
                "label",
                width=1 if axis == "session" else 6 * DAY_MS,
                height=1,
                source=src["heat"],
                fill_color={"field": ITEM, "transform": self._mapper},
                line_color=None,
            )
            heat.add_layout(ColorBar(color_mapper=self._mapper, width=10, title="Score"), "right")
            self._hover(heat, cells, tooltips=[("item", "@label"), ("score", f"@{ITEM}")])
            heat.ygrid.grid_line_color = None
            figures.append(heat)

        # Events: ends, alerts and missing ratings on three rows under the charts.
        events = self._figure(EVENTS_HEIGHT, FactorRange(*EVENT_ROWS))
        marks = events.scatter(
            x,
            "row",
            source=src["events"],
            marker=field("marker"),
            color=field("colour"),
            size=11,
            line_width=2,
        )
        self._hover(events, marks)
        figures.append(events)

        self._figures = figures
        style.lean_renderers(*figures)
        self._grid = gridplot(
            [[f] for f in figures],
            merge_tools=not self._printed,
            toolbar_location=None if self._printed else "above",
            sizing_mode="stretch_width",
        )
        # Never squeezed: the page's columns are as tall as the window, and a grid taller than that (an item
        # breakdown) would otherwise shrink to it and run over what follows the charts.
        self._grid.min_height = sum(f.height for f in figures) + (0 if self._printed else TOOLBAR_HEIGHT)
        if self._printed:
            self._grid.toolbar_location = None
            for fig in figures:
                fig.toolbar_location = None
        return self._grid

    @property
    def grid(self):
        """The Bokeh grid (``GridPlot``) of the figures: outcome, alliance, [items,] events, top to bottom."""
        return self._grid

    def _cutoff(self, fig) -> Span:
        """The clinical cut-off across the chart (hidden where the instrument has no validated one)."""
        line = Span(
            location=0,
            dimension="width",
            line_color=style.CUTOFF_COLOUR,
            line_dash="dashed",
            line_width=1.5,
            visible=False,
        )
        fig.add_layout(line)
        return line

    # -- drawing a story --------------------------------------------------------------------------------
    def _draw(self, story) -> None:
        """Put ``story`` on the figures: every source's data, the ranges, labels, cut-offs and tags."""
        axis = self._axis
        for name, data in self._layers(story, axis).items():
            self._sources[name].data = data
        info = story.summary.get("info", {}) if story is not None else {}
        tags = [f"episode:{info.get('episode_id', '')}"]
        x0, _, x1, _ = self._x_extent(story, axis)
        if not (pd.isna(x0) or pd.isna(x1)):
            self._x_range.update(start=x0, end=x1, reset_start=x0, reset_end=x1)
        for fig, construct in zip(self._figures, ("outcome", "alliance"), strict=False):
            y0, y1 = self._ylim(story, construct)
            fig.y_range.update(start=y0, end=y1, reset_start=y0, reset_end=y1)
            fig.yaxis.axis_label = self._ylabel(story, construct)
            cutoff = story.cutoffs.get(construct) if story is not None else None
            self._cutoffs[construct].update(
                location=0 if cutoff is None else float(cutoff), visible=cutoff is not None
            )
        if self._breakdown == LINES:
            self._draw_item_lines(story, axis)
        elif self._breakdown == HEAT:
            self._draw_item_heat(story, axis)
        for fig in self._figures:
            fig.tags = tags

    @staticmethod
    def _ylabel(story, construct: str) -> str:
        frame = getattr(story, construct) if story is not None else None
        if frame is None or frame.empty:
            return construct.capitalize()
        return f"{frame['instrument'].iloc[0]} ({construct})"

    @staticmethod
    def _ylim(story, construct: str) -> tuple[float, float]:
        """The y range of a construct's chart: the instrument's whole scale (a little headroom above), so a
        score's place on it reads at a glance (PHQ-9 to 27, not to the 40 of an ORS drawn before)."""
        lo, hi = story.scales[construct] if story else (0, 1)
        return lo, hi + (hi - lo) * 0.04

    def _layers(self, story, axis: str) -> dict[str, dict]:
        """The data of every source for a story."""
        if story is None:
            return {name: _data(None, name, axis, None) for name in SOURCES}
        out = {}
        band = story.band

        def xy(frame, column, y):
            return {"x": _x(frame, axis), y: frame[column]}

        out["band"] = _data(
            band,
            "band",
            axis,
            lambda f: {"x": _x(f, axis), **{p: f[p] for p in SOURCES["band"][1:]}},
        )
        out["rc_band"] = _data(
            story.rc_band,
            "rc_band",
            axis,
            lambda f: {"x": _x(f, axis), "low": f["low"], "high": f["high"]},
        )
        outcome = story.outcome.dropna(subset=["score"])
        out["outcome_line"] = _data(outcome, "outcome_line", axis, lambda f: xy(f, "score", OUTCOME))
        out["outcome_points"] = _data(
            outcome,
            "outcome_points",
            axis,
            lambda f: {
                **xy(f, "score", OUTCOME),
                "description": f["description"],
                "colour": f["colour"],
                "marker": f["marker"],
                "status": f["status"].fillna("intake"),
            },
        )
        sudden = story.sudden
        if axis == "date" and len(sudden) and sudden[["date0", "date1"]].isna().any().any():
            sudden = None
        out["sudden"] = _data(
            sudden,
            "sudden",
            axis,
            lambda f: (
                {
                    "x0": f["session_number"] if axis == "session" else pd.to_datetime(f["date0"]),
                    OUTCOME: f["y0"],
                    "x1": f["x1"] if axis == "session" else pd.to_datetime(f["date1"]),
                    "y1": f["y1"],
                    "description": f["description"],
                    "colour": f["kind"].map(SUDDEN_COLOURS),
                    "kind": "sudden " + f["kind"],
                }
            ),
        )
        out["spans"] = _data(story.ruptures, "spans", axis, lambda f: self._spans(story, f, axis))
        alliance = story.alliance.dropna(subset=["score"])
        out["alliance_line"] = _data(alliance, "alliance_line", axis, lambda f: xy(f, "score", ALLIANCE))

        def points(f):
            below = f["clinical"].fillna(False).astype(bool)
            colour = np.where(below, style.STATUS_COLOURS["yellow"], style.CONSTRUCT_COLOURS["alliance"])
            return {**xy(f, "score", ALLIANCE), "description": f["description"], "colour": colour}

        out["alliance_points"] = _data(alliance, "alliance_points", axis, points)
        out["dips"] = _data(
            story.dips,
            "dips",
            axis,
            lambda f: (
                {
                    "x": _x(f, axis),
                    ALLIANCE: f["score"] - 0.8,
                    "description": f["description"],
                    "colour": "#999999",
                }
            ),  # just under the point, quietly
        )
        out["rupture_marks"] = _data(
            story.ruptures,
            "rupture_marks",
            axis,
            lambda f: (
                {
                    "x": _x(f, axis, date_column="date0"),
                    ALLIANCE: f["score"],
                    "description": "Rupture: " + f["description"],
                    "colour": f["status"].map(REPAIR_COLOURS),
                }
            ),
        )
        out["events"] = _data(
            story.events,
            "events",
            axis,
            lambda f: (
                {
                    "x": _x(f, axis),
                    "row": f["row"],
                    "description": f["description"],
                    "colour": f["kind"].map(lambda k: EVENT_STYLE[k][0]),
                    "marker": f["kind"].map(lambda k: EVENT_STYLE[k][1]),
                }
            ),
        )
        out["heat"] = _data(
            story.items if self._breakdown == HEAT else None,
            "heat",
            axis,
            lambda f: {"x": _x(f, axis), "label": f["label"], ITEM: f["score"]},
        )
        return out

    def _spans(self, story, frame: pd.DataFrame, axis: str) -> dict:
        lo, hi = story.scales["alliance"]
        left, right = self._span_ends(story, axis)
        words = frame["status"].map(
            {"repaired": "repaired", "unrepaired": "not repaired", "open": "still open"}
        )
        return {
            "left": left,
            "right": right,
            "bottom": lo,
            "top": hi,
            "description": "Rupture span (" + words + "): " + frame["description"],
            "colour": frame["status"].map(REPAIR_COLOURS),
            "span": "rupture " + frame["status"],
        }

    def _draw_item_lines(self, story, axis: str) -> None:
        """One line per item or subscale (their number changes with the instrument), with the legend."""
        fig = self._items
        frame = story.items if story is not None else pd.DataFrame()
        if axis == "date" and len(frame):
            frame = frame.dropna(subset=["session_date"])
        old = set(self._item_hover.renderers)
        fig.renderers = [r for r in fig.renderers if r not in old]
        lines, items = [], []
        if len(frame):
            for i, (label, sub) in enumerate(frame.groupby("label", sort=False)):
                source = ColumnDataSource(
                    {X_COLUMN[axis]: _x(sub, axis).to_numpy(), ITEM: sub["score"].to_numpy()}
                )
                line = fig.line(
                    X_COLUMN[axis],
                    ITEM,
                    source=source,
                    name=str(label),
                    line_width=2,
                    color=Category10_10[i % len(Category10_10)],
                )
                lines.append(line)
                items.append(LegendItem(label=str(label), renderers=[line]))
        self._item_hover.renderers = lines
        fig.legend[0].items = items

    def _draw_item_heat(self, story, axis: str) -> None:
        data = self._sources["heat"].data
        labels = list(dict.fromkeys(data["label"]))
        self._heat_range.factors = labels
        scores = np.asarray(data[ITEM], dtype=float)
        scores = scores[np.isfinite(scores)]
        if len(scores):
            lo, hi = float(scores.min()), float(scores.max())
            self._mapper.update(low=lo, high=hi if hi > lo else lo + 1)

    # -- where things sit on the axis -------------------------------------------------------------------
    def _x_extent(self, story, axis) -> tuple:
        """The horizontal extent of everything a story draws, padded: (left, nan, right, nan)."""
        if self._extent[0] is story and self._extent[1] == axis:
            return self._extent[2]
        extent = (np.nan, np.nan, np.nan, np.nan)
        if story is not None:
            frames = (story.outcome, story.alliance, story.band, story.rc_band, story.events, story.items)
            if axis == "session":
                parts = [f["session_number"] for f in frames]
                parts += list(self._span_ends(story, axis)) if len(story.ruptures) else []
                parts.append(story.sudden["x1"])
            else:
                parts = [f["session_date"] for f in frames]
                parts += list(self._span_ends(story, axis)) if len(story.ruptures) else []
                parts.append(story.sudden["date1"])
                parts = [pd.to_datetime(p) for p in parts]
            parts = [p.dropna() for p in parts]
            parts = [p for p in parts if len(p)]
            if parts:
                lo, hi = min(p.min() for p in parts), max(p.max() for p in parts)
                floor = 0.5 if axis == "session" else pd.Timedelta(days=3)
                pad = max((hi - lo) * 0.08, floor)
                extent = (lo - pad, np.nan, hi + pad, np.nan)
        self._extent = (story, axis, extent)
        return extent

    @staticmethod
    def _last_rating(story, axis):
        """Where the episode's last rating (outcome or alliance) sits on the axis; NaN/NaT without one."""
        rated = [f.dropna(subset=["score"]) for f in (story.outcome, story.alliance)]
        if axis == "session":
            values = [f["session_number"].astype(float) for f in rated if len(f)]
            return max((v.max() for v in values), default=np.nan)
        values = [pd.to_datetime(f["session_date"]).dropna() for f in rated if len(f)]
        values = [v for v in values if len(v)]
        return max((v.max() for v in values), default=pd.NaT)

    def _span_ends(self, story, axis) -> tuple[pd.Series, pd.Series]:
        """Left and right ends of the rupture spans: a repaired rupture's span reaches its repair; an
        unrepaired or still open one's stops at the episode's last rating (nothing is known after it)."""
        frame = story.ruptures
        last = self._last_rating(story, axis)
        open_ = frame["status"] != "repaired"
        if axis == "session":
            x0, x1 = frame["session_number"] - 0.4, frame["end_session"] + 0.4
            if not pd.isna(last):
                x1 = x1.where(~open_, frame["session_number"].clip(lower=last))
        else:
            pad = pd.Timedelta(days=3)  # as the session axis pads by 0.4: a span at one session shows
            x0, x1 = pd.to_datetime(frame["date0"]) - pad, pd.to_datetime(frame["date1"]) + pad
            if not pd.isna(last):
                x1 = x1.where(~open_, x0.clip(lower=last))
        return x0, x1


class ClientCharts(ChartLayers, Viewer):
    """Outcome, alliance, optional items, and the events strip, sharing the horizontal axis.

    The figures are made once for the selection's axis and breakdown; a new story replaces their sources'
    data in one batch. With ``follow`` (the default) the charts redraw when the selection's story changes; a
    page that swaps several views together sets ``follow=False`` and calls :meth:`show` inside its own
    ``pn.io.hold()``. Each figure carries the episode it draws in its Bokeh ``tags`` (``episode:<id>``).
    """

    selection = param.ClassSelector(class_=ClientSelection)
    follow = param.Boolean(default=True, doc="Redraw when the selection's story changes.")
    deferred = param.Boolean(
        default=False,
        doc="Make the figures only when ``build()`` is called: a served page's main area, built while the "
        "browser draws the page's frame (``alliance.pages.serve``).",
    )

    def __init__(self, **params):
        Viewer.__init__(self, **params)
        ChartLayers.__init__(self)
        self._story = self.selection.story  # the story shown
        # A new pane for each new set of figures: a Bokeh pane keeps the height of the grid it was laid out
        # with, so an item breakdown would run over what follows.
        # No episode (a client not found, a clinician with none in scope): no charts, not empty axes.
        self._pane = pn.Column(sizing_mode="stretch_width", margin=0, visible=self._story is not None)
        if not self.deferred:
            self.build()
        self.selection.param.watch(self._update_layout, ["x_axis", "breakdown"])
        if self.follow:
            # Bokeh's own models change on the event loop (a served session's callbacks may run on a thread).
            self.selection.param.watch(
                lambda event: pn.state.execute(partial(self.show, event.new)), ["story"]
            )

    def build(self) -> None:
        """Make the figures, drawing the story last shown, unless they are made already."""
        if not self._pane.objects:
            self._pane.objects = [self._bokeh_pane()]

    def show(self, story) -> None:
        """Draw ``story`` on every chart: one batch of source data, ranges and labels (or, before ``build``,
        keep it for then)."""
        self._story = story
        self._pane.visible = story is not None
        if not self._pane.objects:
            return
        # Bokeh walks the document's model graph at most once, only if a change asks for it.
        with model_graph.batch(), pn.io.hold():
            self._draw(story)

    def _bokeh_pane(self):
        grid = self._make(self.selection.x_axis, self.selection.breakdown)
        self._draw(self._story)
        if isinstance(getattr(self, "_pane", None), pn.Column):
            self._pane.min_height = grid.min_height
        return pn.pane.Bokeh(
            grid, min_height=grid.min_height, sizing_mode="stretch_width", name="client-charts"
        )

    def _update_layout(self, *events):
        if not self._pane.objects:
            return  # build() makes them for the axis and breakdown chosen by then
        # On the event loop, after any story queued there: the figures are replaced while no show draws.
        pn.state.execute(lambda: setattr(self._pane, "objects", [self._bokeh_pane()]))

    def __panel__(self):
        return self._pane


class PrintedCharts(ChartLayers):
    """The client charts for print (the meeting pack): outcome, alliance and the events strip of one story
    at a time, with no toolbar and nothing to pan or zoom (hover stays).

    Made once, then drawn with each next story as the client page draws another client: :meth:`draw` returns
    the same Bokeh grid each time, showing the story given — serialize it before drawing the next. Every
    chart of a story is on that story's own axes: the outcome and alliance on their instruments' scales, the
    sessions of that episode.
    """

    def __init__(self, axis: str = "session"):
        super().__init__(printed=True)
        self._make(axis)

    def draw(self, story):
        """The Bokeh grid (``GridPlot``) drawing ``story``."""
        self._draw(story)
        return self._grid
