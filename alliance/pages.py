"""Pages: each builds its state and views once and lays them out in a ``pmui.Page`` (served) or a column
(inline in Jupyter). A database problem becomes a clear message on the page, never a traceback."""

from __future__ import annotations

from functools import partial

import pandas as pd
import panel as pn
import panel_material_ui as pmui
import param
from panel.viewable import Viewer

from alliance import style
from alliance.db import DatabaseError
from alliance.help import CASELOAD_PAGE_HELP, CLIENT_PAGE_HELP, COMPARISON_PAGE_HELP
from alliance.inert import html_text
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
        f"Clinician **{t(info['clinician_id'])}** · {t(info['population'])} · {info['n_sessions']} sessions, "
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
        trend = "" if slope is None or pd.isna(slope) else f", trend {slope:+.2f} points per session"
        extra = "".join(f" · {t(summary[k])}" for k in ("ceiling", "late_decline") if k in summary)
        lines.append(
            f"**{t(code)}** mean {summary['alliance_mean']:.1f} over {summary['alliance_n']} ratings"
            f"{trend}{extra}"
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
