"""The client page's charts: outcome above alliance on one shared axis (session number or date), with the
expected course, the reliable-change band, events and an optional item breakdown.

Each chart is one ``hv.DynamicMap`` drawing all its layers from the episode story, and one ``hv.streams.Pipe``
feeds every chart: choosing another episode is one refresh per chart, patching the existing plots instead of
rebuilding the page, and zoom is linked through the shared x dimension. Switching the axis or the breakdown
builds the layout for it. The meeting pack draws the same layers as static charts (``ChartLayers``).
"""

from __future__ import annotations

from functools import partial

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.document import Document
from bokeh.models import BasicTicker, HoverTool, Plot, Range1d
from bokeh.themes import default as default_theme
from panel.viewable import Viewer

from alliance import style
from alliance.state import ClientSelection

X = {
    "session": hv.Dimension("session_number", label="Session"),
    "date": hv.Dimension("session_date", label="Date"),
}
OUTCOME = hv.Dimension("outcome_score", label="Outcome")
OUTCOME2 = hv.Dimension(
    "outcome_score_2", label="Outcome (band top)"
)  # a label of its own, or HoloViews resolves it to OUTCOME
ALLIANCE = hv.Dimension("alliance_score", label="Alliance")
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


def _xcol(axis: str) -> str:
    return X[axis].name


