"""The meeting pack: one self-contained HTML file (Bokeh and Panel resources inline, the charts embedded, no
server needed) with the agenda and, per agenda client, the summary and the client charts; and a PDF of the
same printed by headless Chromium where it is installed (each client starts on a new page)."""

from __future__ import annotations

import base64
import datetime as dt
import html
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import panel as pn
from bokeh.resources import INLINE

from alliance import style
from alliance.agenda import meeting_agenda, team_clinicians
from alliance.flags import legend as reason_legend
from alliance.inert import html_text
from alliance.marks import MarkStore
from alliance.pages import episode_summary
from alliance.service import Service
from alliance.state import ClientSelection, service_metrics
from alliance.views.client import ClientCharts

CHROMIUM = Path(os.environ.get("ALLIANCE_CHROMIUM", "/usr/bin/chromium"))

# Favicon links of the page template: the only remote references a saved page keeps.
_REMOTE_LINK = re.compile(r'<link\b[^>]*\bhref="https?://[^"]*"[^>]*>\s*')

# Panel's own style sheets, referenced by URL from the page's models: inlined as data URLs from the install.
_PANEL_CDN = re.compile(r"https://cdn\.holoviz\.org/panel/[^/]+/dist/([\w./-]+\.css)(\?[\w.=&]*)?")


def _inline_panel_file(match: re.Match) -> str:
    local = Path(pn.__file__).parent / "dist" / match.group(1)
    if not local.is_file():
        return match.group(0)
    return "data:text/css;base64," + base64.b64encode(local.read_bytes()).decode("ascii")


# Each client section starts a printed page (the rule sits in the section's own shadow root).
PAGE_BREAK = ":host { break-before: page; page-break-before: always; }"


def _day(d) -> str:
    return "—" if d is None or pd.isna(d) else f"{pd.Timestamp(d):%d %b %Y}"


def agenda_html(agenda: pd.DataFrame) -> str:
    """The agenda as an HTML table grouped per supervisee (plain words, no colour alone). Codes, reasons and
    action notes are escaped (``html_text``)."""
    if agenda.empty:
        return "<p>No open episode of this team has a reason to be discussed.</p>"
    parts = []
    for clinician, rows in agenda.groupby("supervisee", sort=False):
        parts.append(f"<h3>Supervisee {html_text(clinician)}</h3><ol>")
        for r in rows.itertuples():
            reasons = "".join(
                f"<li><b>{html_text(it['label'])}</b>: {html_text(it['words'])} ({_day(it['date'])})</li>"
                for it in r.reasons
            )
            discussed = (
                f"<br><i>Last discussed {_day(r.last_discussed)}"
                + (f": {html_text(r.last_action)}" if r.last_action else "")
                + (" — not worse since" if r.discussed_not_worse else "")
                + "</i>"
                if not pd.isna(r.last_discussed)
                else ""
            )
            parts.append(
                f'<li><a href="#{html_text(r.episode_id)}">Client {html_text(r.client_id)} · episode '
                f"{html_text(r.episode_id)}</a> (agenda #{r.rank}){discussed}<ul>{reasons}</ul></li>"
            )
        parts.append("</ol>")
    return "".join(parts)


def client_section(service: Service, row) -> tuple[pn.Column, ClientSelection]:
    """One agenda client's summary, reasons and charts (the charts of the client page)."""
    selection = ClientSelection(service=service)
    selection.open(row.client_id, row.episode_id)
    charts = ClientCharts(selection=selection)
    reasons = "\n".join(
        f"- **{html_text(it['label'])}**: {html_text(it['words'])} ({_day(it['date'])})" for it in row.reasons
    )
    section = pn.Column(
        pn.pane.HTML(f'<a id="{html_text(row.episode_id)}"></a>', height=0, margin=0),
        pn.pane.Markdown(
            episode_summary(selection.episode_info, selection.story), sizing_mode="stretch_width"
        ),
        pn.pane.Markdown(f"**Why on the agenda (#{row.rank})**\n\n{reasons}", sizing_mode="stretch_width"),
        charts,
        sizing_mode="stretch_width",
        stylesheets=[PAGE_BREAK],
        css_classes=["pack-client"],
        name=f"pack-client-{row.episode_id}",
    )
    return section, selection


def build_pack(
    service: Service,
    supervisor_id: str,
    meeting_date: dt.date,
    out: str | os.PathLike,
    marks: MarkStore | None = None,
    progress: bool = True,
    agenda: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Write the meeting pack HTML to ``out``; returns the agenda it holds."""
    from tqdm import tqdm

    style.apply_defaults()
    pn.extension()
    metrics = service_metrics(service).for_scope(service)
    if agenda is None:
        team = team_clinicians(service, supervisor_id)
        scoped = Service(service.db, service.scope.restrict(*team))
        ids = scoped.scoped_episodes()["episode_id"].tolist()
        store = marks or MarkStore.beside(service.db.path)
        agenda = meeting_agenda(metrics, supervisor_id, meeting_date, store.marks_for(ids))
    legend = reason_legend()
    head = pn.pane.HTML(
        f"<h1>Supervision meeting · {html_text(supervisor_id)} · {meeting_date:%d %b %Y}</h1>"
        f"<p>{len(agenda)} client(s) on the agenda, strongest reason first ({html.escape(legend)}); "
        "clients discussed and not worse since move down. Data as of "
        f"{metrics.as_of:%d %b %Y}. {html_text(service.scope.describe())}.</p>" + agenda_html(agenda),
        sizing_mode="stretch_width",
        name="pack-agenda",
    )
    sections = [head]
    for row in tqdm(list(agenda.itertuples()), desc="meeting pack", unit="client", disable=not progress):
        section, _ = client_section(service, row)
        sections.append(section)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # No Material design wrapper: its components load their bundle from a CDN, and the pack must work offline.
    with pn.config.set(design=None):
        pn.Column(*sections, sizing_mode="stretch_width").save(
            str(out), embed=True, resources=INLINE, title=f"Meeting pack {supervisor_id} {meeting_date}"
        )
    text = _REMOTE_LINK.sub("", out.read_text(encoding="utf-8"))
    out.write_text(_PANEL_CDN.sub(_inline_panel_file, text), encoding="utf-8")
    return agenda


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
