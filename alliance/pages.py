"""Pages: each builds its state and views once and lays them out in a ``pmui.Page`` (served) or a column
(inline in Jupyter). A database problem becomes a clear message on the page, never a traceback."""

from __future__ import annotations

import io
import sqlite3
import tempfile
from functools import partial
from pathlib import Path

import pandas as pd
import panel as pn
import panel_material_ui as pmui
import param
from panel.viewable import Viewer

from alliance import style
from alliance.agenda import team_clinicians
from alliance.db import DatabaseError
from alliance.flags import agenda_help
from alliance.help import CASELOAD_PAGE_HELP, CLIENT_PAGE_HELP, COMPARISON_PAGE_HELP
from alliance.inert import file_name, html_text
from alliance.marks import MAX_NOTE, MarkError, MarkStore
from alliance.scope import Scope
from alliance.service import Service
from alliance.state import ClientSelection, MeetingState
from alliance.views.client import ClientCharts


class ProblemView(Viewer):
    """What is wrong and what to do, shown in place of a page that cannot work."""

    title = param.String()
    problem = param.String()
    remedy = param.String()

    def __panel__(self):
        return pmui.Alert(
            title=self.title,
            object=f"{html_text(self.problem)}\n\n{self.remedy}",  # the problem quotes a path or a message
            severity="error",
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
    """Choose clinician, client and episode; see outcome and alliance on one axis with the episode's story.

    Heading, summary, notes, methods and charts change together: while a choice is followed the episode view
    keeps the old episode under Panel's loading indicator, then everything is swapped in one ``pn.io.hold()``.
    """

    service = param.ClassSelector(class_=Service)

    def __init__(self, **params):
        super().__init__(**params)
        self.selection = ClientSelection(service=self.service)
        self.charts = ClientCharts(selection=self.selection, follow=False)  # shown by _show, with the rest
        sel = self.selection.param
        self.widgets = pn.Column(
            pmui.Select.from_param(sel.clinician, label="Clinician", searchable=True),
            pmui.Select.from_param(sel.client, label="Client", searchable=True),
            pmui.Select.from_param(sel.episode, label="Episode"),
            pmui.Select.from_param(sel.outcome_instrument, label="Outcome measure"),
            pmui.Select.from_param(sel.alliance_instrument, label="Alliance measure"),
            pmui.RadioButtonGroup.from_param(sel.x_axis, label="Axis"),
            pmui.Select.from_param(sel.breakdown, label="Alliance breakdown"),
            sizing_mode="stretch_width",
        )
        self.summary = pn.pane.Markdown(sizing_mode="stretch_width", name="episode-summary")
        self.methods = pn.pane.Markdown(sizing_mode="stretch_width", styles={"font-size": "0.85em"})
        self.notes = pmui.Alert(
            severity="warning", title="What this episode lacks", sizing_mode="stretch_width", visible=False
        )
        # Everything that belongs to one episode: loading and swapped as one.
        self.episode_view = pn.Column(
            self.summary,
            self.notes,
            self.charts,
            self.methods,
            sizing_mode="stretch_width",
            name="episode-view",
        )
        self.help = pmui.Accordion(
            ("How to read this page", pn.pane.Markdown(CLIENT_PAGE_HELP, sizing_mode="stretch_width")),
            sizing_mode="stretch_width",
            active=[],
        )
        self.scope_note = pmui.Typography(
            html_text(self.service.scope.describe()), variant="caption", name="scope"
        )
        self._show(self.selection.episode_info, self.selection.story, list(self.selection.notes))
        self.selection.param.watch(self._follow, ["busy"])

    def _follow(self, event) -> None:
        """Loading indicator while the selection builds the story; then one swap of everything."""
        if event.new:
            self.episode_view.loading = True
            return
        sel = self.selection
        # On the event loop when called from a server thread (Panel's --num-threads): one patch message.
        pn.state.execute(partial(self._show, sel.episode_info, sel.story, list(sel.notes)))

    def _show(self, info: dict, story, notes: list) -> None:
        """Heading and summary, notes, charts and methods of one episode, sent to the browser together."""
        methods = story.methods if story else []
        # freeze: Bokeh recomputes the document's model graph once, not after each chart's update.
        with pn.io.hold(freeze=True):
            self.summary.object = episode_summary(info, story)
            self.notes.object = "\n".join(f"- {html_text(n)}" for n in notes)  # codes from data
            self.notes.visible = bool(notes)
            self.charts.show(story)
            self.methods.object = "\n".join(f"- {html_text(m)}" for m in methods) if methods else ""
            self.episode_view.loading = False

    def follow_url(self) -> None:
        """Open ``?client=…&episode=…`` and keep the URL in step with the selection (shareable links)."""
        args = pn.state.session_args or {}
        client = (args.get("client") or [b""])[0].decode()
        episode = (args.get("episode") or [b""])[0].decode() or None
        if client:
            self.selection.open(client, episode)
        if pn.state.location is not None:
            pn.state.location.sync(self.selection, {"client": "client", "episode": "episode"})

    def __panel__(self):
        return pn.Column(
            pn.Row(self.widgets[:3], sizing_mode="stretch_width"),
            self.episode_view,
            self.help,
            self.scope_note,
            sizing_mode="stretch_width",
        )

    def page(self) -> pmui.Page:
        """The served page: choices in the sidebar, the episode in the main area."""
        self.follow_url()
        return pmui.Page(
            title="Alliance · Client",
            sidebar=[self.widgets, self.scope_note],
            main=[pn.Column(self.episode_view, self.help, sizing_mode="stretch_width")],
        )


def _chip(status: str | None, words: str) -> str:
    """A status as colour and words together (never colour alone); the words are escaped."""
    if not status:
        return html_text(words)
    colour = html_text(style.STATUS_COLOURS.get(status, "#999999"))
    return (
        f'<span style="background:{colour};color:white;padding:1px 8px;border-radius:8px;'
        f'font-weight:600">{html_text(words)}</span>'
    )


def _count(n, noun: str) -> str:
    """'1 session', '2 sessions'."""
    return f"{int(n)} {noun}{'' if int(n) == 1 else 's'}"


def episode_summary(info: dict, story) -> str:
    """The summary block (Markdown): who, when, intake → latest, change, status with its reason, events,
    alliance. Every code and word that comes from the data is escaped (``alliance.inert.html_text``)."""
    if not info:
        return "### No episode selected"
    t = html_text

    def day(d):
        return "—" if d is None or pd.isna(d) else f"{pd.Timestamp(d):%d %b %Y}"

    summary = story.summary if story else {}
    end = summary.get("end", {})
    end_words = {
        "open": "open",
        "planned": "closed, planned ending",
        "dropout": "closed, dropout",
        "transferred": "closed, transferred",
        "unplanned after improvement": "closed, unplanned ending after improvement",
    }
    state = end_words.get(end.get("end_type"), "open" if pd.isna(info.get("end_date")) else "closed")
    if end.get("closed_by") == "inactivity":
        state += f" (no session for {int(end['days_since_last_session'])} days)"
    lines = [
        f"### Client {t(info['client_id'])} · episode {t(info['episode_id'])}",
        f"Clinician **{t(info['clinician_id'])}** · {t(info['population'])} · "
        f"{_count(info['n_sessions'], 'session')}, "
        f"{day(info['start_date'])} – {day(info['last_session_date'])} · {t(state)}",
    ]
    ch = summary.get("change")
    if ch:
        code = story.outcome["instrument"].iloc[0]
        category = ch.get("category")
        category = "—" if category is None or pd.isna(category) else str(category)
        es = ch.get("effect_size")
        es_words = "" if es is None or pd.isna(es) else f", effect size {es:.2f}"
        if int(ch["n_ratings"]) < 2:
            lines.append(f"**{t(code)}** {ch['intake']:g} at intake (a single rating: no change yet)")
        else:
            lines.append(
                f"**{t(code)}** {ch['intake']:g} → {ch['latest']:g} over {int(ch['n_ratings'])} ratings "
                f"(improvement {ch['improvement']:+g} points{es_words}) · **{t(category)}**"
            )
    st = summary.get("status")
    if st and isinstance(st.get("status"), str):
        lines.append(f"Status {_chip(st['status'], st['status_words'])} {t(st['reason'])}")
    sudden = summary.get("sudden")
    ae = summary.get("alliance_events")
    parts = []
    if sudden is not None:
        parts.append(
            f"{int((sudden['kind'] == 'gain').sum())} candidate sudden gain(s), "
            f"{int((sudden['kind'] == 'loss').sum())} sudden loss(es)"
        )
    if ae is not None and len(ae):
        rup = ae[ae["event"] == "rupture"]
        counts = rup["repair_status"].astype(str).value_counts()
        parts.append(
            f"{len(rup)} rupture(s): {int(counts.get('repaired', 0))} repaired, "
            f"{int(counts.get('unrepaired', 0))} not repaired, {int(counts.get('open', 0))} open"
            if len(rup)
            else "no ruptures"
        )
    elif story is not None and len(story.alliance):
        parts.append("no ruptures")
    if parts:
        lines.append(" · ".join(parts))
    if "alliance_mean" in summary:
        code = story.alliance["instrument"].iloc[0]
        slope = summary.get("alliance_slope")
        trend = (
            ""
            if slope is None or pd.isna(slope)
            else ", flat trend"
            if abs(slope) < 0.005  # "-0.00" reads as a fall
            else f", trend {slope:+.2f} points per session"
        )
        extra = "".join(f" · {t(summary[k])}" for k in ("ceiling", "late_decline") if k in summary)
        lines.append(
            f"**{t(code)}** mean {summary['alliance_mean']:.1f} over "
            f"{_count(summary['alliance_n'], 'rating')}{trend}{extra}"
        )
    return "\n\n".join(lines)


def build_page(page_class: type[Viewer], path=None, scope: Scope | None = None):
    """A page for the configured database, or a clear message about what is wrong (never a traceback)."""
    style.apply_defaults()
    service = open_service(path, scope)
    return service if isinstance(service, ProblemView) else page_class(service=service)


def client_page(path=None, scope: Scope | None = None) -> ClientPage | ProblemView:
    """The client page for the configured database, or a clear message about what is wrong."""
    return build_page(ClientPage, path, scope)


class CaseloadPage(Viewer):
    """A clinician's caseload: who needs attention now and why, headline figures, the picture, the trend."""

    service = param.ClassSelector(class_=Service)

    def __init__(self, **params):
        from alliance.views.caseload import (
            CaseloadPicture,
            CaseloadState,
            EpisodeTable,
            Headlines,
            TrendTable,
        )

        super().__init__(**params)
        self.state = CaseloadState(self.service)
        sp = self.state.param
        self.widgets = pn.Column(
            pmui.Select.from_param(sp.clinician, label="Clinician", searchable=True),
            pmui.Switch.from_param(sp.show_closed, label="Show closed episodes"),
            pmui.Select.from_param(sp.instrument, label="Measure in the picture"),
            sizing_mode="stretch_width",
        )
        self.headlines = Headlines(state=self.state)
        self.table = EpisodeTable(state=self.state)
        self.picture = CaseloadPicture(state=self.state)
        self.trend = TrendTable(state=self.state)
        self.help = pmui.Accordion(
            ("How to read this page", pn.pane.Markdown(CASELOAD_PAGE_HELP, sizing_mode="stretch_width")),
            sizing_mode="stretch_width",
            active=[],
        )
        self.scope_note = pmui.Typography(
            html_text(self.service.scope.describe()), variant="caption", name="scope"
        )

    def _main(self):
        return pn.Column(
            self.headlines,
            pmui.Typography(
                "Episodes (flagged first; click a client code to open the client page)", variant="h6"
            ),
            self.table,
            self.picture,
            pmui.Typography("This caseload by quarter", variant="h6"),
            self.trend,
            self.help,
            sizing_mode="stretch_width",
        )

    def __panel__(self):
        return pn.Column(self.widgets, self._main(), self.scope_note, sizing_mode="stretch_width")

    def page(self) -> pmui.Page:
        args = pn.state.session_args or {}
        clinician = (args.get("clinician") or [b""])[0].decode()
        if clinician in self.state.param.clinician.objects:
            self.state.clinician = clinician
        if pn.state.location is not None:
            pn.state.location.sync(self.state, {"clinician": "clinician"})
        return pmui.Page(
            title="Alliance · Caseload", sidebar=[self.widgets, self.scope_note], main=[self._main()]
        )


def caseload_page(path=None, scope: Scope | None = None) -> CaseloadPage | ProblemView:
    """The caseload page for the configured database, or a clear message about what is wrong."""
    return build_page(CaseloadPage, path, scope)


class ComparisonPage(Viewer):
    """Fair comparisons across clinicians: table with intervals, funnel plot, shrunken estimates."""

    service = param.ClassSelector(class_=Service)

    def __init__(self, **params):
        from alliance.datastore import DataStore
        from alliance.views.comparison import CaterpillarPlot, ComparisonState, ComparisonTable, FunnelPlot

        super().__init__(**params)
        self.state = ComparisonState(DataStore(db=self.service.db, scope=self.service.scope))
        sp = self.state.param
        self.widgets = pn.Column(
            pmui.Select.from_param(sp.instrument, label="Outcome measure"),
            pmui.Select.from_param(sp.team, label="Team"),
            pmui.Select.from_param(sp.population, label="Population"),
            pn.widgets.DateRangeSlider.from_param(
                sp.period, name="Period (closed episodes' last session)", format="%b %Y"
            ),
            pmui.IntInput.from_param(sp.minimum, label="Minimum closed episodes to rank"),
            pmui.Select.from_param(sp.measure, label="Funnel plot shows"),
            sizing_mode="stretch_width",
        )
        self.table = ComparisonTable(state=self.state)
        self.funnel = FunnelPlot(state=self.state)
        self.caterpillar = CaterpillarPlot(state=self.state)
        self.how_to_read = pn.pane.Markdown(COMPARISON_PAGE_HELP, sizing_mode="stretch_width")
        self.scope_note = pmui.Typography(
            html_text(self.service.scope.describe()), variant="caption", name="scope"
        )

    def _main(self):
        return pn.Column(
            self.how_to_read,
            pn.Row(self.funnel, self.caterpillar, sizing_mode="stretch_width"),
            pmui.Typography(
                "Clinicians (ranked on the severity-adjusted effect size; grey = under the "
                "minimum, not ranked)",
                variant="h6",
            ),
            self.table,
            sizing_mode="stretch_width",
        )

    def __panel__(self):
        return pn.Column(self.widgets, self._main(), self.scope_note, sizing_mode="stretch_width")

    def page(self) -> pmui.Page:
        if pn.state.location is not None:
            pn.state.location.sync(self.state, {"team": "team", "instrument": "instrument"})
        return pmui.Page(
            title="Alliance · Comparison", sidebar=[self.widgets, self.scope_note], main=[self._main()]
        )


def comparison_page(path=None, scope: Scope | None = None) -> ComparisonPage | ProblemView:
    """The comparison page for the configured database, or a clear message about what is wrong."""
    return build_page(ComparisonPage, path, scope)


def _day(d) -> str:
    return "—" if d is None or pd.isna(d) else f"{pd.Timestamp(d):%d %b %Y}"


class MeetingPage(Viewer):
    """The page on the screen during a supervision meeting."""

    service = param.ClassSelector(class_=Service)
    store = param.ClassSelector(class_=MarkStore, allow_None=True)

    def __init__(self, **params):
        super().__init__(**params)
        self.state = MeetingState(service=self.service, store=self.store)
        # A clinician given: the client charts start on the team's first supervisee, not on the client page's
        # landing episode (which reads the status of the whole scope).
        team = team_clinicians(self.service, self.state.supervisor) if self.state.supervisor else []
        self.selection = ClientSelection(service=self.service, **({"clinician": team[0]} if team else {}))
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
