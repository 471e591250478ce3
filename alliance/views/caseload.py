"""The caseload page's views: headline figures, the episode table, the caseload picture and the trend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, CustomJS, HoverTool, TapTool
from bokeh.plotting import figure
from panel.viewable import Viewer

from alliance import style
from alliance.inert import html_text, link
from alliance.state import CaseloadState

SESSION_LABEL = "Session"
CHANGE_LABEL = "Change from intake (up = better)"


#: A tap on a caseload line opens that client's episode; the codes are URL-encoded as components.
OPEN_CLIENT_JS = """
const source = cb_data.source;
const i = source.selected.indices[0];
if (i === undefined) { return; }
const client = encodeURIComponent(String(source.data.client_id[i]));
const episode = encodeURIComponent(String(source.data.episode_id[i]));
window.location.href = "client?client=" + client + "&episode=" + episode;
"""


def client_link(client_id: str, episode_id: str) -> str:
    """A link to the client page for one episode (relative, so it works behind any prefix). The codes are
    URL-encoded in the address and escaped in the text (a Tabulator ``html`` cell, never read as Markdown,
    so its header filter still matches the code as typed)."""
    return link("client", {"client": client_id, "episode": episode_id}, client_id, markdown=False)


def status_chip(status, words) -> str:
    if not isinstance(status, str):
        return ""
    colour = html_text(style.STATUS_COLOURS.get(status, "#999999"), markdown=False)
    return (
        f'<span style="background:{colour};color:white;padding:0 6px;border-radius:6px">'
        f"{html_text(style.STATUS_SYMBOLS.get(status, ''), markdown=False)} "
        f"{html_text(words, markdown=False)}</span>"
    )


#: The headline cards: one HTML pane for all of them (a Material UI card and a Markdown pane per figure were
#: a dozen models to build and send for a few numbers).
HEADLINE_CSS = """
.headlines { display: flex; flex-wrap: wrap; gap: 8px; }
.headline-card { width: 182px; padding: 8px 12px; border-radius: 4px;
  background: var(--mui-palette-background-paper, #fff); color: var(--mui-palette-text-primary, inherit);
  box-shadow: 0 1px 3px rgba(0,0,0,.2), 0 1px 1px rgba(0,0,0,.14); }
.headline-card .value { font-size: 1.6em; font-weight: 600; margin: 0 0 2px; }
.headline-card .figure { margin: 0; }
.headline-card small { color: var(--mui-palette-text-secondary, #555); }
"""


class Headlines(Viewer):
    state = param.ClassSelector(class_=CaseloadState)

    def __init__(self, **params):
        super().__init__(**params)
        self._row = pn.pane.HTML(sizing_mode="stretch_width", stylesheets=[HEADLINE_CSS], name="headlines")
        self._update()
        self.state.param.watch(self._update, "headlines")

    def _update(self, *events):
        h = self.state.headlines
        cards = []
        for r in h.itertuples() if h is not None else []:
            if r.figure == "open episodes":
                value, ci = f"{r.value:.0f}", f"of {r.n} episodes"
            elif r.figure.startswith("mean alliance"):
                value, ci = f"{r.value:.1f}", f"n = {r.n} ratings"
            else:
                value = style.percent(r.value)
                ci = f"95 % CI {style.percent(r.low)}–{style.percent(r.high)} · n = {r.n}" if r.n else "n = 0"
            cards.append(
                f'<div class="headline-card"><p class="value">{html_text(value)}</p>'
                f'<p class="figure">{html_text(r.figure)}</p><small>{html_text(ci)}</small></div>'
            )
        self._row.object = f'<div class="headlines">{"".join(cards)}</div>'

    def __panel__(self):
        return self._row


class EpisodeTable(Viewer):
    """Sortable, filterable episode table; the client code links to the client page."""

    state = param.ClassSelector(class_=CaseloadState)

    def __init__(self, **params):
        super().__init__(**params)
        self.widget = pn.widgets.Tabulator(
            pagination="local",
            page_size=25,
            sizing_mode="stretch_width",
            disabled=True,
            show_index=False,
            formatters={"client": {"type": "html"}, "status": {"type": "html"}},
            header_filters={
                "client": {"type": "input", "func": "like"},
                "flags": {"type": "input", "func": "like", "placeholder": "find"},  # fits an empty column
                "category": {"type": "input", "func": "like"},
            },
            # At 1366 px the later columns scroll into view; the client code stays in sight meanwhile.
            frozen_columns=["client"],
            css_classes=["caseload-table"],
        )
        self._update()
        self.state.param.watch(self._update, ["table", "show_closed"])

    def frame(self) -> pd.DataFrame:
        t = self.state.table
        if t is None or t.empty:
            return pd.DataFrame()
        if not self.state.show_closed:
            t = t[~t["closed"]]
        # Flagged first, the strongest flag first (the agenda's ranks), then more flags, then the latest seen.
        t = t.sort_values(
            ["strongest_flag", "n_flags", "last_session_date"],
            ascending=[True, False, False],
            na_position="last",
        )

        def num(v):
            return "" if pd.isna(v) else f"{v:g}"

        # Who needs attention and why first: client, status, flags and the status's reason are the columns
        # a supervisor reads; at 1366 px the rest scroll into view.
        return pd.DataFrame(
            {
                "client": [client_link(c, e) for c, e in zip(t["client_id"], t["episode_id"], strict=True)],
                "status": [status_chip(s, w) for s, w in zip(t["status"], t["status_words"], strict=True)],
                "flags": t["flags"],
                "reason": t["reason"].fillna(""),
                "last seen": pd.to_datetime(t["last_session_date"]).dt.strftime("%Y-%m-%d"),
                "sessions": t["n_sessions"],
                "measure": t["instrument"].fillna(""),
                "intake → latest": [
                    f"{num(a)} → {num(b)}" if not pd.isna(a) else ""
                    for a, b in zip(t["intake"], t["latest"], strict=True)
                ],
                "improvement": t["improvement"].round(1),
                "category": t["category"].astype(object).where(t["category"].notna(), ""),
                "alliance latest": t["alliance_latest"].round(1),
                "alliance lowest": t["alliance_lowest"].round(1),
                "episode": t["episode_id"],
                "closed": np.where(t["closed"], t["end_type"], "open"),
            }
        )

    def _update(self, *events):
        self.widget.value = self.frame()

    def __panel__(self):
        return self.widget


class CaseloadPicture(Viewer):
    """Every episode's change from intake, thin lines, flagged ones highlighted, on the service's band.
    Clicking a line opens that client.

    Drawn with Bokeh's own glyphs (two multi-lines, two areas, a line) on one figure whose data sources are
    replaced when the caseload changes: a caseload of a few hundred episodes is a handful of models, not one
    HoloViews path per episode (which took most of the page's time at service scale)."""

    state = param.ClassSelector(class_=CaseloadState)

    TITLE = (
        "Change from intake by session (up = better); blue: the service's closed episodes; "
        "red: episodes needing attention"
    )

    def __init__(self, **params):
        super().__init__(**params)
        self.sources = {
            "outer": ColumnDataSource({"x": [], "low": [], "high": []}),
            "inner": ColumnDataSource({"x": [], "low": [], "high": []}),
            "median": ColumnDataSource({"x": [], "y": []}),
            "plain": ColumnDataSource(self._empty_lines()),
            "flagged": ColumnDataSource(self._empty_lines()),
        }
        fig = figure(
            height=360,
            sizing_mode="stretch_width",
            title=self.TITLE,
            x_axis_label=SESSION_LABEL,
            y_axis_label=CHANGE_LABEL,
            tools="pan,wheel_zoom,box_zoom,reset,save",
            toolbar_location="right",
        )
        src = self.sources
        fig.varea("x", "low", "high", source=src["outer"], color=style.BAND_COLOUR, alpha=0.15)
        fig.varea("x", "low", "high", source=src["inner"], color=style.BAND_COLOUR, alpha=0.25)
        fig.line("x", "y", source=src["median"], color=style.BAND_COLOUR, line_dash="dotted", line_width=2)
        lines = [
            fig.multi_line("xs", "ys", source=src["plain"], color="#8c8c8c", line_width=1.2, alpha=0.5),
            # Flagged episodes last, so they are drawn on top.
            fig.multi_line(
                "xs", "ys", source=src["flagged"], color=style.STATUS_COLOURS["red"], line_width=2, alpha=0.8
            ),
        ]
        fig.add_tools(
            HoverTool(
                renderers=lines,
                tooltips=[("Client", "@client_id"), ("Episode", "@episode_id"), ("Flags", "@flags")],
            ),
            # Codes go through encodeURIComponent (OpenURL's encodeURI would leave '&', '=' and '#' in a code
            # to change the query).
            TapTool(renderers=lines, callback=CustomJS(code=OPEN_CLIENT_JS)),
        )
        self.figure = fig
        self._draw()
        self.state.param.watch(self._draw, ["courses", "band"])

    @staticmethod
    def _empty_lines() -> dict:
        return {"xs": [], "ys": [], "episode_id": [], "client_id": [], "flags": []}

    @staticmethod
    def band_data(band: pd.DataFrame | None, low: str, high: str) -> dict:
        """The expected change band between two of its percentiles (``p10``…``p90``)."""
        if band is None or band.empty:
            return {"x": [], "low": [], "high": []}
        return {
            "x": band["session_number"].to_numpy(float),
            "low": band[low].to_numpy(float),
            "high": band[high].to_numpy(float),
        }

    @staticmethod
    def line_data(courses: pd.DataFrame | None, flagged: bool) -> dict:
        """One line per episode (of the flagged ones, or of the others): its sessions and change from intake,
        with the codes the hover shows and the tap opens. The codes are data, never markup (Bokeh's hover
        inserts field values as text)."""
        if courses is None or courses.empty:
            return CaseloadPicture._empty_lines()
        courses = courses[courses["flagged"] == flagged]
        data = CaseloadPicture._empty_lines()
        for episode, sub in courses.groupby("episode_id", sort=False):
            data["xs"].append(sub["session_number"].to_numpy(float))
            data["ys"].append(sub["change"].to_numpy(float))
            data["episode_id"].append(str(episode))
            data["client_id"].append(str(sub["client_id"].iloc[0]))
            data["flags"].append(str(sub["flags"].iloc[0] or "no flags"))
        return data

    def _draw(self, *events) -> None:
        band, courses = self.state.band, self.state.courses
        data = {
            "outer": self.band_data(band, "p10", "p90"),
            "inner": self.band_data(band, "p25", "p75"),
            "median": (
                {"x": [], "y": []}
                if band is None or band.empty
                else {"x": band["session_number"].to_numpy(float), "y": band["p50"].to_numpy(float)}
            ),
            "plain": self.line_data(courses, False),
            "flagged": self.line_data(courses, True),
        }

        def apply():
            for key, values in data.items():
                self.sources[key].data = values

        # These are Bokeh's own models, not Panel's: in a served session whose callback runs on a thread
        # (panel serve --num-threads) they may only change on the event loop, under the document's lock;
        # pn.state.execute schedules it there (and runs it at once inline, in tests, or on the loop itself).
        pn.state.execute(apply)

    def __panel__(self):
        return pn.pane.Bokeh(self.figure, sizing_mode="stretch_width", name="caseload-picture")


class TrendTable(Viewer):
    state = param.ClassSelector(class_=CaseloadState)

    def __init__(self, **params):
        super().__init__(**params)
        self.widget = pn.widgets.Tabulator(disabled=True, show_index=False, sizing_mode="stretch_width")
        self._update()
        self.state.param.watch(self._update, "trend")

    def _update(self, *events):
        t = self.state.trend
        if t is None or t.empty:
            self.widget.value = pd.DataFrame()
            return
        out = t.copy()
        for c in ("reliably_improved", "recovered", "dropout", "below_cutoff"):
            if c in out:
                out[c] = out[c].map(style.percent)
        if "alliance_mean" in out:
            out["alliance_mean"] = out["alliance_mean"].round(1)
        self.widget.value = out.rename(columns=lambda c: c.replace("_", " "))

    def __panel__(self):
        return self.widget
