"""The meeting pack: one self-contained HTML file with the agenda and, per agenda client, what the client
page shows — the summary, the reasons it is on the agenda, what the episode lacks, the client charts and the
methods in force — and a PDF of the same printed by headless Chromium where it is installed (each client
starts on a new page).

Self-contained means it opens from a file with no network: the text is plain HTML, the charts are one Bokeh
document embedded in the page with BokehJS inline, and nothing else is loaded. The charts are the client
page's (``alliance.views.client.ChartLayers``) drawn once per client as static charts from the episode's
story: each client's charts on their own axes (the outcome on its instrument's scale, the sessions of that
episode), no toolbar, no wheel zoom to catch the reader's scrolling; hover still tells each point's story.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from bokeh.core.templates import FILE, MACROS, get_env
from bokeh.document import Document
from bokeh.embed.elements import html_page_for_render_items
from bokeh.embed.util import RenderItem
from bokeh.resources import Resources
from bokeh.util.serialization import make_globally_unique_id
from markdown_it import MarkdownIt

from alliance import audit
from alliance.agenda import meeting_agenda, team_clinicians
from alliance.flags import legend as reason_legend
from alliance.inert import html_text
from alliance.marks import MarkStore
from alliance.service import Service
from alliance.state import ClientSelection, service_metrics

CHROMIUM = Path(os.environ.get("ALLIANCE_CHROMIUM", "/usr/bin/chromium"))

#: ``progress(done, total, message)``: called as the pack is built — once before the first client, after each
#: client, and before and after writing the file (``done == total`` at the end).
Progress = Callable[[int, int, str], None]

# Markdown as the client page renders it (Panel's Markdown pane: markdown-it, GFM-like, raw HTML allowed —
# every value from the data is escaped by ``html_text`` before it gets here).
_MARKDOWN = MarkdownIt("gfm-like").enable("strikethrough").enable("table")

_CSS = """
body { font-family: Roboto, "Helvetica Neue", Arial, sans-serif; color: #222; margin: 0 auto;
       padding: 16px 24px; max-width: 1280px; line-height: 1.4; }
