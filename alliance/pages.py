"""Pages: each builds its state and views once and lays them out in a ``pmui.Page`` (served) or a column
(inline in Jupyter). A database problem becomes a clear message on the page, never a traceback."""

from __future__ import annotations

import pandas as pd
import panel as pn
import panel_material_ui as pmui
import param
from panel.viewable import Viewer

from alliance import style
from alliance.db import DatabaseError
from alliance.scope import Scope
from alliance.service import Service
from alliance.state import ClientSelection
from alliance.views.client import ClientCharts


class ProblemView(Viewer):
    """What is wrong and what to do, shown in place of a page that cannot work."""

    title = param.String()
    problem = param.String()
    remedy = param.String()

    def __panel__(self):
        return pmui.Alert(
            title=self.title,
            object=f"{self.problem}\n\n{self.remedy}",
            alert_type="error",
            sizing_mode="stretch_width",
            name="problem",
        )

    def page(self) -> pmui.Page:
        """The served page: just the message."""
        return pmui.Page(title="Alliance", main=[self])


def open_service(path=None, scope: Scope | None = None) -> Service | ProblemView:
    """The scoped service for the configured database, or the problem that prevents it."""
    try:
        service = Service.open(path, scope)
        overview = service.overview()
    except DatabaseError as exc:
        return ProblemView(
            title="The database cannot be used",
            problem=str(exc),
            remedy="Set ALLIANCE_DB (or `make serve DB=path`) to an Alliance database and reload.",
        )
    if overview.empty:
        return ProblemView(
            title="No ratings to show",
            problem=(
                f"The database {service.db.path} holds no ratings you may see "
                f"({overview.n_episodes} episodes, {overview.n_ratings} ratings in your scope)."
            ),
            remedy="Load data with `alliance import FILE --db PATH`, or build the demo with `alliance demo`.",
        )
    return service


class ClientPage(Viewer):
    """Choose clinician, client and episode; see outcome and alliance on one session axis."""

    service = param.ClassSelector(class_=Service)

    def __init__(self, **params):
        super().__init__(**params)
        self.selection = ClientSelection(service=self.service)
        self.charts = ClientCharts(selection=self.selection)
        sel = self.selection.param
        self.widgets = pn.Column(
            pmui.Select.from_param(sel.clinician, label="Clinician", searchable=True),
            pmui.Select.from_param(sel.client, label="Client", searchable=True),
            pmui.Select.from_param(sel.episode, label="Episode"),
            pmui.Select.from_param(sel.outcome_instrument, label="Outcome measure"),
            pmui.Select.from_param(sel.alliance_instrument, label="Alliance measure"),
            sizing_mode="stretch_width",
        )
        self.summary = pn.pane.Markdown(sizing_mode="stretch_width", name="episode-summary")
        self.notes = pmui.Alert(
            alert_type="warning",
            title="What this episode lacks",
            sizing_mode="stretch_width",
            visible=False,
        )
        self.scope_note = pmui.Typography(self.service.scope.describe(), variant="caption", name="scope")
        self._update_summary()
        self.selection.param.watch(self._update_summary, ["episode_info", "notes"])

    def _update_summary(self, *events):
        info = self.selection.episode_info
        with pn.io.hold():
            self.summary.object = self._summary_markdown(info)
            self.notes.object = "\n".join(f"- {n}" for n in self.selection.notes)
            self.notes.visible = bool(self.selection.notes)

    @staticmethod
    def _summary_markdown(info: dict) -> str:
        if not info:
            return "### No episode selected"

        def day(d):
            return "—" if d is None or pd.isna(d) else f"{pd.Timestamp(d):%d %b %Y}"

        status = (
            "open"
            if info.get("end_date") is None or pd.isna(info.get("end_date"))
            else (
                f"closed {day(info['end_date'])}"
                + (f" ({info['end_reason']})" if isinstance(info.get("end_reason"), str) else "")
            )
        )
        return (
            f"### Client {info['client_id']} · episode {info['episode_id']}\n"
            f"Clinician **{info['clinician_id']}** · {info['population']} · "
            f"{info['n_sessions']} sessions from {day(info['start_date'])} to "
            f"{day(info['last_session_date'])} · {status}"
        )

    def __panel__(self):
        return pn.Column(
            pn.Row(self.widgets[:3], sizing_mode="stretch_width"),
            self.summary,
            self.notes,
            self.charts,
            self.scope_note,
            sizing_mode="stretch_width",
        )

    def page(self) -> pmui.Page:
        """The served page: choices in the sidebar, the episode in the main area."""
        return pmui.Page(
            title="Alliance · Client",
            sidebar=[self.widgets, self.scope_note],
            main=[pn.Column(self.summary, self.notes, self.charts, sizing_mode="stretch_width")],
        )


def client_page(path=None, scope: Scope | None = None) -> ClientPage | ProblemView:
    """The client page for the configured database, or a clear message about what is wrong."""
    style.apply_defaults()
    service = open_service(path, scope)
    return service if isinstance(service, ProblemView) else ClientPage(service=service)
