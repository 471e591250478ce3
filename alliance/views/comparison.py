"""The comparison page's views: the per-clinician table, the funnel plot and the caterpillar plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.core.properties import field
from bokeh.models import ColumnDataSource, HoverTool, Range1d, Span
from bokeh.plotting import figure
from panel.viewable import Viewer

from alliance import style
from alliance.clinician_comparison import MEASURES, table_text
from alliance.metrics.comparison_stats import (
    funnel_limits,
    funnel_limits_mean,
    funnel_n_grid,
    funnel_position,
)
from alliance.state import ComparisonState

#: How the comparison frames name the viewer's own row (``alliance.clinician_comparison.clinician_names``).
YOU = "you ("

#: Measures where a lower value is better: above the funnel is worse on these.
LOWER_IS_BETTER = {"deteriorated_rate", "dropout_rate"}


def funnel_verdict(position: pd.Series, measure: str) -> pd.Series:
    """'better', 'worse' or 'no evidence of a difference' for each funnel position, in the measure's own
    better direction (above is worse on deterioration and dropout)."""
    above = position.astype(str).str.startswith("above")
    below = position.astype(str).str.startswith("below")
    better, worse = (below, above) if measure in LOWER_IS_BETTER else (above, below)
    return pd.Series(
        np.select([better, worse], ["better", "worse"], "no evidence of a difference"), index=position.index
    )


#: Colour and marker of each verdict: never colour alone.
VERDICT_STYLE = {
    "better": (style.STATUS_COLOURS["green"], "triangle"),
    "worse": (style.STATUS_COLOURS["red"], "inverted_triangle"),
    "no evidence of a difference": ("#666666", "circle"),
}


class ComparisonTable(Viewer):
    state = param.ClassSelector(class_=ComparisonState)

    def __init__(self, **params):
        super().__init__(**params)
        self.widget = pn.widgets.Tabulator(
            disabled=True,
            show_index=False,
            sizing_mode="stretch_width",
            # A page of rows at a time: a service's thousands of clinicians sent at once were most of the
            # page's data (0.6 MB at 200,000 episodes) for every new session; sorting is done here.
            pagination="remote",
            page_size=30,
            css_classes=["comparison-table"],
        )
        self._update()
        self.state.param.watch(self._update, "frames")

    def frame(self) -> pd.DataFrame:
        """The rows the table shows (``clinician_comparison.table_text``, made once with the comparison and
        kept with it; the viewer's names for the clinicians given by the comparison's store)."""
        text = self.state.frames.get("table_text")
        if text is None:  # frames made without it (older callers): made here
            t = self.state.frames.get("table")
            text = table_text(t) if t is not None else pd.DataFrame()
        return text.rename(columns={"clinician_id": "clinician"})

    def _update(self, *events):
        frame = self.frame()
        # No measuring of every cell in the browser. The widths are kept with the words, but the clinicians'
        # column's, measured here: the names are this viewer's.
        kept = frame.attrs.get("widths")
        names = frame[["clinician"]] if kept is not None and "clinician" in frame else None
        self.widget.widths = (
            style.column_widths(frame) if names is None else {**kept, **style.column_widths(names)}
        )
        self.widget.value = frame
        self.widget.style.clear()  # Panel carries a table's styles over to its new value; these are redone
        if len(frame):
            # Clinicians under the minimum are greyed (and unranked); the viewer's own row stands out. Only
            # those rows are given to the styler, all at once: styling every row of a service's thousands of
            # clinicians one by one cost each new session of this page about 0.4 s at 200,000 episodes.
            own = frame["clinician"].astype(str).str.startswith(YOU)
            css = pd.Series("", index=frame.index).where(frame["eligible"].astype(bool), "color: #9e9e9e; ")
            css = css + own.map({True: "font-weight: 700; background-color: #e6f2f8", False: ""})
            styled = css[css != ""]
            if len(styled):
                self.widget.style.apply(
                    lambda rows: pd.DataFrame(
                        {c: styled.loc[rows.index] for c in rows.columns}, index=rows.index
                    ),
                    axis=None,
                    subset=(styled.index, slice(None)),
                )

    def __panel__(self):
        return self.widget


class FunnelPlot(Viewer):
    """Rate or effect size against closed episodes, with 95 % and 99.8 % limits around the service value
    (Spiegelhalter 2005).

    Drawn with Bokeh's own glyphs on one figure whose data sources, axis label and range are replaced when
    the comparison or the measure changes (a few thousand clinicians are one scatter, not a HoloViews
    element re-rendered per change)."""

    state = param.ClassSelector(class_=ComparisonState)

    POINT_COLUMNS = [
        "n",
        "value",
        "clinician_id",
        "position",
        "verdict",
        "colour",
        "marker",
        "outline",
        "label",
    ]

    def __init__(self, **params):
        super().__init__(**params)
        self.sources = {
            0.998: ColumnDataSource({"xs": [], "ys": []}),
            0.95: ColumnDataSource({"xs": [], "ys": []}),
            "points": ColumnDataSource({c: [] for c in self.POINT_COLUMNS}),
        }
        fig = figure(
            height=380,
            sizing_mode="stretch_width",
            x_axis_label="Closed episodes",
            y_axis_label=MEASURES[self.state.measure],
            y_range=Range1d(0, 1),
            tools="pan,wheel_zoom,box_zoom,reset,save",
            toolbar_location="right",
        )
        for level, dash in ((0.998, "dotted"), (0.95, "dashed")):
            fig.multi_line(
                "xs", "ys", source=self.sources[level], color="#555555", line_dash=dash, line_width=1.2
            )
        self.target = Span(dimension="width", location=0, line_color=style.BAND_COLOUR, line_width=2)
        fig.add_layout(self.target)
        points = fig.scatter(
            "n",
            "value",
            source=self.sources["points"],
            marker=field("marker"),
            fill_color=field("colour"),
            line_color=field("outline"),
            size=11,
        )
        fig.add_tools(HoverTool(renderers=[points], tooltips=[("", "@label")]))
        style.lean_renderers(fig)
        self.figure = fig
        self._draw()
        self.state.param.watch(self._draw, ["revision", "measure"])

    def _data(self, measure):
        frames = self.state.frames
        t = frames.get("table")
        if t is None or t.empty:
            return None, None, None
        if measure == "es":
            es = frames.get("es")
            if es is None or es.empty:
                return None, None, None
            eps = frames["es_episodes"]
            sd = float(eps["improvement"].std() / es.attrs["sd_intake"])
            target = float(es.attrs["service_mean_improvement"] / es.attrs["sd_intake"])
            d = t.dropna(subset=["es"]).assign(value=lambda x: x["es"], n=lambda x: x["n_es"])
            return d, target, sd
        m = measure.removesuffix("_rate")
        rates = frames["rates"]
        target = float(rates.attrs["service_rate"][m])
        d = t.dropna(subset=[measure]).assign(value=lambda x: x[measure], n=lambda x: x[f"{m}_n"])
        return d, target, None

    def limits(self, measure: str, level: float) -> dict:
        """The lower and upper limit lines at ``level`` (two lines of a multi-line)."""
        d, target, sd = self._data(measure)
        if d is None or d.empty:
            return {"xs": [], "ys": []}
        grid = funnel_n_grid(int(max(d["n"].max(), 10)), n_min=2)
        lim = (
            funnel_limits_mean(grid, target, sd, levels=(level,))
            if sd is not None
            else funnel_limits(grid, target, levels=(level,))
        )
        n = lim["n"].to_numpy(float)
        return {"xs": [n, n], "ys": [lim["lower"].to_numpy(float), lim["upper"].to_numpy(float)]}

    def points(self, measure: str) -> pd.DataFrame:
        """One row per clinician: n, value, funnel position, verdict, colour, marker, outline and hover label;
        ``attrs["ylim"]`` is the value axis for the measure (rates within 0–1, effect sizes their own)."""
        d, target, sd = self._data(measure)
        if d is None or d.empty:
            out = pd.DataFrame({c: [] for c in self.POINT_COLUMNS})
            out.attrs["ylim"] = (-1.0, 1.0) if measure == "es" else (0.0, 1.0)
            out.attrs["target"] = target  # the service value stays drawn when no clinician has the measure
            return out
        pos = funnel_position(d["value"], d["n"], target=target, sd=sd).astype(str)
        verdict = funnel_verdict(pos, measure)
        colour = np.where(d["eligible"], verdict.map(lambda v: VERDICT_STYLE[v][0]), "#c8c8c8")
        marker = verdict.map(lambda v: VERDICT_STYLE[v][1]).to_numpy()
        fmt = (lambda v: f"{v:.2f}") if measure == "es" else style.percent
        data = pd.DataFrame(
            {
                "n": d["n"].astype(float),
                "value": d["value"].astype(float),
                "clinician_id": d["clinician_id"],
                "position": pos.to_numpy(),
                "verdict": verdict.to_numpy(),
                "colour": colour,
                "marker": marker,
                # The viewer's own point ("you", alliance.clinician_comparison.clinician_names) is outlined.
                "outline": np.where(d["clinician_id"].astype(str).str.startswith(YOU), "#111111", "white"),
                "label": [
                    f"{c}: {fmt(v)} of n = {int(n)} ({p} limit{'s' if p == 'inside' else ''}: {w})"
                    + ("" if e else f" — under the minimum of {self.state.minimum}, not ranked")
                    for c, v, n, p, w, e in zip(
                        d["clinician_id"], d["value"], d["n"], pos, verdict, d["eligible"], strict=True
                    )
                ],
            }
        ).reset_index(drop=True)
        # The axis follows the measure shown (rates 0–1, effect sizes their own range) and the limits.
        values = [data["value"].min(), data["value"].max(), target]
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
        pad = 0.08 * (hi - lo or 1.0)
        data.attrs["ylim"] = (
            (lo - pad, hi + pad) if measure == "es" else (max(0.0, lo - pad), min(1.0, hi + pad))
        )
        data.attrs["target"] = target
        return data

    def _draw(self, *events) -> None:
        measure = self.state.measure
        points = self.points(measure)
        limits = {level: self.limits(measure, level) for level in (0.998, 0.95)}
        target = points.attrs.get("target")
        (y0, y1) = points.attrs["ylim"]

        def apply():
            for level, data in limits.items():
                self.sources[level].data = data
            self.sources["points"].data = {c: points[c].to_numpy() for c in self.POINT_COLUMNS}
            self.target.update(location=0 if target is None else target, visible=target is not None)
            self.figure.y_range.update(start=y0, end=y1, reset_start=y0, reset_end=y1)
            self.figure.yaxis.axis_label = MEASURES[measure]

        # Bokeh's own models: changed on the event loop, under the document's lock (see CaseloadPicture).
        pn.state.execute(apply)

    def __panel__(self):
        return pn.pane.Bokeh(self.figure, sizing_mode="stretch_width", name="funnel")


class CaterpillarPlot(Viewer):
    """Empirical-Bayes (shrunken) mean improvement per clinician with 95 % intervals, and the ICC; drawn with
    Bokeh's own glyphs whose sources are replaced when the comparison changes."""

    state = param.ClassSelector(class_=ComparisonState)

    TITLE = "Shrunken mean improvement"

    def __init__(self, **params):
        super().__init__(**params)
        self.sources = {
            "intervals": ColumnDataSource({"order": [], "low": [], "high": []}),
            "points": ColumnDataSource({"order": [], "eb": [], "label": []}),
        }
        fig = figure(
            height=380,
            sizing_mode="stretch_width",
            title=self.TITLE,
            x_axis_label="Clinicians, ordered",
            y_axis_label="Improvement",
            tools="pan,wheel_zoom,box_zoom,reset,save",
            toolbar_location="right",
        )
        src = self.sources
        fig.segment("order", "low", "order", "high", source=src["intervals"], color="#888888", line_width=2)
        points = fig.scatter(
            "order", "eb", source=src["points"], color=style.CONSTRUCT_COLOURS["outcome"], size=8
        )
        fig.add_tools(HoverTool(renderers=[points], tooltips=[("", "@label")]))
        style.lean_renderers(fig)
        self.figure = fig
        self._draw()
        self.state.param.watch(self._draw, ["revision"])

    def table(self):
        """The shrunken estimates in order (with ``order``), and the fit; (None, None) without one."""
        fit = self.state.frames.get("shrink")
        if fit is None or fit.table.empty or fit.table["eb_estimate"].isna().all():
            return None, None
        t = fit.table.reset_index().rename(columns={"index": "clinician_id", "group": "clinician_id"})
        t = t.rename(columns={t.columns[0]: "clinician_id"}).sort_values("eb_estimate").reset_index(drop=True)
        t["order"] = np.arange(len(t), dtype=float)
        return t, fit

    def _draw(self, *events) -> None:
        t, fit = self.table()
        if t is None:
            intervals = {"order": [], "low": [], "high": []}
            points = {"order": [], "eb": [], "label": []}
            title = self.TITLE
        else:
            intervals = {c: t[c].to_numpy(float) for c in ("order", "low", "high")}
            points = {
                "order": t["order"].to_numpy(float),
                "eb": t["eb_estimate"].to_numpy(float),
                "label": [
                    f"{c}: shrunken mean improvement {e:.1f} (95 % interval {lo:.1f} to {hi:.1f}), "
                    f"raw {r:.1f}, n = {int(n)}"
                    for c, e, lo, hi, r, n in zip(
                        t["clinician_id"],
                        t["eb_estimate"],
                        t["low"],
                        t["high"],
                        t["raw_mean"],
                        t["n"],
                        strict=True,
                    )
                ],
            }
            title = f"{self.TITLE} · therapist-effect ICC {fit.icc:.1%}"

        def apply():
            self.sources["intervals"].data = intervals
            self.sources["points"].data = points
            self.figure.title.text = title

        pn.state.execute(apply)  # Bokeh's own models: on the event loop (see CaseloadPicture)

    def __panel__(self):
        return pn.pane.Bokeh(self.figure, sizing_mode="stretch_width", name="caterpillar")