h1 { font-size: 1.6em; margin: 0.2em 0; }
h2 { font-size: 1.25em; margin: 1.2em 0 0.3em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.2em; margin: 0.2em 0 0.4em; }
h4 { font-size: 1em; margin: 0.8em 0 0.2em; }
a { color: #0b5394; }
section.client { break-before: page; page-break-before: always; padding-top: 8px; }
.agenda li { margin-bottom: 0.4em; }
.lacks { border-left: 4px solid #E69F00; background: #fff6e5; padding: 4px 12px; margin: 8px 0; }
.methods { font-size: 0.85em; color: #444; }
.charts { margin: 8px 0; }
.meta { color: #555; }
@media print { body { max-width: none; padding: 0; } a { color: inherit; text-decoration: none; } }
"""

# Bokeh's file template with the pack's text around the charts: one embedded document, one root per client.
_TEMPLATE = get_env().from_string(
    """{% extends "file.html.jinja" %}
{% block postamble %}<style>{{ css }}</style>{% endblock %}
{% block contents %}
{{ head }}
{% for doc in docs %}{% for root in doc.roots %}
<section class="client" id="{{ sections[loop.index0].anchor }}">
{{ sections[loop.index0].before }}
<div class="charts">{{ embed(root) }}</div>
{{ sections[loop.index0].after }}
</section>
{% endfor %}{% endfor %}
{% endblock %}"""
)


def _day(d) -> str:
    return "—" if d is None or pd.isna(d) else f"{pd.Timestamp(d).day} {pd.Timestamp(d):%b %Y}"


def _get(row, name, default=None):
    value = getattr(row, name, default)
    missing = value is None or (not isinstance(value, (list, dict, str)) and pd.isna(value))
    return default if missing else value


def _reasons(row) -> str:
    """The reasons of an agenda row as an HTML list (each reason's words carry the date it arose)."""
    items = "".join(
        f"<li><b>{html_text(it['label'])}</b>: {html_text(it['words'])}</li>" for it in row.reasons
    )
    return f"<ul>{items}</ul>"


def _discussed(row) -> str:
    """Last time's discussion, its action and follow-up, and a mark made at this meeting (HTML, escaped)."""
    parts = []
    last = _get(row, "last_discussed")
    if last is not None:
        text = f"Last discussed {_day(last)}"
        action = _get(row, "last_action")
        if action:
            text += f": {html_text(action)}"
        followup = _get(row, "followup")
        if followup:
            text += f" (follow-up: {html_text(followup)})"
        if _get(row, "discussed_not_worse", False):
            text += " — not worse since"
        parts.append(text)
    if _get(row, "discussed_today", False):
        today = "Discussed at this meeting"
        action = _get(row, "today_action")
        parts.append(today + (f": {html_text(action)}" if action else ""))
    return "".join(f'<p class="meta"><i>{p}</i></p>' for p in parts)


def agenda_html(agenda: pd.DataFrame) -> str:
    """The agenda as HTML lists grouped per supervisee (plain words, no colour alone). Codes, reasons and
    action notes are escaped (``html_text``)."""
    if agenda.empty:
        return "<p>No open episode of this team has a reason to be discussed.</p>"
    parts = ['<div class="agenda">']
    for clinician, rows in agenda.groupby("supervisee", sort=False):
        parts.append(f"<h2>Supervisee {html_text(clinician)}</h2><ol>")
        for r in rows.itertuples():
            link = f"Client {html_text(r.client_id)} · episode {html_text(r.episode_id)}"
            parts.append(
                f'<li value="{int(r.rank)}"><a href="#{html_text(r.episode_id)}">{link}</a>'
                f"{_reasons(r)}{_discussed(r)}</li>"
            )
        parts.append("</ol>")
    parts.append("</div>")
    return "".join(parts)


def client_text(info: dict, story, notes: list, row) -> tuple[str, str]:
    """The HTML before and after one client's charts, as on the client page: summary, why on the agenda,
    what the episode lacks; the methods in force after the charts."""
    from alliance.pages import episode_summary

    before = [_MARKDOWN.render(episode_summary(info, story))]
    before.append(
        f"<h4>Why on the agenda (#{int(row.rank)} for {html_text(row.supervisee)})</h4>"
        + _reasons(row)
        + _discussed(row)
    )
    if notes:
        items = "".join(f"<li>{html_text(n)}</li>" for n in notes)
        before.append(f'<div class="lacks"><b>What this episode lacks</b><ul>{items}</ul></div>')
    methods = story.methods if story else []
    after = (
        '<div class="methods"><b>Methods</b><ul>'
        + "".join(f"<li>{html_text(m)}</li>" for m in methods)
        + "</ul></div>"
        if methods
        else ""
    )
    return "".join(before), after


def _reporter(progress: bool | Progress | None, total: int) -> Progress:
    if callable(progress):
        return progress
    if not progress:
        return lambda done, total, message: None
    from tqdm import tqdm

    bar = tqdm(total=total, desc="meeting pack", unit="step")

    def report(done: int, total: int, message: str) -> None:
        bar.n = done
        bar.set_postfix_str(message, refresh=True)
        if done >= total:
            bar.close()

    return report


def build_pack(
    service: Service,
    supervisor_id: str,
    meeting_date: dt.date,
    out: str | os.PathLike,
    marks: MarkStore | None = None,
    progress: bool | Progress | None = True,
    agenda: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Write the meeting pack HTML to ``out``; returns the agenda it holds.

    ``progress``: True for a progress bar on the terminal, False for none, or a function
    ``progress(done, total, message)`` (the meeting page's pack button).
    """
    from alliance.views.client import PrintedCharts

    metrics = service_metrics(service).for_scope(service)
    if agenda is None:
        team = team_clinicians(service, supervisor_id)
        scoped = Service(service.db, service.scope.restrict(*team))
        ids = scoped.scoped_episodes()["episode_id"].tolist()
        store = marks or MarkStore.beside(service.db.path)
        agenda = meeting_agenda(metrics, supervisor_id, meeting_date, store.marks_for(ids))
    # Recorded before it is written: an AuditError (the trail cannot be written) means no pack.
    audit.record(
        "export_pack",
        db=service.db.path,
        client=list(agenda["client_id"]) if "client_id" in agenda else [],
        episode=list(agenda["episode_id"]) if "episode_id" in agenda else [],
        detail=f"meeting pack for supervisor {supervisor_id}, meeting {meeting_date}: "
        f"{len(agenda)} client(s), {Path(out).name}",
    )
    n = len(agenda)
    total = n + 1  # each client, then writing the file
    report = _reporter(progress, total)
    report(0, total, f"{n} client(s) to draw")
    head = (
        f"<h1>Supervision meeting · {html_text(supervisor_id)} · {_day(meeting_date)}</h1>"
        f"<p>{n} client(s) on the agenda, ranked per supervisee, strongest reason first "
        f"({html_text(reason_legend())}); clients discussed and not worse since move down. Data as of "
        f"{_day(metrics.as_of)}. {html_text(service.scope.describe())}.</p>" + agenda_html(agenda)
    )
    # One selection opens each client as the client page does (same story, summary and notes); one set of
    # printed charts draws each story in turn, and each drawing is kept as JSON before the next.
    # (Started on the first client's clinician: the client page's landing episode is not looked for.)
    selection = ClientSelection(service=service, clinician=agenda["supervisee"].iloc[0]) if n else None
    charts = PrintedCharts()
    document = Document()
    roots, sections = [], []
    for i, row in enumerate(agenda.itertuples(), start=1):
        selection.open(row.client_id, row.episode_id)
        info, story, notes = selection.episode_info, selection.story, list(selection.notes)
        if info.get("episode_id") != row.episode_id or story is None:
            raise RuntimeError(f"episode {row.episode_id} of the agenda cannot be opened")
        with document.models.freeze():
            grid = charts.draw(story)
            grid.name = f"pack-client-{row.episode_id}"
            if grid.document is None:
                document.add_root(grid)
        doc_json = document.to_json(deferred=False)
        roots.append(_renamed(doc_json["roots"][0], f"c{i}-"))
        before, after = client_text(info, story, notes, row)
        sections.append({"anchor": html_text(row.episode_id), "before": before, "after": after})
        report(i, total, f"client {i} of {n} drawn")
    report(n, total, "writing the file")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    title = f"Meeting pack {supervisor_id} {meeting_date}"
    out.write_text(_page(doc_json if n else None, roots, sections, head, title), encoding="utf-8")
    report(total, total, "done")
    return agenda


# A model's id in serialized Bokeh JSON (in a string value a quote is escaped, so this never matches data).
_MODEL_ID = re.compile(r'"id": "(p\d+)"')


def _renamed(rep, prefix: str):
    """A serialized Bokeh model tree with every model id prefixed: the drawings of successive clients come
    from the same models, and become distinct models of one document."""
    return json.loads(_MODEL_ID.sub(rf'"id": "{prefix}\1"', json.dumps(rep)))


class _BokehOnly(Resources):
    """BokehJS alone, inline. The charts use Bokeh's own models only; the files other imported libraries
    declare for their models (Panel's module shims, by a relative URL) are neither needed nor present."""

    def _collect_external_resources(self, resource_attr: str) -> list[str]:
        return []


@dataclass(frozen=True)
class _Root:
    """What Bokeh's page renderer reads of a root model (its id and name)."""

    id: str
    name: str
    tags: tuple = ()


def _page(doc_json: dict | None, roots: list, sections: list, head: str, title: str) -> str:
    """The pack's HTML: one Bokeh document holding every client's charts (one root each), BokehJS inline."""
    if not roots:  # nothing to draw: the agenda alone
        return _TEMPLATE.render(
            title=title, css=_CSS, head=head, docs=[], sections=[], macros=MACROS, base=FILE, plot_script=""
        )
    resources = _BokehOnly(mode="inline", components=["bokeh", "bokeh-gl"])
    bundle = (resources.render_js(), resources.render_css())
    render_item = RenderItem(
        docid=make_globally_unique_id(),
        roots={
            _Root(r["id"], s["anchor"]): make_globally_unique_id()
            for r, s in zip(roots, sections, strict=True)
        },
    )
    return html_page_for_render_items(
        bundle,
        {render_item.docid: {**doc_json, "roots": roots, "title": title}},
        [render_item],
        title,
        template=_TEMPLATE,
        template_variables={"css": _CSS, "head": head, "sections": sections},
    )


def print_pdf(html_path: str | os.PathLike, pdf_path: str | os.PathLike, timeout: float = 180) -> Path:
    """Print the pack with headless Chromium (``--print-to-pdf``); RuntimeError when it cannot."""
    chromium = CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")
    if not chromium:
        raise RuntimeError(f"Chromium not found at {CHROMIUM} (set ALLIANCE_CHROMIUM)")
    pdf_path = Path(pdf_path).resolve()
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                str(chromium),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--run-all-compositor-stages-before-draw",
                "--virtual-time-budget=30000",
                "--no-pdf-header-footer",
                f"--print-to-pdf={pdf_path}",
                Path(html_path).resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if not pdf_path.exists() or pdf_path.stat().st_size == 0:
        raise RuntimeError(f"Chromium did not print {pdf_path}: {proc.stderr[-2000:]}")
    return pdf_path
