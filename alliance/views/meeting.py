"""The supervision meeting page: choose a supervisor (and optionally one supervisee) and a meeting date; the
agenda per supervisee with its reasons; each item opens the client charts in place and comes back; a
"Discussed" button with a short action note writes a mark; the meeting pack downloads as HTML (and PDF)."""

from __future__ import annotations

import io
import sqlite3
import tempfile
from pathlib import Path

import pandas as pd
import panel as pn
import panel_material_ui as pmui
import param
from panel.viewable import Viewer

from alliance import style
from alliance.agenda import meeting_agenda, supervisors, team_clinicians
from alliance.flags import agenda_help
from alliance.inert import file_name, html_text
from alliance.marks import MAX_NOTE, MarkError, MarkStore
from alliance.pages import ProblemView, episode_summary, open_service
from alliance.scope import Scope
from alliance.service import Service
from alliance.state import ClientSelection, service_metrics
from alliance.views.client import ClientCharts

ALL = "all supervisees"


def _day(d) -> str:
    return "—" if d is None or pd.isna(d) else f"{pd.Timestamp(d):%d %b %Y}"


class MeetingState(param.Parameterized):
    """Which supervisor, supervisee and meeting date; the agenda and its marks. No UI here."""

    service = param.ClassSelector(class_=Service)
    store = param.ClassSelector(class_=MarkStore)
    supervisor = param.Selector(objects=[], doc="Supervisor code.")
    supervisee = param.Selector(objects=[ALL], default=ALL, doc="One supervisee, or all.")
    meeting_date = param.CalendarDate(default=None, doc="Date of the meeting.")
    agenda = param.DataFrame(default=None, allow_None=True, doc="meeting_agenda rows.")
    store_problem = param.String(default="", doc="Why the marks store cannot be used, if it cannot.")

    def __init__(self, **params):
        super().__init__(**params)
        if self.store is None:
            self.store = MarkStore.beside(self.service.db.path)
        self.metrics = service_metrics(self.service).for_scope(self.service)
        if self.meeting_date is None:
            self.meeting_date = self.metrics.as_of
        sups = supervisors(self.service)
        self.param.supervisor.objects = list(sups)
        if self.supervisor not in sups:
            self.supervisor = sups[0] if sups else None
        else:
            self._update_supervisees()

    @param.depends("supervisor", watch=True)
    def _update_supervisees(self):
        team = team_clinicians(self.service, self.supervisor) if self.supervisor else []
        self.param.supervisee.objects = [ALL, *team]
        if self.supervisee not in team:
            with param.parameterized.discard_events(self):
                self.supervisee = ALL
        self.refresh()

    @param.depends("supervisee", "meeting_date", watch=True)
    def refresh(self):
        if not self.supervisor:
            self.agenda = pd.DataFrame()
            return
        team = team_clinicians(self.service, self.supervisor)
        ids = Service(self.service.db, self.service.scope.restrict(*team)).scoped_episodes()["episode_id"]
        try:
            marks = self.store.marks_for(ids.tolist())
            self.store_problem = ""
        except (sqlite3.Error, OSError) as exc:  # e.g. a read-only folder: the agenda still works
            marks = None
            self.store_problem = f"Discussed-marks cannot be read or written at {self.store.path}: {exc}"
        self.agenda = meeting_agenda(
            self.metrics,
            self.supervisor,
            self.meeting_date,
            marks,
            clinician_id=None if self.supervisee == ALL else self.supervisee,
        )

    def mark(self, episode_id: str, note: str = "") -> None:
        """Write a discussed-mark for this meeting and refresh the agenda (MarkError for a bad note)."""
        self.store.mark_discussed(episode_id, self.supervisor, self.meeting_date, note)
        self.refresh()


