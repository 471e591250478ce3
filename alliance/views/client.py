"""The client page's charts: outcome and alliance trajectories on one shared session axis.

Each layer is its own ``hv.DynamicMap`` bound to the selection state, so choosing another episode patches
the existing plots instead of rebuilding the page, and zoom is linked through the shared ``session`` axis.
Later layers (expected course, reliable-change band, events) slot in as further DynamicMaps in the overlay.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import BasicTicker
from panel.viewable import Viewer

from alliance import style
from alliance.state import ClientSelection

SESSION = hv.Dimension("session_number", label="Session")
# Distinct y dimensions so the two panels share the session axis but not the score axis.
Y = {
    "outcome": hv.Dimension("outcome_score", label="Outcome"),
    "alliance": hv.Dimension("alliance_score", label="Alliance"),
}


class TrajectoryPanel(Viewer):
    """One construct's trajectory (outcome or alliance) with its cut-off line and clinical hover text."""

    selection = param.ClassSelector(class_=ClientSelection)
    construct = param.Selector(objects=["outcome", "alliance"])

    def __init__(self, **params):
        super().__init__(**params)
        data = self.selection.param[self.construct]
        instrument = self.selection.param[f"{self.construct}_instrument"]
        self.cutoff = hv.DynamicMap(pn.bind(self._cutoff, data, self.selection.param.ratings))
        self.line = hv.DynamicMap(pn.bind(self._line, data))
        self.points = hv.DynamicMap(pn.bind(self._points, data, instrument))
        self.overlay = (self.cutoff * self.line * self.points).opts(
            hv.opts.Overlay(
                responsive=True,
                height=style.PANEL_HEIGHT,
                framewise=True,
                toolbar="above",
                default_tools=["xpan", "xwheel_zoom", "reset", "save"],
                active_tools=["xwheel_zoom"],
                xticks=BasicTicker(min_interval=1),  # sessions are whole numbers
            )
        )

    # -- layers -----------------------------------------------------------------------------------
    def _frame(self, data: pd.DataFrame | None) -> pd.DataFrame:
        y = Y[self.construct].name
        if data is None or data.empty:
            return pd.DataFrame(
                {
                    SESSION.name: pd.Series(dtype=float),
                    y: pd.Series(dtype=float),
                    "description": pd.Series(dtype=str),
                    "colour": pd.Series(dtype=str),
                }
            )
        rated = data[data["score"].notna()]
        colours = np.where(
            rated["clinical"].fillna(False).astype(bool),
            style.STATUS_COLOURS["red"],
            style.CONSTRUCT_COLOURS[self.construct],
        )
        return pd.DataFrame(
            {
                SESSION.name: rated["session_number"],
                y: rated["score"],
                "description": rated["description"],
                "colour": colours,
            }
        )

    def _line(self, data):
        frame = self._frame(data)
        return hv.Curve(frame, SESSION, Y[self.construct]).opts(color=style.CONSTRUCT_COLOURS[self.construct])

    def _points(self, data, instrument):
        frame = self._frame(data)
        ylabel = f"{instrument} total" if instrument else Y[self.construct].label
        return hv.Scatter(frame, SESSION, [Y[self.construct], "description", "colour"]).opts(
            color="colour",
            line_color="white",
            size=10,
            ylabel=ylabel,
            tools=["hover"],
            hover_tooltips=[("", "@description")],
        )

    def _cutoff(self, data, ratings):
        """The clinical cut-off as a dashed line across the sessions (absent where none is validated)."""
        y = Y[self.construct]
        instrument = self.selection.param[f"{self.construct}_instrument"]
        code = getattr(self.selection, instrument.name)
        empty = hv.Curve(
            pd.DataFrame({SESSION.name: pd.Series(dtype=float), y.name: pd.Series(dtype=float)}),
            SESSION,
            y,
        )
        if ratings is None or data is None or data.empty or code is None:
            return empty
        row = ratings[ratings["instrument"] == code].iloc[0]
        lo, hi = float(row["min_score"]), float(row["max_score"])
        last = max(float(data["session_number"].max()), 2.0)
        # The y range always spans the whole scale so a score's place on it reads at a glance.
        ylim = (lo, hi + (hi - lo) * 0.04)
        if pd.isna(row["cutoff"]):
            return empty.opts(ylim=ylim)
        frame = pd.DataFrame({SESSION.name: [0.5, last + 0.5], y.name: [row["cutoff"]] * 2})
        return hv.Curve(frame, SESSION, y).opts(
            color=style.CUTOFF_COLOUR,
            line_dash="dashed",
            line_width=1.5,
            ylim=ylim,
            xlim=(0.5, last + 0.5),
        )

    def __panel__(self):
        return pn.pane.HoloViews(self.overlay, sizing_mode="stretch_width")


class ClientCharts(Viewer):
    """Outcome above alliance, linked on the session axis."""

    selection = param.ClassSelector(class_=ClientSelection)

    def __init__(self, **params):
        super().__init__(**params)
        self.outcome = TrajectoryPanel(selection=self.selection, construct="outcome")
        self.alliance = TrajectoryPanel(selection=self.selection, construct="alliance")
        # A Layout shares axes that have the same dimension: here only the session axis.
        self.layout = (
            (self.outcome.overlay + self.alliance.overlay).cols(1).opts(shared_axes=True, merge_tools=True)
        )
        self._pane = pn.pane.HoloViews(self.layout, sizing_mode="stretch_width", name="client-charts")

    def __panel__(self):
        return self._pane