class ChartLayers:
    """Every layer of the client charts drawn from an episode story, each chart one ``hv.DynamicMap`` fed by
    the ``hv.streams.Pipe`` of the subclass: the client page (:class:`ClientCharts`) and the meeting pack
    (:class:`PrintedCharts`) show the same charts."""

    def __init__(self):
        self._drawn = None  # the story the charts' last frames were drawn from
        self._styles: dict = {}  # option key -> the element that holds those options (see _styled)
        self._extent: tuple = (None, None, None)  # (story, axis, extent) of the last _x_extent
        self._printed = False  # charts for print: no toolbar, nothing to pan or zoom (PrintedCharts)

    def _chart(self, draw, axis) -> hv.DynamicMap:
        """One chart: ``draw(story, axis)`` returns all its layers, evaluated once per story."""

        def frame(data):
            self._drawn = data
            return draw(data, axis)

        return hv.DynamicMap(frame, streams=[self._pipe], cache_size=1)

    def _styled(self, element, key, *options, **kwargs):
        """``element`` with the options registered for ``key``: set once, then shared by every frame through
        HoloViews' option id, so no frame is cloned to apply options (``.opts`` on a frame, or on the
        DynamicMap, which re-applies them to the whole overlay on each frame)."""
        template = self._styles.get(key)
        if template is None:
            # Kept alive here: HoloViews drops an option tree once no object carries its id.
            template = self._styles[key] = element.opts(*options, **kwargs)
        element.id = template.id
        return element

    def _finish_figure(self, plot, element, axis: str, construct: str | None = None) -> None:
        """Hook, after each draw of a figure: the episode it draws in its Bokeh ``tags`` (``episode:<id>``,
        read by the browser tests), and the shared x range set to the episode's extent. HoloViews only ever
        widens a range the figures share; set here, every chart gets the same span whichever updates last,
        after a switch as on a freshly opened page. The outcome and alliance charts (``construct``) get
        their instrument's whole scale as y range, the next episode's instrument too (PHQ-9 to 27, not to
        the 40 of an ORS drawn before)."""
        story = self._drawn
        info = story.summary.get("info", {}) if story is not None else {}
        figure = plot.state
        figure.tags = [f"episode:{info.get('episode_id', '')}"]
        x0, _, x1, _ = self._x_extent(story, axis)
        if isinstance(figure.x_range, Range1d) and not (pd.isna(x0) or pd.isna(x1)):
            figure.x_range.update(start=x0, end=x1, reset_start=x0, reset_end=x1)
        if construct and story is not None and isinstance(figure.y_range, Range1d):
            y0, y1 = self._ylim(story, construct)
            figure.y_range.update(start=y0, end=y1, reset_start=y0, reset_end=y1)

    @staticmethod
    def _ylim(story, construct: str) -> tuple[float, float]:
        """The y range of a construct's chart: the instrument's whole scale (a little headroom above)."""
        lo, hi = story.scales[construct] if story else (0, 1)
        return lo, hi + (hi - lo) * 0.04

    def _panel(self, layers: list, axis: str, construct: str) -> hv.Overlay:
        """One chart's layers, with the chart's options."""
        return self._styled(
            hv.Overlay(layers), ("panel", axis, construct, self._printed), self._panel_opts(axis, construct)
        )

    def _panel_opts(self, axis: str, construct: str, height: int = style.PANEL_HEIGHT, **extra):
        opts = dict(
            responsive=True,
            height=height,
            framewise=True,
            toolbar="above",
            show_legend=False,
            default_tools=["xpan", "xwheel_zoom", "reset", "save"],
            active_tools=["xwheel_zoom"],
            hooks=[partial(self._finish_figure, axis=axis, construct=construct)],
        )
        if self._printed:  # nothing to pan or zoom, no toolbar (hover stays)
            opts.update(toolbar=None, default_tools=[], active_tools=[])
        if axis == "session":
            opts["xticks"] = BasicTicker(min_interval=1)  # sessions are whole numbers
        return hv.opts.Overlay(**opts, **extra)

    # -- outcome --------------------------------------------------------------------------------------
    def _outcome_overlay(self, story, axis: str) -> hv.Overlay:
        return self._panel(
            [
                self._etr_outer(story, axis),
                self._etr_inner(story, axis),
                self._etr_median(story, axis),
                self._rc_band(story, axis),
                self._outcome_cutoff(story, axis),
                self._outcome_line(story, axis),
                self._sudden(story, axis),
                self._outcome_points(story, axis),
            ],
            axis,
            "outcome",
        )

    def _x(
        self,
        frame: pd.DataFrame,
        axis: str,
        column: str = "session_number",
        date_column: str = "session_date",
    ):
        """The x values of a frame for the axis; rows without a date are dropped on the date axis."""
        if axis == "session":
            return frame[column].astype(float)
        return pd.to_datetime(frame[date_column])

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
                pad = max((hi - lo) * 0.08, floor)  # about what HoloViews pads a fresh page by
                extent = (lo - pad, np.nan, hi + pad, np.nan)
        self._extent = (story, axis, extent)
        return extent

    def _area(self, story, axis, lo, hi, colour, alpha, frame_name="band"):
        area = self._area_element(story, axis, lo, hi, frame_name)
        return self._styled(area, ("area", lo), color=colour, alpha=alpha, line_alpha=0)

    def _area_element(self, story, axis, lo, hi, frame_name):
        frame = getattr(story, frame_name) if story else None
        y, y2 = OUTCOME, OUTCOME2
        if frame is None or frame.empty:
            empty = pd.DataFrame(
                {
                    _xcol(axis): pd.Series(dtype=float if axis == "session" else "datetime64[ns]"),
                    y.name: pd.Series(dtype=float),
                    y2.name: pd.Series(dtype=float),
                }
            )
            return hv.Area(empty, X[axis], [y, y2])
        data = pd.DataFrame(
            {_xcol(axis): self._x(frame, axis), y.name: frame[lo], y2.name: frame[hi]}
        ).dropna()
        return hv.Area(data, X[axis], [y, y2])

    def _etr_outer(self, story, axis):
        return self._area(story, axis, "p10", "p90", style.BAND_COLOUR, 0.15)

    def _etr_inner(self, story, axis):
        return self._area(story, axis, "p25", "p75", style.BAND_COLOUR, 0.25)

    def _rc_band(self, story, axis):
        return self._area(story, axis, "low", "high", style.RC_BAND_COLOUR, 0.12, "rc_band")

    def _curve(self, key, frame, axis, y, column, **opts):
        if frame is None or frame.empty:
            data = pd.DataFrame(
                {
                    _xcol(axis): pd.Series(dtype=float if axis == "session" else "datetime64[ns]"),
                    y.name: pd.Series(dtype=float),
                }
            )
        else:
            data = pd.DataFrame({_xcol(axis): self._x(frame, axis), y.name: frame[column]}).dropna()
        return self._styled(hv.Curve(data, X[axis], y), ("curve", key), **opts)

    def _etr_median(self, story, axis):
        return self._curve(
            "median",
            story.band if story else None,
            axis,
            OUTCOME,
            "p50",
            color=style.BAND_COLOUR,
            line_dash="dotted",
            line_width=2,
        )

    def _cutoff(self, story, construct: str) -> hv.HLine:
        """The clinical cut-off across the plot (none drawn where the instrument has no validated one). The y
        range always spans the whole scale, so a score's place on it reads at a glance."""
        cutoff = story.cutoffs.get(construct) if story else None
        ylim = self._ylim(story, construct)
        return self._styled(
            hv.HLine(np.nan if cutoff is None else cutoff),
            ("cutoff", ylim),
            color=style.CUTOFF_COLOUR,
            line_dash="dashed",
            line_width=1.5,
            ylim=ylim,
        )

    def _outcome_cutoff(self, story, axis):
        return self._cutoff(story, "outcome")

    def _outcome_line(self, story, axis):
        frame = story.outcome.dropna(subset=["score"]) if story else None
        return self._curve(
            "outcome", frame, axis, OUTCOME, "score", color=style.CONSTRUCT_COLOURS["outcome"], line_width=2
        )

    def _outcome_points(self, story, axis):
        frame = story.outcome.dropna(subset=["score"]) if story else pd.DataFrame()
        if axis == "date" and len(frame):
            frame = frame.dropna(subset=["session_date"])
        ylabel = (
            f"{story.outcome['instrument'].iloc[0]} (outcome)" if story and len(story.outcome) else "Outcome"
        )
        data = pd.DataFrame(
            {
                _xcol(axis): self._x(frame, axis) if len(frame) else pd.Series(dtype=float),
                OUTCOME.name: frame["score"] if len(frame) else pd.Series(dtype=float),
                "description": frame["description"] if len(frame) else pd.Series(dtype=str),
                "colour": frame["colour"] if len(frame) else pd.Series(dtype=str),
                "marker": frame["marker"] if len(frame) else pd.Series(dtype=str),
                "status": frame["status"].fillna("intake") if len(frame) else pd.Series(dtype=str),
            }
        )
        return self._styled(
            hv.Scatter(data, X[axis], [OUTCOME, "description", "colour", "marker", "status"]),
            ("outcome points", ylabel),
            color="colour",
            marker="marker",
            size=12,
            line_color="white",
            ylabel=ylabel,
            tools=["hover"],
            hover_tooltips=[("", "@description")],
        )

    def _sudden(self, story, axis):
        frame = story.sudden if story else pd.DataFrame()
        cols = ["x0", "y0", "x1", "y1"]
        if frame is None or frame.empty or (axis == "date" and frame[["date0", "date1"]].isna().any().any()):
            empty = pd.DataFrame({c: pd.Series(dtype=float) for c in cols}).assign(
                description=pd.Series(dtype=str), colour=pd.Series(dtype=str), kind=pd.Series(dtype=str)
            )
            if axis == "date":
                empty[["x0", "x1"]] = empty[["x0", "x1"]].astype("datetime64[ns]")
            return hv.Segments(
                empty.rename(columns={"x0": _xcol(axis), "y0": OUTCOME.name}),
                self._corner_dims(axis, OUTCOME),
                ["description", "colour", "kind"],
            )  # nothing drawn: no options needed
        x0 = frame["session_number"] if axis == "session" else pd.to_datetime(frame["date0"])
        x1 = frame["x1"] if axis == "session" else pd.to_datetime(frame["date1"])
        data = pd.DataFrame(
            {
                "x0": x0,
                "y0": frame["y0"],
                "x1": x1,
                "y1": frame["y1"],
                "description": frame["description"],
                "colour": frame["kind"].map(SUDDEN_COLOURS),
                "kind": "sudden " + frame["kind"],
            }
        )
        data = data.rename(columns={"x0": _xcol(axis), "y0": OUTCOME.name})
        return self._styled(
            hv.Segments(data, self._corner_dims(axis, OUTCOME), ["description", "colour", "kind"]),
            "sudden",
            color="colour",
            line_width=7,
            alpha=0.45,
            tools=["hover"],
            hover_tooltips=[("", "@description")],
        )

    @staticmethod
    def _corner_dims(axis: str, y: hv.Dimension) -> list:
        """kdims of segments and rectangles: the first corner on the shared axes, so panels stay linked."""
        return [X[axis], y, X[axis].clone("x1"), y.clone("y1")]

    # -- alliance -------------------------------------------------------------------------------------
    def _alliance_overlay(self, story, axis: str) -> hv.Overlay:
        return self._panel(
            [
                self._rupture_spans(story, axis),
                self._alliance_cutoff(story, axis),
                self._alliance_line(story, axis),
                self._dips(story, axis),
                self._alliance_points(story, axis),
                self._rupture_marks(story, axis),
            ],
            axis,
            "alliance",
        )

    def _rupture_spans(self, story, axis):
        frame = story.ruptures if story else pd.DataFrame()
        lo, hi = story.scales["alliance"] if story else (0, 1)
        dims = self._corner_dims(axis, ALLIANCE)
        if frame is None or frame.empty:
            empty = pd.DataFrame({c: pd.Series(dtype=float) for c in ["x0", "y0", "x1", "y1"]}).assign(
                description=pd.Series(dtype=str), colour=pd.Series(dtype=str), span=pd.Series(dtype=str)
            )
            if axis == "date":
                empty[["x0", "x1"]] = empty[["x0", "x1"]].astype("datetime64[ns]")
            return hv.Rectangles(
                empty.rename(columns={"x0": _xcol(axis), "y0": ALLIANCE.name}),
                dims,
                ["description", "colour", "span"],
            )  # nothing drawn: no options needed
        x0, x1 = self._span_ends(story, axis)
        data = pd.DataFrame(
            {
                "x0": x0,
                "y0": lo,
                "x1": x1,
                "y1": hi,
                "description": "Rupture span ("
                + frame["status"].map(
                    {"repaired": "repaired", "unrepaired": "not repaired", "open": "still open"}
                )
                + "): "
                + frame["description"],
                "colour": frame["status"].map(REPAIR_COLOURS),
                "span": "rupture " + frame["status"],
            }
        )
        data = data.rename(columns={"x0": _xcol(axis), "y0": ALLIANCE.name})
        return self._styled(
            hv.Rectangles(data, dims, ["description", "colour", "span"]),
            "rupture spans",
            color="colour",
            alpha=0.15,
            line_alpha=0,
            tools=["hover"],
            hover_tooltips=[("", "@description")],
        )

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

    def _alliance_cutoff(self, story, axis):
        return self._cutoff(story, "alliance")

    def _alliance_line(self, story, axis):
        frame = story.alliance.dropna(subset=["score"]) if story else None
        return self._curve(
            "alliance",
            frame,
            axis,
            ALLIANCE,
            "score",
            color=style.CONSTRUCT_COLOURS["alliance"],
            line_width=2,
        )

    def _points(self, key, frame, axis, y, colour_col, marker, size, **opts):
        if axis == "date" and len(frame):
            frame = frame.dropna(subset=["session_date"])
        data = pd.DataFrame(
            {
                _xcol(axis): self._x(frame, axis) if len(frame) else pd.Series(dtype=float),
                y.name: frame["score"] if len(frame) else pd.Series(dtype=float),
                "description": frame["description"] if len(frame) else pd.Series(dtype=str),
                "colour": frame[colour_col] if len(frame) else pd.Series(dtype=str),
            }
        )
        return self._styled(
            hv.Scatter(data, X[axis], [y, "description", "colour"]),
            key,
            color="colour",
            marker=marker,
            size=size,
            tools=["hover"],
            hover_tooltips=[("", "@description")],
            **opts,
        )

    def _alliance_points(self, story, axis):
        frame = story.alliance.dropna(subset=["score"]) if story else pd.DataFrame()
        if len(frame):
            below = frame["clinical"].fillna(False).astype(bool)
            frame = frame.assign(
                colour=np.where(below, style.STATUS_COLOURS["yellow"], style.CONSTRUCT_COLOURS["alliance"])
            )
        ylabel = (
            f"{story.alliance['instrument'].iloc[0]} (alliance)"
            if story and len(story.alliance)
            else "Alliance"
        )
        return self._points(
            ("alliance points", ylabel),
            frame,
            axis,
            ALLIANCE,
            "colour",
            "circle",
            10,
            line_color="white",
            ylabel=ylabel,
        )

    def _dips(self, story, axis):
        frame = story.dips if story else pd.DataFrame()
        if len(frame):
            frame = frame.assign(
                colour="#999999", score=frame["score"] - 0.8
            )  # just under the point, quietly
        return self._points("dips", frame, axis, ALLIANCE, "colour", "inverted_triangle", 6, alpha=0.6)

    def _rupture_marks(self, story, axis):
        frame = story.ruptures if story else pd.DataFrame()
        if len(frame):
            frame = frame.assign(
                colour=frame["status"].map(REPAIR_COLOURS),
                session_date=frame["date0"],
                description="Rupture: " + frame["description"],
            )
        return self._points("rupture marks", frame, axis, ALLIANCE, "colour", "x", 18, line_width=3)

    # -- items ------------------------------------------------------------------------------------------
    def _items_frame(self, story, axis):
        frame = story.items if story else pd.DataFrame()
        if axis == "date" and len(frame):
            frame = frame.dropna(subset=["session_date"])
        return frame

    def _item_lines_frame(self, story, axis):
        frame = self._items_frame(story, axis)
        y = hv.Dimension("item_score", label="Item or subscale")
        if frame.empty:
            empty = pd.DataFrame({_xcol(axis): pd.Series(dtype=float), y.name: pd.Series(dtype=float)})
            curves = {"none": hv.Curve(empty, X[axis], y)}
        else:
            curves = {
                label: hv.Curve(
                    pd.DataFrame({_xcol(axis): self._x(sub, axis), y.name: sub["score"]}),
                    X[axis],
                    y,
                )
                for label, sub in frame.groupby("label", sort=False)
            }
        overlay = self._styled(
            hv.NdOverlay(curves, kdims="item"),
            ("item lines", axis),
            hv.opts.NdOverlay(
                responsive=True,
                height=220,
                show_legend=True,
                legend_position="right",
                hooks=[partial(self._finish_figure, axis=axis)],
            ),
            hv.opts.Curve(tools=["hover"]),
        )
        for curve in overlay:  # the template's option tree holds the Curve options too
            curve.id = overlay.id
        return overlay

    def _item_heat_frame(self, story, axis):
        frame = self._items_frame(story, axis)
        z = hv.Dimension("item_score", label="Score")
        if frame.empty:
            data = pd.DataFrame(
                {
                    _xcol(axis): pd.Series(dtype=float),
                    "label": pd.Series(dtype=str),
                    z.name: pd.Series(dtype=float),
                }
            )
        else:
            data = pd.DataFrame(
                {_xcol(axis): self._x(frame, axis), "label": frame["label"], z.name: frame["score"]}
            )
        return self._styled(
            hv.HeatMap(data, [X[axis], "label"], z),
            ("item heat", axis),
            cmap="Purples_r",
            colorbar=True,
            tools=["hover"],
            responsive=True,
            height=170,
            ylabel="",
            hooks=[partial(self._finish_figure, axis=axis)],
        )

    # -- events -----------------------------------------------------------------------------------------
    def _events(self, story, axis):
        frame = story.events if story else pd.DataFrame()
        if axis == "date" and len(frame):
            frame = frame.dropna(subset=["session_date"])
        row = hv.Dimension("row", label=" ", values=EVENT_ROWS)
        if frame is None or frame.empty:
            data = pd.DataFrame(
                {
                    _xcol(axis): pd.Series(dtype=float),
                    "row": pd.Series(dtype=str),
                    "description": pd.Series(dtype=str),
                    "colour": pd.Series(dtype=str),
                    "marker": pd.Series(dtype=str),
                }
            )
        else:
            data = pd.DataFrame(
                {
                    _xcol(axis): self._x(frame, axis),
                    "row": frame["row"],
                    "description": frame["description"],
                    "colour": frame["kind"].map(lambda k: EVENT_STYLE[k][0]),
                    "marker": frame["kind"].map(lambda k: EVENT_STYLE[k][1]),
                }
            )
        return self._styled(
            hv.Scatter(data, X[axis], [row, "description", "colour", "marker"]),
            ("events", axis, self._printed),
            color="colour",
            marker="marker",
            size=11,
            tools=["hover"],
            hover_tooltips=[("", "@description")],
            responsive=True,
            height=130,
            framewise=True,
            yticks=None,
            xaxis="bottom",
            show_grid=True,
            padding=0.2,
            invert_yaxis=False,
            hooks=[partial(self._finish_figure, axis=axis)],
            **({"default_tools": [], "active_tools": []} if self._printed else {}),
        )


