"""Pages: each builds its state and views once and lays them out in a ``pmui.Page`` (served) or a column
(inline in Jupyter). A database problem becomes a clear message on the page, never a traceback."""

from __future__ import annotations

import asyncio
import io
import itertools
import sqlite3
import tempfile
from functools import partial
from pathlib import Path

import pandas as pd
import panel as pn
import panel_material_ui as pmui
import param
from panel.io.state import set_curdoc
from panel.util import edit_readonly
from panel.viewable import Viewer

from alliance import audit, model_graph, style
from alliance.after_pull import after_pull
from alliance.auth import AccessRefused, access_header, check_page, current_user, scope_for, serving
from alliance.chart_css import install as draw_charts_from_their_models
from alliance.db import DatabaseError, open_database
from alliance.freshness import data_status
from alliance.guard import ScopedSelect
from alliance.help import CASELOAD_PAGE_HELP, CLIENT_PAGE_HELP, COMPARISON_PAGE_HELP
from alliance.inert import file_name, html_text
from alliance.marks import MarkError, MarkStore
from alliance.native_bundle import install as load_bundle_natively
from alliance.page_resources import install as list_page_files_once
from alliance.scope import Scope
from alliance.service import Service
from alliance.state import ClientSelection, MeetingState
from alliance.views.client import ClientCharts


class ProblemView(Viewer):
    """What is wrong and what to do, shown in place of a page that cannot work."""

    title = param.String()
    problem = param.String()
    remedy = param.String()
    header = param.List(default=[], doc="The app bar's items (who is signed in, or the demo banner).")

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
        return served_page(title="Alliance", header=self.header, main=[self])


def _database_problem(exc: DatabaseError) -> ProblemView:
    return ProblemView(
        title="The database cannot be used",
        problem=str(exc),
        remedy="Set ALLIANCE_DB (or `make serve DB=path`) to an Alliance database and reload.",
    )


def viewer_scope(page: str, path=None) -> Scope | ProblemView:
    """The scope of whoever is looking at ``page`` (``alliance.auth``: the signed-in user's role and the
    database), or a plain refusal with no data: an unknown user, a role not allowed on this page, a demo
    reached from another machine."""
    identity = current_user(path)
    bare = Scope(viewer=identity.describe() if identity.signed_in else "", demo=not identity.signed_in)
    try:
        check_page(identity, page, path)
        return scope_for(identity, open_database(path) if identity.signed_in else None)
    except AccessRefused as exc:
        return ProblemView(
            title=exc.title, problem=exc.problem, remedy=exc.remedy, header=access_header(bare)
        )
    except DatabaseError as exc:
        return _database_problem(exc)


def served_page(**params) -> pmui.Page:
    """A served page's Material UI template, without its busy indicator.

    ``pmui.Page`` follows Panel's process-wide ``pn.state.busy``: every event any session of the process
    handles turns it on and off, and each open page then sends the change to its browser, which Panel
    prepares by walking every Bokeh model of that page (about 30 ms for a client page at service scale, twice
    per event). With twenty sessions open, one person's click cost the server over a second of work for the
    others' pages, and every page showed a busy bar for other people's work. The pages show their own
    loading indicators on what is being updated instead."""
    page = pmui.Page(busy_indicator=None, **params)
    with edit_readonly(page):
        page.busy = False  # a value instead of the reference to pn.state.busy: no longer follows it
    return page


def serve(page) -> None:
    """Under ``panel serve``, add the page's template (``page.page()``) to the session being built: laid out
    at once, its main area filled in once the browser has drawn the rest (``pn.state.onload``), with Panel's
    style sheets served from here. In a notebook kernel, nothing (the page shows inline).

    Laid out at once: the app bar, who is signed in and the sidebar's choices reach the browser without the
    main area's charts and tables, which the browser would otherwise have to receive and draw first; the main
    area shows Panel's loading indicator until they arrive. What the main area alone needs (``prepare``) is
    made while the browser draws the frame (``alliance.after_pull``), not before the frame is sent
    (``docs/performance.md``).

    Style sheets: the server keeps one session per page to write later visitors' HTML (``--reuse-sessions``)
    and builds each visitor's own session when its websocket connects. Panel points its components' style
    sheets at this server's copies only while it writes a page's HTML; a session built on connect would fetch
    them from a public CDN: a request to a third party from the clinic's network, and an unstyled page without
    internet access."""
    from panel.io.resources import LOCAL_DIST, patch_model_css

    if not serving():
        return
    load_bundle_natively()  # Material UI's bundle: the browser's own module loader (alliance.native_bundle)
    draw_charts_from_their_models()  # no style lookup per line, fill and text of a chart (alliance.chart_css)
    list_page_files_once()  # the HTML's scripts and style sheets (alliance.page_resources)
    doc = pn.state.curdoc
    dist_url = f"{pn.state.rel_path}/{LOCAL_DIST}" if pn.state.rel_path else LOCAL_DIST
    template = page.page()
    content = list(template.main)
    filling = pn.Column(
        sizing_mode="stretch_width", min_height=400, loading=True, name="filling", styles=FULL_HEIGHT
    )
    template.main = [filling]

    def fill() -> None:
        if filling.objects:  # filled already
            return
        prepare = getattr(page, "prepare", None)
        if prepare is not None:
            prepare()
        # One message: the content's models, their style sheets pointed here before they are sent.
        with pn.io.hold():
            filling.param.update(objects=content, loading=False, min_height=None)
            for root in doc.roots:
                patch_model_css(root, dist_url=dist_url)

    # The main area's own objects (``prepare``: the charts' figures, the comparison's table) are made while
    # the browser draws the frame (alliance.after_pull), instead of before the frame is sent. Their models
    # are made and sent once the browser has drawn the frame: sent while it draws, they would be drawn with
    # it, and the page would show nothing until both were drawn.
    prepare = getattr(page, "prepare", None)
    if prepare is not None:
        after_pull(doc, prepare)
    pn.state.onload(fill)
    template.servable()
    doc.template_variables["dist_url"] = dist_url
    for root in doc.roots:
        patch_model_css(root, dist_url=dist_url)


