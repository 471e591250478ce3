"""The caseload page's views: headline figures, the episode table, the caseload picture and the trend."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import panel_material_ui as pmui
import param
from bokeh.models import CustomJS, TapTool
from panel.viewable import Viewer

from alliance import style
from alliance.inert import html_text, link
from alliance.state import CaseloadState

SESSION = hv.Dimension("session_number", label="Session")
CHANGE = hv.Dimension("change", label="Change from intake (up = better)")
CHANGE2 = hv.Dimension("change_top", label="Change (band top)")


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


def _pct(v) -> str:
    return "—" if v is None or pd.isna(v) else f"{100 * v:.0f} %"


class Headlines(Viewer):
    state = param.ClassSelector(class_=CaseloadState)

    def __init__(self, **params):
        super().__init__(**params)
        self._row = pn.FlexBox(sizing_mode="stretch_width")
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
                value = _pct(r.value)
                ci = f"95 % CI {_pct(r.low)}–{_pct(r.high)} · n = {r.n}" if r.n else "n = 0"
            cards.append(
                pmui.Paper(
                    pn.pane.Markdown(
                        f"### {html_text(value)}\n{html_text(r.figure)}  \n<small>{html_text(ci)}</small>"
                    ),
                    width=190,
                    margin=4,
                )
            )
        self._row.objects = cards

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
                "flags": {"type": "input", "func": "like", "placeholder": "filter flags"},
                "category": {"type": "input", "func": "like"},
            },
            name="caseload-table",
        )
        self._update()
        self.state.param.watch(self._update, ["table", "show_closed"])

    def frame(self) -> pd.DataFrame:
        t = self.state.table
        if t is None or t.empty:
            return pd.DataFrame()
        if not self.state.show_closed:
            t = t[~t["closed"]]
        t = t.sort_values(["n_flags", "last_session_date"], ascending=[False, False])

        def num(v):
            return "" if pd.isna(v) else f"{v:g}"

        return pd.DataFrame(
            {
                "client": [client_link(c, e) for c, e in zip(t["client_id"], t["episode_id"], strict=True)],
                "episode": t["episode_id"],
                "sessions": t["n_sessions"],
                "last seen": pd.to_datetime(t["last_session_date"]).dt.strftime("%Y-%m-%d"),
                "measure": t["instrument"].fillna(""),
                "intake → latest": [
                    f"{num(a)} → {num(b)}" if not pd.isna(a) else ""
                    for a, b in zip(t["intake"], t["latest"], strict=True)
                ],
                "improvement": t["improvement"].round(1),
                "category": t["category"].astype(object).where(t["category"].notna(), ""),
                "status": [status_chip(s, w) for s, w in zip(t["status"], t["status_words"], strict=True)],
                "reason": t["reason"].fillna(""),
                "alliance latest": t["alliance_latest"].round(1),
                "alliance lowest": t["alliance_lowest"].round(1),
                "flags": t["flags"],
                "closed": np.where(t["closed"], t["end_type"], "open"),
            }
        )

    def _update(self, *events):
        self.widget.value = self.frame()

    def __panel__(self):
        return self.widget


class CaseloadPicture(Viewer):
    """Every episode's change from intake, thin lines, flagged ones highlighted, on the service's band.
    Clicking a line opens that client."""

    state = param.ClassSelector(class_=CaseloadState)

    def __init__(self, **params):
        super().__init__(**params)
        band = hv.DynamicMap(pn.bind(self._band, self.state.param.band, 0.1, 0.9, 0.15))
        inner = hv.DynamicMap(pn.bind(self._band, self.state.param.band, 0.25, 0.75, 0.25))
        median = hv.DynamicMap(pn.bind(self._median, self.state.param.band))
        # Two layers so flagged episodes are drawn on top, each in one colour.
        plain = hv.DynamicMap(pn.bind(self._lines, self.state.param.courses, False))
        flagged = hv.DynamicMap(pn.bind(self._lines, self.state.param.courses, True))
        self.plot = (band * inner * median * plain * flagged).opts(
            hv.opts.Overlay(
                responsive=True,
                height=360,
                framewise=True,
                show_legend=False,
                title="Change from intake by session (up = better); blue: the service's closed "
                "episodes; red: episodes needing attention",
            )
        )

    @staticmethod
    def _band(band, lo, hi, alpha):
        cols = {"p10": 0.1, "p25": 0.25, "p75": 0.75, "p90": 0.9}
        inv = {v: k for k, v in cols.items()}
        if band is None or band.empty:
            return hv.Area(
                pd.DataFrame({"session_number": [], "change": [], "change_top": []}, dtype=float),
                SESSION,
                [CHANGE, CHANGE2],
            )
        data = pd.DataFrame(
            {"session_number": band["session_number"], "change": band[inv[lo]], "change_top": band[inv[hi]]}
        )
        return hv.Area(data, SESSION, [CHANGE, CHANGE2]).opts(
            color=style.BAND_COLOUR, alpha=alpha, line_alpha=0
        )

    @staticmethod
    def _median(band):
        if band is None or band.empty:
            return hv.Curve(pd.DataFrame({"session_number": [], "change": []}, dtype=float), SESSION, CHANGE)
        return hv.Curve(
            band[["session_number", "p50"]].rename(columns={"p50": "change"}), SESSION, CHANGE
        ).opts(color=style.BAND_COLOUR, line_dash="dotted", line_width=2)

    @staticmethod
    def _open_client(plot, element):
        """Bokeh: a tap on a line opens that client's page."""
        # Codes go through encodeURIComponent (OpenURL's encodeURI would leave '&', '=' and '#' in a code to
        # change the query).
        plot.state.add_tools(TapTool(callback=CustomJS(code=OPEN_CLIENT_JS)))

    def _lines(self, courses, flagged: bool):
        vdims = ["episode_id", "client_id", "flags"]
        colour = style.STATUS_COLOURS["red"] if flagged else "#8c8c8c"
        courses = courses[courses["flagged"] == flagged] if courses is not None and len(courses) else None
        if courses is None or courses.empty:
            return hv.Path([], [SESSION, CHANGE], vdims=vdims).opts(color=colour)
        paths = [
            {
                "session_number": sub["session_number"].to_numpy(float),
                "change": sub["change"].to_numpy(float),
                "episode_id": episode,
                "client_id": sub["client_id"].iloc[0],
                "flags": sub["flags"].iloc[0] or "no flags",
            }
            for episode, sub in courses.groupby("episode_id", sort=False)
        ]
        return hv.Path(paths, [SESSION, CHANGE], vdims=vdims).opts(
            color=colour,
            line_width=2 if flagged else 1.2,
            alpha=0.8 if flagged else 0.5,
            tools=["hover"],
            hover_tooltips=[("Client", "@client_id"), ("Episode", "@episode_id"), ("Flags", "@flags")],
            hooks=[self._open_client],
        )

    def __panel__(self):
        return pn.pane.HoloViews(self.plot, sizing_mode="stretch_width", name="caseload-picture")


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
                out[c] = out[c].map(_pct)
        if "alliance_mean" in out:
            out["alliance_mean"] = out["alliance_mean"].round(1)
        self.widget.value = out.rename(columns=lambda c: c.replace("_", " "))

    def __panel__(self):
        return self.widget