class MeetingPage(Viewer):
    """The page on the screen during a supervision meeting."""

    service = param.ClassSelector(class_=Service)
    store = param.ClassSelector(class_=MarkStore, allow_None=True)

    def __init__(self, **params):
        super().__init__(**params)
        self.state = MeetingState(service=self.service, store=self.store)
        self.selection = ClientSelection(service=self.service)
        self.charts = ClientCharts(selection=self.selection)
        sp = self.state.param
        self.download_html = pmui.FileDownload(
            callback=self._pack_html, filename="meeting-pack.html", label="Meeting pack (HTML)"
        )
        self.download_pdf = pmui.FileDownload(
            callback=self._pack_pdf, filename="meeting-pack.pdf", label="Meeting pack (PDF)"
        )
        self.widgets = pn.Column(
            pmui.Select.from_param(sp.supervisor, label="Supervisor"),
            pmui.Select.from_param(sp.supervisee, label="Supervisee"),
            pmui.DatePicker.from_param(sp.meeting_date, label="Meeting date"),
            self.download_html,
            self.download_pdf,
            sizing_mode="stretch_width",
        )
        self.message = pmui.Alert(severity="warning", sizing_mode="stretch_width", visible=False)
        self.agenda_view = pn.Column(sizing_mode="stretch_width", name="agenda")
        self.back = pmui.Button(label="Back to the agenda", variant="outlined", name="back")
        self.back.on_click(self._show_agenda)
        self.summary = pn.pane.Markdown(sizing_mode="stretch_width", name="episode-summary")
        self.client_view = pn.Column(
            self.back, self.summary, self.charts, sizing_mode="stretch_width", visible=False
        )
        self.scope_note = pmui.Typography(
            html_text(self.service.scope.describe()), variant="caption", name="scope"
        )
        self._render_agenda()
        self.state.param.watch(self._render_agenda, ["agenda"])
        self.selection.param.watch(self._update_summary, ["story"])

    # -- agenda ---------------------------------------------------------------------------------------
    def _render_agenda(self, *events):
        agenda = self.state.agenda
        items: list = [
            pmui.Typography(
                f"Agenda for {html_text(self.state.supervisor)} · meeting {_day(self.state.meeting_date)} · "
                f"data as of {_day(self.state.metrics.as_of)}",
                variant="h5",
            ),
            pn.pane.Markdown(
                "Open episodes of the team with a reason to discuss them, strongest reason first "
                f"({agenda_help()}). A client discussed and not worse since moves down.",
                sizing_mode="stretch_width",
            ),
        ]
        if self.state.store_problem:
            items.append(pmui.Alert(object=html_text(self.state.store_problem), severity="warning"))
        if agenda is None or agenda.empty:
            items.append(pmui.Typography("No open episode of this team needs discussion.", variant="body1"))
        else:
            for clinician, rows in agenda.groupby("supervisee", sort=False):
                items.append(pmui.Typography(f"Supervisee {html_text(clinician)}", variant="h6"))
                items.extend(self._item(r) for r in rows.itertuples())
        self.agenda_view.objects = items

    def _item(self, r) -> pn.viewable.Viewable:
        # Codes, reasons and the action note (typed by a user, read back from the marks store) are escaped.
        reasons = "\n".join(
            f"- **{html_text(it['label'])}**: {html_text(it['words'])} ({_day(it['date'])})"
            for it in r.reasons
        )
        discussed = (
            f"\n\n*Last discussed {_day(r.last_discussed)}"
            + (f": {html_text(r.last_action)}" if r.last_action else "")
            + (" — not worse since*" if r.discussed_not_worse else " — a reason has arisen since*")
            if not pd.isna(r.last_discussed)
            else "\n\n*Not discussed yet*"
        )
        text = pn.pane.Markdown(
            f"**#{r.rank} · Client {html_text(r.client_id)} · episode {html_text(r.episode_id)}**\n\n"
            f"{reasons}{discussed}",
            sizing_mode="stretch_width",
        )
        open_button = pmui.Button(label="Open charts", variant="contained", name=f"open-{r.episode_id}")
        open_button.on_click(lambda _e, c=r.client_id, e=r.episode_id: self.open_client(c, e))
        note = pmui.TextInput(
            placeholder=f"Action (optional, up to {MAX_NOTE} characters)",
            label="Action note",
            max_length=MAX_NOTE,
            sizing_mode="stretch_width",
            name=f"note-{r.episode_id}",
        )
        done = pmui.Button(label="Discussed", variant="outlined", name=f"discussed-{r.episode_id}")
        # value_input follows every keystroke; value only on blur, which may arrive after the click.
        done.on_click(lambda _e, e=r.episode_id, n=note: self.discussed(e, n.value_input or n.value))
        return pmui.Paper(
            pn.Column(text, pn.Row(open_button, note, done, sizing_mode="stretch_width")),
            sizing_mode="stretch_width",
            margin=(5, 0),
            name=f"agenda-item-{r.episode_id}",
        )

    def discussed(self, episode_id: str, note: str = "") -> None:
        try:
            self.state.mark(episode_id, note)
        except (MarkError, sqlite3.Error, OSError) as exc:  # the message may quote a code or a path
            self.message.object, self.message.visible = html_text(str(exc)), True
            return
        self.message.visible = False

    # -- client in place ------------------------------------------------------------------------------
    def open_client(self, client_id: str, episode_id: str) -> None:
        self.selection.open(client_id, episode_id)
        self._update_summary()
        self.agenda_view.visible, self.client_view.visible = False, True

    def _show_agenda(self, *events):
        self.agenda_view.visible, self.client_view.visible = True, False

    def _update_summary(self, *events):
        self.summary.object = episode_summary(self.selection.episode_info, self.selection.story)

    # -- pack -----------------------------------------------------------------------------------------
    def _write_pack(self, folder: Path) -> Path:
        from alliance.pack import build_pack

        path = folder / "meeting-pack.html"
        build_pack(
            self.service,
            self.state.supervisor,
            self.state.meeting_date,
            path,
            agenda=self.state.agenda,
            progress=False,
        )
        return path

    def _pack_html(self):
        self.download_html.filename = (
            f"meeting-pack-{file_name(self.state.supervisor)}-{self.state.meeting_date}.html"
        )
        with tempfile.TemporaryDirectory() as tmp:
            return io.BytesIO(self._write_pack(Path(tmp)).read_bytes())

    def _pack_pdf(self):
        from alliance.pack import print_pdf

        self.download_pdf.filename = (
            f"meeting-pack-{file_name(self.state.supervisor)}-{self.state.meeting_date}.pdf"
        )
        with tempfile.TemporaryDirectory() as tmp:
            html = self._write_pack(Path(tmp))
            try:
                pdf = print_pdf(html, Path(tmp) / "meeting-pack.pdf")
            except RuntimeError as exc:
                self.message.object, self.message.visible = f"No PDF: {html_text(str(exc))}", True
                return None
            return io.BytesIO(pdf.read_bytes())

    # -- layout ---------------------------------------------------------------------------------------
    def _main(self):
        from alliance.help import MEETING_PAGE_HELP

        help_text = pmui.Accordion(
            ("How to read this page", pn.pane.Markdown(MEETING_PAGE_HELP, sizing_mode="stretch_width")),
            sizing_mode="stretch_width",
            active=[],
        )
        return pn.Column(
            self.message, help_text, self.agenda_view, self.client_view, sizing_mode="stretch_width"
        )

    def __panel__(self):
        return pn.Column(self.widgets, self._main(), self.scope_note, sizing_mode="stretch_width")

    def page(self) -> pmui.Page:
        args = pn.state.session_args or {}
        supervisor = (args.get("supervisor") or [b""])[0].decode()
        if supervisor in self.state.param.supervisor.objects:
            self.state.supervisor = supervisor
        return pmui.Page(
            title="Alliance · Supervision meeting",
            sidebar=[self.widgets, self.scope_note],
            main=[self._main()],
        )


def meeting_page(path=None, scope: Scope | None = None) -> MeetingPage | ProblemView:
    """The meeting page for the configured database, or a clear message about what is wrong."""
    style.apply_defaults()
    service = open_service(path, scope)
    return service if isinstance(service, ProblemView) else MeetingPage(service=service)


__all__ = ["MeetingPage", "MeetingState", "meeting_page"]