#: Milliseconds between looks whether Panel still holds the page's last message back, and at most how long
#: the handed-over work waits for it.
HAND_OVER_MS = 5
HAND_OVER_WAIT_MS = 300


def later(work) -> bool:
    """Run ``work`` at the server's next turn, or as soon as the page's last message is on its way, on a
    served page that has loaded; True when it is taken over. Elsewhere (a notebook, a page still being
    built: a deep link, the URL) it is left to the caller to run at once.

    The server runs each session's callbacks on its event loop and sends what a callback changed only when
    the callback returns. A step that shows a loading indicator and then works for a noticeable time hands
    its work to ``later``: the indicator goes to the browser at once, the result in the next message.

    Panel writes a change at once only while the browser's connection is not writing another message;
    otherwise it holds the change back and tries again every 10 ms. The work, which keeps the server busy,
    waits until Panel holds nothing back for the page (``_holds_messages``), so that the indicator is in the
    browser before it starts (docs/performance.md, round 16). Armed with ``add_next_tick_callback``, which
    may be called from any thread."""
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None or not pn.state.loaded:
        return False
    doc.add_next_tick_callback(partial(_when_sent, doc, work, HAND_OVER_WAIT_MS))
    return True


def _when_sent(doc, work, wait_ms: float) -> None:
    """Run ``work`` now, or look again in ``HAND_OVER_MS`` while Panel holds the page's messages back (on
    the server's event loop, with the document's lock)."""
    if wait_ms > 0 and _holds_messages(doc):
        doc.add_timeout_callback(partial(_when_sent, doc, work, wait_ms - HAND_OVER_MS), HAND_OVER_MS)
        return
    with set_curdoc(doc):  # as Panel runs a callback it schedules: the work's changes go to this page
        pn.state.execute(work)


def _holds_messages(doc) -> bool:
    """Whether Panel holds messages for the document's browser back until its connection is free (Panel's
    ``_WRITE_BLOCK``; a Panel without it is taken to hold nothing back)."""
    from panel.io import document as panel_document

    held = getattr(panel_document, "_WRITE_BLOCK", None)
    try:
        return held is not None and doc in held
    except TypeError:  # not a mapping any more
        return False


def open_service(path=None, scope: Scope | None = None) -> Service | ProblemView:
    """The scoped service for the configured database, or the problem that prevents it."""
    try:
        service = Service.open(path, scope)
        if service.has_ratings():
            return service
        overview = service.overview()
    except DatabaseError as exc:
        return _database_problem(exc)
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


#: Panel caps a stretching column at its container's height (``max-height: 100%``): in the page's main area,
#: as tall as the window, the episode and the help below it would be drawn over each other once the episode
#: is taller than the window. These columns take their content's height and the main area scrolls.
FULL_HEIGHT = {"max-height": "none"}