def _day(d) -> str:
    return "—" if d is None or pd.isna(d) else f"{pd.Timestamp(d).day} {pd.Timestamp(d):%b %Y}"


def comparison_heading(state: ComparisonState) -> str:
    """What is compared, in words, for the top of the page: measure, team, population, the period of the
    closed episodes, and how many clinicians are ranked (codes from the data are escaped)."""
    from alliance.inert import html_text

    if not state.instrument:
        return "No outcome measure to compare"
    start, end = state.period if state.period else (None, None)
    table = state.frames.get("table")
    n = 0 if table is None else len(table)
    ranked = 0 if table is None or table.empty else int(table["eligible"].astype(bool).sum())
    team = "all teams" if state.team == "all teams" else f"team {html_text(state.team)}"
    population = "all populations" if state.population == "all" else f"{html_text(state.population)}s"
    return (
        f"{html_text(state.instrument)} · {team} · {population} · closed episodes whose last session fell "
        f"between {_day(start)} and {_day(end)} · {n} clinician{'' if n == 1 else 's'}, {ranked} ranked "
        f"(at least {state.minimum} closed episodes)"
    )


class ComparisonHeading(Viewer):
    """The heading of the comparison page's main area: what is compared, over which period (the period slider
    in the sidebar is too narrow to read it)."""

    state = param.ClassSelector(class_=ComparisonState)

    def __init__(self, **params):
        import panel_material_ui as pmui

        super().__init__(**params)
        self._pane = pmui.Typography(variant="h6", name="comparison-heading", sizing_mode="stretch_width")
        self._update()
        self.state.param.watch(self._update, ["frames", "period", "minimum"])

    def _update(self, *events):
        self._pane.object = comparison_heading(self.state)

    def __panel__(self):
        return self._pane