class ClientCharts(ChartLayers, Viewer):
    """Outcome, alliance, optional items, and the events strip, sharing the horizontal axis.

    Each chart is one ``hv.DynamicMap`` that draws all its layers from the episode story, and every chart is
    fed by one ``hv.streams.Pipe``: a new story is one refresh per chart, patching the existing Bokeh plots.
    With ``follow`` (the default) the charts redraw when the selection's story changes; a page that swaps
    several views together sets ``follow=False`` and calls :meth:`show` inside its own ``pn.io.hold()``.
    Each figure carries the episode it draws in its Bokeh ``tags`` (``episode:<id>``).
    """

    selection = param.ClassSelector(class_=ClientSelection)
    follow = param.Boolean(default=True, doc="Redraw when the selection's story changes.")

    def __init__(self, **params):
        Viewer.__init__(self, **params)
        ChartLayers.__init__(self)
        self._story = self.selection.story  # the story shown (sent to the pipe)
        self._drawn = self._story
        self._pipe = hv.streams.Pipe(data=self._story)
        self._pane = pn.pane.HoloViews(self._layout(), sizing_mode="stretch_width", name="client-charts")
        self.selection.param.watch(self._update_layout, ["x_axis", "breakdown"])
        if self.follow:
            self.selection.param.watch(lambda event: self.show(event.new), ["story"])

    def show(self, story) -> None:
        """Draw ``story`` on every chart: one event on the charts' stream, one refresh per chart."""
        self._story = story
        # freeze: Bokeh recomputes the document's model graph once, not after each chart's update.
        with pn.io.hold(freeze=True):
            self._pipe.event(data=story)

    # -- composition ------------------------------------------------------------------------------------
    @property
    def layout(self) -> hv.Layout:
        return self._pane.object

    def _layout(self) -> hv.Layout:
        """The charts for the current axis and breakdown (built when either changes; rendered anew)."""
        axis, breakdown = self.selection.x_axis, self.selection.breakdown
        # A fresh stream per layout: a plot of a layout no longer shown never hears of a new story.
        self._pipe = hv.streams.Pipe(data=self._story)
        panels = [
            self._chart(self._outcome_overlay, axis),
            self._chart(self._alliance_overlay, axis),
        ]
        if breakdown == "items as lines":
            panels.append(self._item_lines(axis))
        elif breakdown == "items as heat strip":
            panels.append(self._item_heat(axis))
        panels.append(self._events_strip(axis))
        layout = hv.Layout(panels).cols(1).opts(shared_axes=True, merge_tools=True)
        for chart in layout:
            chart.id = None  # .opts gave the charts the Layout's option id too: no options to apply per frame
        return layout

    def _update_layout(self, *events):
        self._pane.object = self._layout()

    def _item_lines(self, axis):
        return self._chart(self._item_lines_frame, axis)

    def _item_heat(self, axis):
        return self._chart(self._item_heat_frame, axis)

    def _events_strip(self, axis: str):
        return self._chart(self._events, axis)

    def __panel__(self):
        return self._pane