class ClientPage(Viewer):
    """Choose clinician, client and episode; see outcome and alliance on one axis with the episode's story.

    Heading, summary, notes, methods and charts change together: while a choice is followed the episode view
    keeps the old episode under Panel's loading indicator, then everything is swapped in one ``pn.io.hold()``.
    """

    service = param.ClassSelector(class_=Service)

    def __init__(self, **params):
        super().__init__(**params)
        # Served, the episode's story is built with the main area, while the browser draws the frame
        # (prepare); the frame needs only the choices. A link's client replaces the landing episode before
        # any story is built.
        self.selection = ClientSelection(service=self.service, hold_story=serving())
        # Shown by _show, with the rest; served, the figures are made with the main area (prepare).
        self.charts = ClientCharts(selection=self.selection, follow=False, deferred=serving())
        sel = self.selection.param
        self.widgets = pn.Column(
            ScopedSelect.from_param(sel.clinician, label="Clinician", searchable=True),
            ScopedSelect.from_param(sel.client, label="Client", searchable=True),
            ScopedSelect.from_param(sel.episode, label="Episode"),
            pmui.Select.from_param(sel.outcome_instrument, label="Outcome measure"),
            pmui.Select.from_param(sel.alliance_instrument, label="Alliance measure"),
            pmui.RadioButtonGroup.from_param(sel.x_axis, label="Axis"),
            pmui.Select.from_param(sel.breakdown, label="Alliance breakdown"),
            sizing_mode="stretch_width",
        )
        # A client asked for by URL or by a value the browser sent that is not among the clients in scope:
        # "not found", the same words whether the client exists outside the scope or not at all.
        self.not_found = pmui.Alert(
            severity="info", sizing_mode="stretch_width", visible=False, name="not-found"
        )
        for widget, what in zip(self.widgets[:3], ("Clinician", "Client", "Episode"), strict=True):
            widget.on_refused = partial(self.client_not_found, what=what)
        self.selection.param.watch(self._found, ["episode_info"])
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
            styles=FULL_HEIGHT,
        )
        self.help = pmui.Accordion(
            ("How to read this page", pn.pane.Markdown(CLIENT_PAGE_HELP, sizing_mode="stretch_width")),
            sizing_mode="stretch_width",
            active=[],
        )
        self.scope_note = pmui.Typography(
            html_text(self.service.scope.describe()), variant="caption", name="scope"
        )
        # Views are recorded in the audit trail once the page is shown (page(), __panel__), once per episode.
        self._live, self._viewed, self._parts = False, None, list(self.episode_view.objects)
        self._show(self.selection.episode_info, self.selection.story, list(self.selection.notes))
        self.selection.param.watch(self._follow, ["busy"])
        self.selection.defer = later  # served: a choice shows the indicator, then does its work

    def prepare(self) -> None:
        """What only the main area needs, left out of the frame: the episode's story, the charts' figures."""
        sel = self.selection
        not_found = self.not_found.visible  # a link's client not found: still said over the landing episode
        if sel.release_story():
            self._show(sel.episode_info, sel.story, list(sel.notes))
            self.not_found.visible = not_found
        self.charts.build()

    def _follow(self, event) -> None:
        """Loading indicator while the selection builds the story; then one swap of everything."""
        if event.new:
            self.episode_view.loading = True
            return
        sel = self.selection
        if sel.story_held:  # chosen before the page was drawn: prepare shows the story it builds
            return
        # On the event loop when called from another thread (a server with Panel's --num-threads, a notebook
        # thread): one patch message.
        pn.state.execute(partial(self._show, sel.episode_info, sel.story, list(sel.notes)))

    def _show(self, info: dict, story, notes: list) -> None:
        """Heading and summary, notes, charts and methods of one episode, sent to the browser together."""
        if self._live and not self._record_view(info):
            return
        methods = story.methods if story else []
        # One message; Bokeh walks the document's model graph only if a change asks for it
        # (alliance.model_graph), at most once.
        with model_graph.batch(), pn.io.hold():
            self.summary.object = episode_summary(info, story)
            # Without an episode the summary says why; "what this episode lacks" is for an episode's gaps.
            notes = notes if info else []
            self.notes.object = "\n".join(f"- {html_text(n)}" for n in notes)  # codes from data
            self.notes.visible = bool(notes)
            self.charts.show(story)
            self.methods.object = "\n".join(f"- {html_text(m)}" for m in methods) if methods else ""
            self._measures_rated()
            self.episode_view.loading = False

    def _measures_rated(self) -> None:
        """A measure select whose episode has no rating of its kind (an episode with no alliance measure, or
        none yet) says so and cannot be opened, instead of showing an empty choice as the word "None"."""
        episode = bool(self.selection.episode_info)
        for widget, name in zip(
            self.widgets[3:5], ("outcome_instrument", "alliance_instrument"), strict=True
        ):
            # (Param adds the value None to an empty selector's objects when it is set.)
            none = not [o for o in self.selection.param[name].objects if o is not None]
            label = ("none rated" if episode else "no episode") if none else ""
            widget.param.update(value_label=label, disabled=none)

    def _record_view(self, info: dict) -> bool:
        """Record the episode about to be shown (``alliance.audit``, once per episode shown). When the audit
        trail cannot be written the episode is not shown: the episode view says why instead."""
        episode = (info or {}).get("episode_id")
        if not episode or episode == self._viewed:
            return True
        try:
            audit.record(
                "view_client",
                db=self.service.db.path,
                client=info.get("client_id"),
                episode=episode,
                detail=f"client page; clinician {info.get('clinician_id')}",
            )
        except audit.AuditError as exc:
            self._viewed = None
            refusal = pmui.Alert(
                title="This episode cannot be shown",
                object=f"{html_text(str(exc))}\n\nEvery view of a client is recorded; ask the administrator.",
                severity="error",
                sizing_mode="stretch_width",
                name="audit-refusal",
            )
            self.episode_view.objects, self.episode_view.loading = [refusal], False
            return False
        self._viewed = episode
        if self.episode_view.objects != self._parts:
            self.episode_view.objects = list(self._parts)
        return True

    def follow_url(self) -> None:
        """Open ``?client=…&episode=…`` and keep the URL in step with the selection (shareable links)."""
        args = pn.state.session_args or {}
        client = (args.get("client") or [b""])[0].decode()
        episode = (args.get("episode") or [b""])[0].decode() or None
        if client:
            self.selection.open(client, episode)
            if self.selection.client != client:
                self.client_not_found(client)
        if pn.state.location is not None:
            pn.state.location.sync(self.selection, {"client": "client", "episode": "episode"})

    def _found(self, event) -> None:
        if event.new:  # an episode in scope is shown again
            self.not_found.visible = False

    def client_not_found(self, client: str, what: str = "Client") -> None:
        """Say that ``client`` (or a clinician, an episode) is not found — never whether it exists outside the
        viewer's scope."""
        code = client if len(client) <= 60 else client[:60] + "…"
        self.not_found.object = f"{what} {html_text(code)} not found."
        self.not_found.visible = True

    def __panel__(self):
        self._live = True
        self._record_view(self.selection.episode_info)
        return pn.Column(
            # Inline (Jupyter): every choice of the served page's sidebar, four to a row above the episode.
            pn.GridBox(*self.widgets.objects, ncols=4, sizing_mode="stretch_width", name="choices"),
            self.not_found,
            self.episode_view,
            self.help,
            self.scope_note,
            sizing_mode="stretch_width",
        )

    def page(self) -> pmui.Page:
        """The served page: choices in the sidebar, the episode in the main area."""
        self.follow_url()
        self._live = True
        self._record_view(self.selection.episode_info)
        return served_page(
            title="Alliance · Client",
            header=[*access_header(self.service.scope), data_status(self.service)],
            sidebar=[self.widgets, self.scope_note],
            main=[
                pn.Column(
                    self.not_found,
                    self.episode_view,
                    self.help,
                    sizing_mode="stretch_width",
                    styles=FULL_HEIGHT,
                )
            ],
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
        return (
            "### No episode selected\n\n"
            "This client has no episode you can see. Choose a clinician and a client."
        )
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


def build_page(page_class: type[Viewer], path=None, scope: Scope | None = None, **page_params):
    """A page for the configured database, or a clear message about what is wrong (never a traceback).

    Without ``scope`` (a served page) the scope is the viewer's (``viewer_scope``): a refusal is returned
    before the database is read."""
    if scope is None:
        scope = viewer_scope(page_class.__name__.removesuffix("Page").lower(), path)
        if isinstance(scope, ProblemView):
            return scope
    service = open_service(path, scope)
    if isinstance(service, ProblemView):
        return service
    try:
        return page_class(service=service, **page_params)
    except DatabaseError as exc:  # the file turned out damaged while the page read it
        return _database_problem(exc)


def client_page(path=None, scope: Scope | None = None) -> ClientPage | ProblemView:
    """The client page for the configured database, or a clear message about what is wrong."""
    return build_page(ClientPage, path, scope)


class CaseloadPage(Viewer):
    """A clinician's caseload: who needs attention now and why, headline figures, the picture, the trend."""

    service = param.ClassSelector(class_=Service)

    def __init__(self, clinician: str | None = None, **params):
        from alliance.views.caseload import (
            CaseloadPicture,
            CaseloadState,
            EpisodeTable,
            Headlines,
            TrendTable,
        )

        super().__init__(**params)
        if clinician is None:  # served: the link's clinician, so the caseload is built once, for them
            args = pn.state.session_args or {}
            clinician = (args.get("clinician") or [b""])[0].decode(errors="replace") or None
        self.state = CaseloadState(self.service, clinician=clinician)  # not in scope: the first in scope
        sp = self.state.param
        self.widgets = pn.Column(
            ScopedSelect.from_param(sp.clinician, label="Clinician", searchable=True),
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
        return served_page(
            title="Alliance · Caseload",
            header=[*access_header(self.service.scope), data_status(self.service)],
            sidebar=[self.widgets, self.scope_note],
            main=[self._main()],
        )


def caseload_page(
    path=None, scope: Scope | None = None, clinician: str | None = None
) -> CaseloadPage | ProblemView:
    """The caseload page for the configured database (of ``clinician``, else the link's, else the first in
    scope), or a clear message about what is wrong."""
    return build_page(CaseloadPage, path, scope, clinician=clinician)


class ComparisonPage(Viewer):
    """Fair comparisons across clinicians: table with intervals, funnel plot, shrunken estimates."""

    service = param.ClassSelector(class_=Service)

    def __init__(self, **params):
        from alliance.views.comparison import ComparisonState

        super().__init__(**params)
        store = comparison_store(self.service)
        you = self.service.scope.you
        # A clinician or supervisor starts on the outcome measure they use most (from their own episodes).
        theirs = store.comparison_options(Scope.clinicians(you))["instruments"] if you else []
        self.state = ComparisonState(store, prefer=theirs[0] if theirs else None)
        sp = self.state.param
        self.widgets = pn.Column(
            pmui.Select.from_param(sp.instrument, label="Outcome measure"),
            pmui.Select.from_param(sp.team, label="Team"),
            pmui.Select.from_param(sp.population, label="Population"),
            # Short: the sidebar is narrow; the main area's heading states the period in full.
            pn.widgets.DateRangeSlider.from_param(sp.period, name="Period", format="%b %Y"),
            pmui.IntInput.from_param(sp.minimum, label="Minimum closed episodes to rank"),
            pmui.Select.from_param(sp.measure, label="Funnel plot shows"),
            sizing_mode="stretch_width",
        )
        self.scope_note = pmui.Typography(
            html_text(self.service.scope.describe_comparison()), variant="caption", name="scope"
        )
        self.content = pn.Column(sizing_mode="stretch_width")
        self.table = self.funnel = self.caterpillar = self.heading = None
        if not serving():
            self.prepare()
        # Served: a filter shows the loading indicator over the comparison, then computes it (HandsOver).
        self.state.defer = later
        self.state.param.watch(lambda e: setattr(self.content, "loading", e.new), ["busy"])

    def prepare(self) -> None:
        """The comparison's views: served, made with the main area rather than in the frame the browser
        waits for (a 4,000-row table and two 4,000-point charts at service scale)."""
        from alliance.views.comparison import (
            CaterpillarPlot,
            ComparisonHeading,
            ComparisonTable,
            FunnelPlot,
        )

        if self.table is not None:
            return
        self.heading = ComparisonHeading(state=self.state)
        self.funnel = FunnelPlot(state=self.state)
        self.caterpillar = CaterpillarPlot(state=self.state)
        self.table = ComparisonTable(state=self.state)
        self.content.objects = [
            self.heading,
            pn.pane.Markdown(COMPARISON_PAGE_HELP, sizing_mode="stretch_width"),
            pn.Row(self.funnel, self.caterpillar, sizing_mode="stretch_width"),
            pmui.Typography(
                "Clinicians (ranked on the severity-adjusted effect size; grey = under the "
                "minimum, not ranked)",
                variant="h6",
            ),
            self.table,
        ]

    def _main(self):
        return self.content

    def __panel__(self):
        return pn.Column(self.widgets, self._main(), self.scope_note, sizing_mode="stretch_width")

    def page(self) -> pmui.Page:
        if pn.state.location is not None:
            pn.state.location.sync(self.state, {"team": "team", "instrument": "instrument"})
        return served_page(
            title="Alliance · Comparison",
            header=[*access_header(self.service.scope), data_status(self.service)],
            sidebar=[self.widgets, self.scope_note],
            main=[self._main()],
        )


def comparison_store(service: Service):
    """What the comparison page reads: the viewer's scope — or, for a viewer whose comparisons cover every
    clinician (``Scope.compare_all``: aggregates), the whole service — with every clinician the viewer may
    not see by name shown under a pseudonym, in the frames themselves (``clinician_names``)."""
    from alliance.auth import pseudonym_key
    from alliance.clinician_comparison import NamedComparisons, clinician_names
    from alliance.datastore import DataStore

    scope = service.scope
    store = DataStore(db=service.db, scope=Scope.full_access() if scope.compare_all else scope)
    if scope.named is None and not scope.you:
        return store
    codes = Service(service.db, Scope.full_access()).clinicians()["clinician_id"]
    key = pseudonym_key(service.db.data_version)
    names = clinician_names(codes, named=scope.named, you=scope.you, key=key)
    return NamedComparisons(store, names)


def comparison_page(path=None, scope: Scope | None = None) -> ComparisonPage | ProblemView:
    """The comparison page for the configured database, or a clear message about what is wrong."""
    return build_page(ComparisonPage, path, scope)


def _day(d) -> str:
    return "—" if d is None or pd.isna(d) else f"{pd.Timestamp(d):%d %b %Y}"


class MeetingPage(Viewer):
    """The page on the screen during a supervision meeting: a triage board per supervisee (see
    ``alliance.views.meeting``), what changed since the last meeting, and the client charts opened beside the
    board — the client's reasons and action-note field stay in view."""

    service = param.ClassSelector(class_=Service)
    store = param.ClassSelector(class_=MarkStore, allow_None=True)

    def __init__(self, **params):
        from alliance.views.meeting import KEYS, AgendaBoard, SinceLastMeeting

        super().__init__(**params)
        self.state = MeetingState(service=self.service, store=self.store)
        self.selection: ClientSelection | None = None  # the client charts: built when first opened
        # Each "open charts" (a click, o, or a step while they are open) and each "back" takes a ticket: an
        # open overtaken by a later request while it was building (quick steps, then back) changes nothing.
        self._tickets = itertools.count(1)
        self._latest = 0
        self.charts: ClientCharts | None = None
        sp = self.state.param
        self.download_html = pmui.FileDownload(
            callback=self._pack_html_aside, filename="meeting-pack.html", label="Meeting pack (HTML)"
        )
        self.download_pdf = pmui.FileDownload(
            callback=self._pack_pdf_aside, filename="meeting-pack.pdf", label="Meeting pack (PDF)"
        )
        self.widgets = pn.Column(
            ScopedSelect.from_param(sp.supervisor, label="Supervisor"),
            ScopedSelect.from_param(sp.supervisee, label="Supervisee"),
            pmui.DatePicker.from_param(sp.meeting_date, label="Meeting date"),
            self.download_html,
            self.download_pdf,
            sizing_mode="stretch_width",
        )
        self.message = pmui.Alert(severity="warning", sizing_mode="stretch_width", visible=False)
        # A Markdown pane, not pmui.Typography: Typography decodes its text in the browser before inserting
        # it as HTML, and after an update it was seen showing the rendered "<p>…</p>" tags as text.
        self.title = pn.pane.Markdown(name="agenda-title", margin=(0, 5), sizing_mode="stretch_width")
        self.store_alert = pmui.Alert(severity="warning", sizing_mode="stretch_width", visible=False)
        self.since = SinceLastMeeting(sizing_mode="stretch_width", name="since-last-meeting")
        self.board = AgendaBoard(on_action=self._act, sizing_mode="stretch_width", name="agenda")
        self.previous_button = pmui.Button(
            label="◀ Previous client", variant="outlined", width=170, sizing_mode="fixed"
        )
        self.next_button = pmui.Button(
            label="Next client ▶", variant="outlined", width=170, sizing_mode="fixed"
        )
        self.previous_button.on_click(lambda _e: self.board.step(-1))
        self.next_button.on_click(lambda _e: self.board.step(1))
        self.nav = pn.Row(
            self.previous_button,
            self.next_button,
            pmui.Typography(f"Keys: {KEYS}", variant="caption", margin=(12, 10)),
            sizing_mode="stretch_width",
        )
        self.back = pmui.Button(
            label="Back to the agenda", variant="outlined", width=200, sizing_mode="fixed"
        )
        self.back.on_click(self._show_agenda)
        self.summary = pn.pane.Markdown(
            sizing_mode="stretch_width", name="episode-summary", css_classes=["episode-summary"]
        )
        # The loading indicator covers the summary and charts only: "Back to the agenda" stays clickable while
        # the next client's charts are built (an open it overtakes then shows nothing, see ``open_client``).
        self.client_body = pn.Column(self.summary, sizing_mode="stretch_width", margin=0)
        self.client_view = pn.Column(
            self.back, self.client_body, sizing_mode="stretch_width", visible=False, styles=FULL_HEIGHT
        )
        self.scope_note = pmui.Typography(
            html_text(self.service.scope.describe()), variant="caption", name="scope"
        )
        self.board_column = pn.Column(self.board, sizing_mode="stretch_width", margin=0, styles=FULL_HEIGHT)
        self._page: pmui.Page | None = None
        self._focus = ""  # the client in focus, as the browser last said
        # Served: "Open charts" and another supervisor, supervisee or date show the loading indicator, then do
        # their work at the server's next turn.
        self.defer = self.state.defer = later
        self.state.param.watch(lambda e: setattr(self.board_column, "loading", e.new), ["busy"])
        self._render_agenda()
        self.state.param.watch(self._render_agenda, ["agenda"])

    # -- agenda ---------------------------------------------------------------------------------------
    def _render_agenda(self, *events):
        from alliance.views.meeting import board_html, since_html

        st = self.state
        agenda = st.agenda if st.agenda is not None else pd.DataFrame()
        year = pd.Timestamp(st.meeting_date).year if st.meeting_date else None
        n = len(agenda)
        self.title.object = (
            f"#### Agenda for {html_text(st.supervisor)} · meeting {_day(st.meeting_date)} · {n} client"
            f"{'' if n == 1 else 's'} to discuss · data as of {_day(st.metrics.as_of)}"
        )
        self.store_alert.object = html_text(st.store_problem)
        self.store_alert.visible = bool(st.store_problem)
        episodes = agenda["episode_id"].tolist() if n else []
        # The browser holds the focus; it is set from here only when its client has left the board.
        focus = {} if self._focus in episodes else {"focus": episodes[0] if episodes else ""}
        self._focus = self._focus if self._focus in episodes else (episodes[0] if episodes else "")
        with pn.io.hold():
            self.since.content = since_html(st.since, st.previous, year)
            self.board.param.update(
                content=board_html(agenda, st.headers, st.courses or {}, st.previous, year),
                episodes=episodes,
                **focus,
            )

    def _act(self, msg: dict) -> None:
        """A click on the board: open charts, discussed, undo, follow-up."""
        episode = str(msg.get("episode") or "")
        if self.state.agenda is None or episode not in set(self.state.agenda["episode_id"]):
            return
        action = msg.get("action")
        self._focus = episode
        if action == "focus":
            self._focus_moved(episode)
        elif action == "open":
            row = self.state.agenda.set_index("episode_id").loc[episode]
            self.open_client(row["client_id"], episode)
        elif action == "discussed":
            self.discussed(episode, str(msg.get("note") or ""))
        elif action == "undo":
            self._marking(self.state.undo, episode)
        elif action == "followup":
            self._marking(self.state.follow_up, episode, str(msg.get("value") or ""))

    def _store_call(self, fn, *args) -> bool:
        try:
            fn(*args)
        except (MarkError, audit.AuditError, sqlite3.Error, OSError) as exc:  # may quote a code or a path
            self.message.object, self.message.visible = html_text(str(exc)), True
            return False
        self.message.visible = False
        return True

    def discussed(self, episode_id: str, note: str = "") -> None:
        """Mark a client discussed at this meeting (with an optional action note): it stays in place."""
        self._marking(self.state.mark, episode_id, note)

    def _marking(self, fn, *args) -> None:
        """A mark, its undo or a follow-up: written, then the agenda re-read (about 0.2 s at 200,000 episodes,
        more while other people's pages are built). Served, the board shows the loading indicator first and
        the work runs at the server's next turn; the indicator goes with the refreshed board."""

        def work() -> None:
            try:
                self._store_call(fn, *args)
            finally:
                self.board_column.loading = False

        if self.defer(work):
            self.board_column.loading = True
        else:
            work()

    def _focus_moved(self, episode: str) -> None:
        """With the charts open, the next / previous client's charts follow the focus."""
        if self.client_view.visible and self.state.agenda is not None:
            rows = self.state.agenda.set_index("episode_id")
            if episode in rows.index:
                self.open_client(rows.loc[episode, "client_id"], episode)

    # -- client beside the board ----------------------------------------------------------------------
    def _ensure_charts(self, clinician: str, client_id: str, episode_id: str) -> bool:
        """Build the client charts on the first "Open charts", already on that client (their first drawing
        is that episode's). Returns False when they existed already."""
        if self.selection is not None:
            return False
        self.selection = ClientSelection(service=self.service, clinician=clinician)
        self.selection.open(client_id, episode_id)
        self.charts = ClientCharts(selection=self.selection, follow=False)  # swapped with the summary
        self.summary.object = episode_summary(self.selection.episode_info, self.selection.story)
        self.client_body.objects = [self.summary, self.charts]
        self.selection.param.watch(self._follow, ["busy"])
        return True

    def _follow(self, event) -> None:
        """Loading indicator while the selection builds the story; then summary and charts swap as one.
        Both go through the event loop, in the order the cascades ran: set from a server thread, the
        indicator could reach the browser after the swap that ends it and spin for ever."""
        if event.new:
            pn.state.execute(partial(setattr, self.client_body, "loading", True))
            return
        pn.state.execute(partial(self._show_client, self.selection.episode_info, self.selection.story))

    def _show_client(self, info: dict, story) -> None:
        with model_graph.batch(), pn.io.hold():  # as ClientPage._show
            self.summary.object = episode_summary(info, story)
            self.charts.show(story)
            self.client_body.loading = False

    def open_client(self, client_id: str, episode_id: str) -> None:
        """Open a client's charts beside the board (or move them to another client). Served, the loading
        indicator goes to the browser first, on the charts when they are open, else on the board."""
        # The ticket is taken when the open is asked for: "Back to the agenda" (or a later open) asked for
        # before this work runs overtakes it, even when the work only runs after it.
        ticket = self._latest = next(self._tickets)
        work = partial(self._open_client, client_id, episode_id, ticket)
        if self.defer(work):
            (self.client_body if self.client_view.visible else self.board_column).loading = True
        else:
            work()

    def _open_client(self, client_id: str, episode_id: str, ticket: int) -> None:
        try:
            self._open_client_now(client_id, episode_id, ticket)
        finally:
            self.board_column.loading = False
            if self.selection is None or not self.selection.busy:
                self.client_body.loading = False  # nothing to swap in (same client, refused, overtaken)

    def _open_client_now(self, client_id: str, episode_id: str, ticket: int) -> None:
        if ticket != self._latest:
            return  # overtaken before it ran: another client or the agenda was asked for meanwhile
        # Recorded before it is shown, once while it stays open; refused when the trail cannot be written.
        sel, db = self.selection, self.service.db.path
        try:
            if not (self.client_view.visible and sel is not None and sel.episode == episode_id):
                audit.record("view_client", db=db, client=client_id, episode=episode_id, detail="meeting")
        except audit.AuditError as exc:
            self.message.object, self.message.visible = html_text(str(exc)), True
            return
        row = self.state.agenda.set_index("episode_id") if self.state.agenda is not None else None
        clinician = row.loc[episode_id, "supervisee"] if row is not None and episode_id in row.index else None
        if ticket != self._latest:
            return  # another client or the agenda was asked for meanwhile
        if not self._ensure_charts(clinician, client_id, episode_id) and (
            self.selection.episode != episode_id or self.selection.client != client_id
        ):
            self.selection.open(client_id, episode_id)  # summary and charts swap when the story is built
        if ticket != self._latest:
            return  # overtaken while the story was built: "Back to the agenda" must not be undone
        if not self.client_view.visible:
            self.client_view.visible = True
            self.board_column.styles = {"flex": "0 0 46%", "max-width": "46%"}
            self.board.compact = True
            if self._page is not None:
                self._page.sidebar_open = False  # room for the charts beside the board

    def _show_agenda(self, *events):
        self._latest = next(self._tickets)  # an open still building will not show itself afterwards
        self.client_view.visible = False
        self.board_column.styles = {}
        self.board.compact = False
        if self._page is not None:
            self._page.sidebar_open = True

    # -- pack -----------------------------------------------------------------------------------------
    def _write_pack(self, folder: Path, button=None) -> Path:
        from alliance.pack import build_pack

        path = folder / "meeting-pack.html"
        button = button or self.download_html
        label = button.label

        def progress(done: int, total: int, message: str) -> None:  # the button says how far it is
            n = total - 1  # the clients (the last step writes the file)
            button.label = label if done >= total else f"Building the pack… {min(done, n)} of {n} clients"

        try:
            build_pack(
                self.service,
                self.state.supervisor,
                self.state.meeting_date,
                path,
                agenda=self.state.agenda,
                progress=progress,
            )
        finally:
            button.label = label
        return path

    # A pack of 25 clients takes several seconds. It is built on a thread of its own (its charts are on a
    # document of their own), so that the server process keeps answering everyone else meanwhile.
    async def _pack_html_aside(self):
        return await asyncio.get_running_loop().run_in_executor(None, self._pack_html)

    async def _pack_pdf_aside(self):
        return await asyncio.get_running_loop().run_in_executor(None, self._pack_pdf)

    def _pack_html(self):
        self.download_html.filename = (
            f"meeting-pack-{file_name(self.state.supervisor)}-{self.state.meeting_date}.html"
        )
        with tempfile.TemporaryDirectory() as tmp:
            try:
                return io.BytesIO(self._write_pack(Path(tmp)).read_bytes())
            except audit.AuditError as exc:  # the pack is recorded before it is written, or not written
                self.message.object, self.message.visible = html_text(str(exc)), True
                return None

    def _pack_pdf(self):
        from alliance.pack import print_pdf

        self.download_pdf.filename = (
            f"meeting-pack-{file_name(self.state.supervisor)}-{self.state.meeting_date}.pdf"
        )
        with tempfile.TemporaryDirectory() as tmp:
            try:
                html = self._write_pack(Path(tmp), self.download_pdf)
            except audit.AuditError as exc:
                self.message.object, self.message.visible = html_text(str(exc)), True
                return None
            try:
                pdf = print_pdf(html, Path(tmp) / "meeting-pack.pdf")
            except RuntimeError as exc:
                self.message.object, self.message.visible = f"No PDF: {html_text(str(exc))}", True
                return None
            return io.BytesIO(pdf.read_bytes())

    # -- layout ---------------------------------------------------------------------------------------
    def _main(self):
        from alliance.views.meeting import MEETING_HELP

        help_text = pmui.Accordion(
            ("How to read this page", pn.pane.Markdown(MEETING_HELP, sizing_mode="stretch_width")),
            sizing_mode="stretch_width",
            active=[],
        )
        return pn.Column(
            self.message,
            self.store_alert,
            self.title,
            self.since,
            self.nav,
            pn.Row(self.board_column, self.client_view, sizing_mode="stretch_width", styles=FULL_HEIGHT),
            help_text,
            sizing_mode="stretch_width",
        )

    def __panel__(self):
        self.board.keys = False  # inline in Jupyter, j and k belong to the notebook: the buttons move
        return pn.Column(self.widgets, self._main(), self.scope_note, sizing_mode="stretch_width")

    def page(self) -> pmui.Page:
        """The served page: ``?supervisor=…`` opens that supervisor's agenda; the URL follows the choice."""
        args = pn.state.session_args or {}
        supervisor = (args.get("supervisor") or [b""])[0].decode()
        if supervisor in self.state.param.supervisor.objects:
            self.state.supervisor = supervisor
        if pn.state.location is not None:
            pn.state.location.sync(self.state, {"supervisor": "supervisor"})
        self._page = served_page(
            title="Alliance · Supervision meeting",
            header=[*access_header(self.service.scope), data_status(self.service)],
            sidebar=[self.widgets, self.scope_note],
            main=[self._main()],
        )
        return self._page


def meeting_page(path=None, scope: Scope | None = None) -> MeetingPage | ProblemView:
    """The meeting page for the configured database, or a clear message about what is wrong."""
    return build_page(MeetingPage, path, scope)


__all__ = ["MeetingPage", "MeetingState", "meeting_page"]
