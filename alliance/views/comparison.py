"""The comparison page's views: the per-clinician table, the funnel plot and the caterpillar plot."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from alliance import style
from alliance.clinician_comparison import MEASURES, RATES
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


def _pct(v) -> str:
    return "—" if v is None or pd.isna(v) else f"{100 * v:.0f} %"


class ComparisonTable(Viewer):
    state = param.ClassSelector(class_=ComparisonState)

    def __init__(self, **params):
        super().__init__(**params)
        self.widget = pn.widgets.Tabulator(
            disabled=True,
            show_index=False,
            sizing_mode="stretch_width",
            pagination="local",
            page_size=30,
            name="comparison-table",
        )
        self._update()
        self.state.param.watch(self._update, "frames")

    def frame(self) -> pd.DataFrame:
        t = self.state.frames.get("table")
        if t is None or t.empty:
            return pd.DataFrame()
        t = t.sort_values(["eligible", "rank"], ascending=[False, True])

        def rate(m):
            return [
                f"{_pct(r)} ({_pct(lo)}–{_pct(hi)}) n={int(n) if not pd.isna(n) else 0}"
                for r, lo, hi, n in zip(
                    t[f"{m}_rate"], t[f"{m}_low"], t[f"{m}_high"], t[f"{m}_n"], strict=True
                )
            ]

        def interval(v, lo, hi):
            return [
                ("—" if pd.isna(a) else f"{a:.2f} ({b:.2f} to {c:.2f})")
                for a, b, c in zip(
                    t[v] if v in t else [np.nan] * len(t),
                    t[lo] if lo in t else [np.nan] * len(t),
                    t[hi] if hi in t else [np.nan] * len(t),
                    strict=True,
                )
            ]

        return pd.DataFrame(
            {
                "rank": [("—" if pd.isna(r) else f"{int(r)}") for r in t["rank"]],
                "clinician": t["clinician_id"],
                "team": t["team_id"],
                "open": t["open"],
                "closed": t["closed"],
                "mean intake severity": t["mean_intake_severity"].round(1),
                "effect size (95 % CI)": interval("es", "es_low", "es_high"),
                "severity-adjusted ES (95 % CI)": interval("saes", "saes_low", "saes_high"),
                **{f"{w} (95 % CI)": rate(m) for m, w in RATES.items()},
                "mean alliance": t["mean_alliance"].round(1),
                "sessions below alliance cut-off": t["below_cutoff"].map(_pct),
                "ruptures per 100 sessions": t["ruptures_per_100"].round(1),
                "ruptures repaired": t["share_repaired"].map(_pct),
                "mean sessions": t["mean_sessions"].round(1),
                "eligible": t["eligible"],
            }
        )

    def _update(self, *events):
        frame = self.frame()
        self.widget.value = frame
        if len(frame):
            # Clinicians under the minimum are greyed (and unranked); the viewer's own row stands out.
            def row_style(row):
                own = str(row["clinician"]).startswith(YOU)
                css = ("color: #9e9e9e; " if not row["eligible"] else "") + (
                    "font-weight: 700; background-color: #e6f2f8" if own else ""
                )
                return [css] * len(row)

            self.widget.style.apply(row_style, axis=1)

    def __panel__(self):
        return self.widget


class FunnelPlot(Viewer):
    """Rate or effect size against closed episodes, with 95 % and 99.8 % limits around the service value
    (Spiegelhalter 2005)."""

    state = param.ClassSelector(class_=ComparisonState)

    def __init__(self, **params):
        super().__init__(**params)
        revision, measure = self.state.param.revision, self.state.param.measure
        self.plot = (
            hv.DynamicMap(pn.bind(self._limits, revision, measure, 0.998, "dotted"))
            * hv.DynamicMap(pn.bind(self._limits, revision, measure, 0.95, "dashed"))
            * hv.DynamicMap(pn.bind(self._target, revision, measure))
            * hv.DynamicMap(pn.bind(self._points, revision, measure))
        ).opts(hv.opts.Overlay(responsive=True, height=380, framewise=True, show_legend=False))

    def _data(self, revision, measure):
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

    def _limits(self, revision, measure, level, dash):
        d, target, sd = self._data(revision, measure)
        n_dim, v_dim = (
            hv.Dimension("n", label="Closed episodes"),
            hv.Dimension("value", label=MEASURES[measure]),
        )
        if d is None or d.empty:
            return hv.Path([], [n_dim, v_dim])
        grid = funnel_n_grid(int(max(d["n"].max(), 10)), n_min=2)
        lim = (
            funnel_limits_mean(grid, target, sd, levels=(level,))
            if sd is not None
            else funnel_limits(grid, target, levels=(level,))
        )
        return hv.Path(
            [
                {"n": lim["n"].to_numpy(float), "value": lim["lower"].to_numpy(float)},
                {"n": lim["n"].to_numpy(float), "value": lim["upper"].to_numpy(float)},
            ],
            [n_dim, v_dim],
        ).opts(color="#555555", line_dash=dash, line_width=1.2)

    def _target(self, revision, measure):
        d, target, _ = self._data(revision, measure)
        return hv.HLine(np.nan if target is None else target).opts(color=style.BAND_COLOUR, line_width=2)

    def _points(self, revision, measure):
        d, target, sd = self._data(revision, measure)
        n_dim, v_dim = (
            hv.Dimension("n", label="Closed episodes"),
            hv.Dimension("value", label=MEASURES[measure]),
        )
        vdims = [v_dim, "clinician_id", "position", "verdict", "colour", "marker", "outline", "label"]
        if d is None or d.empty:
            return hv.Scatter(
                pd.DataFrame({c: [] for c in ["n", "value", *vdims[1:]]}),
                n_dim,
                vdims,
            )
        pos = funnel_position(d["value"], d["n"], target=target, sd=sd).astype(str)
        verdict = funnel_verdict(pos, measure)
        colour = np.where(d["eligible"], verdict.map(lambda v: VERDICT_STYLE[v][0]), "#c8c8c8")
        marker = verdict.map(lambda v: VERDICT_STYLE[v][1]).to_numpy()
        fmt = (lambda v: f"{v:.2f}") if measure == "es" else _pct
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
        )
        # The axis follows the measure shown (rates 0–1, effect sizes their own range) and the limits.
        values = [data["value"].min(), data["value"].max(), target]
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
        pad = 0.08 * (hi - lo or 1.0)
        ylim = (lo - pad, hi + pad) if measure == "es" else (max(0.0, lo - pad), min(1.0, hi + pad))
        return hv.Scatter(data, n_dim, vdims).opts(
            ylim=ylim,
            color="colour",
            marker="marker",
            size=11,
            line_color="outline",
            tools=["hover"],
            hover_tooltips=[("", "@label")],
        )

    def __panel__(self):
        return pn.pane.HoloViews(self.plot, sizing_mode="stretch_width", name="funnel")


class CaterpillarPlot(Viewer):
    """Empirical-Bayes (shrunken) mean improvement per clinician with 95 % intervals, and the ICC."""

    state = param.ClassSelector(class_=ComparisonState)

    def __init__(self, **params):
        super().__init__(**params)
        self.plot = (
            hv.DynamicMap(pn.bind(self._intervals, self.state.param.revision))
            * hv.DynamicMap(pn.bind(self._points, self.state.param.revision))
        ).opts(hv.opts.Overlay(responsive=True, height=380, framewise=True, show_legend=False))

    def _table(self):
        fit = self.state.frames.get("shrink")
        if fit is None or fit.table.empty or fit.table["eb_estimate"].isna().all():
            return None, None
        t = fit.table.reset_index().rename(columns={"index": "clinician_id", "group": "clinician_id"})
        t = t.rename(columns={t.columns[0]: "clinician_id"}).sort_values("eb_estimate").reset_index(drop=True)
        t["order"] = np.arange(len(t), dtype=float)
        return t, fit

    def _intervals(self, revision):
        t, fit = self._table()
        dims = [hv.Dimension("order", label="Clinicians, ordered"), hv.Dimension("eb", label="Improvement")]
        if t is None:
            return hv.Segments(
                pd.DataFrame({"order": [], "eb": [], "x1": [], "y1": []}, dtype=float),
                [dims[0], dims[1], "x1", "y1"],
            )
        data = pd.DataFrame({"order": t["order"], "eb": t["low"], "x1": t["order"], "y1": t["high"]})
        return hv.Segments(data, [dims[0], dims[1], "x1", "y1"]).opts(color="#888888", line_width=2)

    def _points(self, revision):
        t, fit = self._table()
        dims = [hv.Dimension("order", label="Clinicians, ordered"), hv.Dimension("eb", label="Improvement")]
        if t is None:
            return hv.Scatter(pd.DataFrame({"order": [], "eb": [], "label": []}), dims[0], [dims[1], "label"])
        label = [
            f"{c}: shrunken mean improvement {e:.1f} (95 % interval {lo:.1f} to {hi:.1f}), raw {r:.1f}, "
            f"n = {int(n)}"
            for c, e, lo, hi, r, n in zip(
                t["clinician_id"], t["eb_estimate"], t["low"], t["high"], t["raw_mean"], t["n"], strict=True
            )
        ]
        data = pd.DataFrame({"order": t["order"], "eb": t["eb_estimate"], "label": label})
        return hv.Scatter(data, dims[0], [dims[1], "label"]).opts(
            color=style.CONSTRUCT_COLOURS["outcome"],
            size=8,
            tools=["hover"],
            hover_tooltips=[("", "@label")],
            title=f"Shrunken mean improvement · therapist-effect ICC {fit.icc:.1%}",
        )

    def __panel__(self):
        return pn.pane.HoloViews(self.plot, sizing_mode="stretch_width", name="caterpillar")


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