class PrintedCharts(ChartLayers):
    """The client charts for print (the meeting pack): outcome, alliance and the events strip of one story
    at a time, with no toolbar and nothing to pan or zoom (hover stays).

    Drawn once, then patched with each next story, as the client page patches its plots when another client
    is chosen (one refresh per chart, none of the plot set-up again): :meth:`draw` returns the same Bokeh grid
    each time, showing the story given — serialize it before drawing the next. Every chart of a story is on
    that story's own axes: the outcome and alliance on their instruments' scales, the sessions of that
    episode (the figures' ``tags`` name the episode drawn, as on the client page).
    """

    def __init__(self, axis: str = "session"):
        super().__init__()
        self._printed = True
        self._axis = axis
        self._pipe = hv.streams.Pipe(data=None)
        self._plot = None

    def draw(self, story):
        """The Bokeh grid (``GridPlot``) drawing ``story``."""
        if self._plot is None:
            self._pipe = hv.streams.Pipe(data=story)
            axis = self._axis
            layout = hv.Layout(
                [
                    self._chart(self._outcome_overlay, axis),
                    self._chart(self._alliance_overlay, axis),
                    self._chart(self._events, axis),
                ]
            ).cols(1)
            layout = layout.opts(shared_axes=True, merge_tools=False, toolbar=None)
            for chart in layout:
                chart.id = None  # as on the page: the frames carry their own options
            # On its own document: HoloViews' Bokeh renderer would attach the plot to ``curdoc()``, which on a
            # threaded server is process-wide and may be another session's, destroyed when its tab closed.
            renderer = hv.renderer("bokeh")
            self._plot = super(type(renderer), renderer).get_plot(layout)
            self._plot.document = Document(theme=renderer.theme or default_theme)
            grid = self._plot.state
            grid.toolbar_location = None
            for figure in grid.select({"type": Plot}):
                figure.toolbar_location = None
                hover = [t for t in figure.toolbar.tools if isinstance(t, HoverTool)]
                figure.toolbar.update(tools=hover, active_drag=None, active_scroll=None, active_tap=None)
        else:
            self._pipe.event(data=story)
        return self._plot.state
