"""The meeting page's triage board: per supervisee a header row, then one compact row per agenda client —
rank, status chip (colour, shape and words), the strongest reason with the date it arose, a sparkline of
outcome and alliance on one normalised axis with the rupture and sudden-change marks, and sessions since last
discussed — with the full reasons, last time's action and its follow-up, and the action-note field of the
client in focus. Keyboard: j / ↓ next client, k / ↑ previous, o opens the charts, Enter shows or hides the
reasons.

The board is one ``JSComponent``: its HTML is built here, every string from the data or a user passed
through ``alliance.inert.html_text``, and the browser only moves the focus, shows details and sends the
clicks back (``AgendaBoard.on_action``). One model for the whole agenda keeps the page light at 20–30 rows.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import pandas as pd
import param
from panel.custom import JSComponent

from alliance import style
from alliance.agenda import said
from alliance.flags import agenda_help
from alliance.inert import html_text, link
from alliance.marks import MAX_NOTE

OUTCOME_COLOUR = style.CONSTRUCT_COLOURS["outcome"]
ALLIANCE_COLOUR = style.CONSTRUCT_COLOURS["alliance"]
LOSS_COLOUR = "#D55E00"
GAIN_COLOUR = "#009E73"

#: The keys the board answers to, for the page's help text.
KEYS = "j or ↓ next client · k or ↑ previous · Enter shows or hides the reasons · o opens the charts"

MEETING_HELP = f"""
**The agenda.** For the chosen supervisor and meeting date, per supervisee, the open episodes with a reason to
discuss them, strongest reason first (docs/methods.md §11): {agenda_help()}. Ranks restart at 1 for each
supervisee. Each supervisee's header gives their open caseload, how many are on the agenda (flagged) and how
that changed since the last meeting, and how complete the ratings are (the share of rated sessions of open
episodes at which both an outcome and an alliance measure were rated). A meeting date in the past shows the
data as they stood on that day.

**One row per client.** Rank; the outcome status as colour, shape and words (▲ not on track, ◆ at risk,
● on track, ■ functional); the strongest reason in a few words with the date it arose ("+2 more": further
reasons); a sparkline of the primary outcome (solid blue) and the alliance (dashed pink) by session on one
axis, each from its instrument's worst score (bottom) to its best (top), with ✕ at a rupture (red: not
repaired or still open; green: repaired) and ▼ / ▲ at a candidate sudden loss / gain; and the sessions since
the client was last discussed. The client in focus (highlighted) shows every reason in full, each with the
session and the date it arose, and the action-note field. Keys: {KEYS}; or the Previous / Next buttons.
*Open charts* shows the client page's charts beside the agenda, which stays in view; with the charts open,
next and previous clients bring their charts.

**Discussed.** Mark a client as discussed with an optional short action (what to try, e.g. "ask for feedback
on goals") — never clinical notes about the client. The row stays where it is, marked, until the next
meeting (*Undo* takes a mark back); at the next meeting a client discussed and not worse since moves down.
Last time's action is shown beside the client with *done* / *not done* to record its follow-up. Marks are
kept in a small file beside the ratings database (which stays read-only).

**Since the last meeting** (the last date this supervisor marked a client discussed): reasons that are new,
reasons that have resolved (a move from red to yellow resolves the red), and clients who got worse after
being discussed (a reason arose after the meeting that discussed them).

**Meeting pack.** One self-contained HTML file (charts included, opens without a server or network) with the
agenda and each agenda client's charts and summary; a PDF of the same when Chromium is available. From the
command line: `alliance pack --supervisor CODE --date YYYY-MM-DD --out pack.html [--pdf]`.
"""


def status_chip(status, words) -> str:
    """The outcome status as colour, shape and words (never colour alone)."""
    status = status if isinstance(status, str) else None
    colour = style.STATUS_COLOURS.get(status, "#999999")
    symbol = style.STATUS_SYMBOLS.get(status, "■")
    text = words if isinstance(words, str) and words else "no outcome status"
    return (
        f'<span class="chip" style="background:{colour}">'
        f'<span aria-hidden="true">{symbol}</span> {html_text(text)}</span>'
    )


def sparkline_svg(course: dict | None, width: int = 150, height: int = 34) -> str:
    """An inline SVG of one episode: the primary outcome (blue, solid) and the alliance (pink, dashed) on one
    axis from each instrument's worst score (bottom) to its best (top), by session; ✕ at a rupture (red when
    not repaired or still open, green when repaired), ▼ at a sudden loss and ▲ at a sudden gain, on the
    outcome line. Only numbers are drawn; the title names the instruments, escaped."""
    course = course or {}
    outcome, alliance = course.get("outcome") or [], course.get("alliance") or []
    sessions = [s for s, _ in outcome] + [s for s, _ in alliance]
    if not sessions:
        return (
            f'<svg class="spark" width="{width}" height="{height}" role="img" aria-label="no ratings"></svg>'
        )
    pad = 4
    lo, hi = min(sessions), max(sessions)
    span = max(hi - lo, 1)

    def x(s) -> float:
        return pad + (s - lo) / span * (width - 2 * pad)

    def y(v) -> float:
        return pad + (1 - float(v)) * (height - 2 * pad)

    def path(points) -> str:
        return " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in points)

    parts = [
        f'<line x1="{pad}" x2="{width - pad}" y1="{height / 2:.1f}" y2="{height / 2:.1f}" class="mid"/>',
    ]
    if len(alliance) > 1:
        parts.append(
            f'<polyline points="{path(alliance)}" fill="none" stroke="{ALLIANCE_COLOUR}" '
            'stroke-width="1.6" stroke-dasharray="3 2"/>'
        )
    if len(outcome) > 1:
        parts.append(
            f'<polyline points="{path(outcome)}" fill="none" stroke="{OUTCOME_COLOUR}" stroke-width="2"/>'
        )
    for s, v in outcome[-1:]:
        parts.append(f'<circle cx="{x(s):.1f}" cy="{y(v):.1f}" r="2.4" fill="{OUTCOME_COLOUR}"/>')
    for s, v in alliance[-1:]:
        parts.append(f'<circle cx="{x(s):.1f}" cy="{y(v):.1f}" r="2.2" fill="{ALLIANCE_COLOUR}"/>')
    at_alliance = dict(alliance)
    at_outcome = dict(outcome)
    for key, colour in (("ruptures_repaired", GAIN_COLOUR), ("ruptures_open", LOSS_COLOUR)):
        for s in course.get(key) or []:
            cx, cy, r = x(s), y(at_alliance.get(s, 0.5)), 3.2
            parts.append(
                f'<path d="M{cx - r:.1f},{cy - r:.1f}L{cx + r:.1f},{cy + r:.1f}M{cx - r:.1f},{cy + r:.1f}'
                f'L{cx + r:.1f},{cy - r:.1f}" stroke="{colour}" stroke-width="2" class="mark-{key}"/>'
            )
    for key, colour, up in (("losses", LOSS_COLOUR, False), ("gains", GAIN_COLOUR, True)):
        for s in course.get(key) or []:
            cx, cy, r = x(s), y(at_outcome.get(s, 0.5)), 3.6
            tip = cy - r if up else cy + r
            base = cy + r * 0.6 if up else cy - r * 0.6
            parts.append(
                f'<path d="M{cx:.1f},{tip:.1f}L{cx - r:.1f},{base:.1f}L{cx + r:.1f},{base:.1f}Z" '
                f'fill="{colour}" class="mark-{key}"/>'
            )
    n_rup = len(course.get("ruptures_open") or []) + len(course.get("ruptures_repaired") or [])
    n_sud = len(course.get("losses") or []) + len(course.get("gains") or [])
    label = (
        f"{course.get('outcome_code') or 'outcome'} (solid) and {course.get('alliance_code') or 'alliance'} "
        f"(dashed), sessions {lo}–{hi}, worst at the bottom, best at the top; "
        f"{n_rup} rupture(s), {n_sud} sudden change(s)"
    )
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{html.escape(label, quote=True)}"><title>{html_text(label)}</title>'
        f"{''.join(parts)}</svg>"
    )


def _n(n: int, noun: str) -> str:
    return f"{int(n)} {noun}{'' if int(n) == 1 else 's'}"


def supervisee_header(h, previous, year: int) -> str:
    """'Supervisee CL07 · 4 open · 3 flagged (2 at the last meeting, 16 Nov) · ratings complete 96 %'."""
    parts = [
        f'<span class="who">Supervisee {html_text(h.supervisee)}</span>',
        f"{int(h.open_episodes)} open",
        f"<b>{int(h.flagged)} flagged</b>",
    ]
    if previous is not None and h.flagged_then is not None and not pd.isna(h.flagged_then):
        diff = int(h.flagged) - int(h.flagged_then)
        change = "no change" if diff == 0 else f"{diff:+d}"
        parts[-1] += f" ({change} since {said(previous, year)}: {int(h.flagged_then)} then)"
    if h.sessions_rated:
        parts.append(
            f"ratings complete {h.completeness:.0%} "
            f'<span class="muted">(both measures at {h.sessions_complete} of {h.sessions_rated} '
            "sessions)</span>"
        )
    else:
        parts.append("no rated sessions")
    return " · ".join(parts)


def _since_text(r, year: int) -> str:
    if pd.isna(r.last_discussed):
        return "" if r.discussed_today else "not discussed yet"
    n = r.sessions_since_discussed
    n = 0 if n is None or pd.isna(n) else int(n)
    return f"{_n(n, 'session')} since discussed {said(r.last_discussed, year)}"


def _last_time(r, year: int) -> str:
    """Last time's action with its follow-up buttons (a client discussed at an earlier meeting)."""
    if pd.isna(r.last_discussed):
        return ""
    when = said(r.last_discussed, year)
    verdict = "<b>not worse since</b>"
    if not r.discussed_not_worse:
        verdict = '<b class="worse">a reason has arisen since</b>'
    if not r.last_action:
        return f'<div class="last">Discussed {when}, no action noted · {verdict}</div>'
    buttons = "".join(
        f'<button class="fu{" on" if r.followup == v else ""}" data-action="followup" data-value="{v}" '
        f'aria-pressed="{"true" if r.followup == v else "false"}">{v}</button>'
        for v in ("done", "not done")
    )
    return (
        f'<div class="last">Action from {when}: <q class="note">{html_text(r.last_action)}</q> '
        f'<span class="fu-group" role="group" aria-label="Follow-up">{buttons}</span> · {verdict}</div>'
    )


def agenda_item(r, course: dict | None, year: int) -> str:
    """One agenda client: the compact row, last time's action, and the details (full reasons, note)."""
    eid = html_text(r.episode_id)
    # The whole client page in a tab of its own (the charts also open beside the agenda).
    page = link(
        "client", {"client": r.client_id, "episode": r.episode_id}, "Open the client page in a new tab"
    )
    page = '<div class="page-link">' + page.replace("<a ", '<a target="_blank" rel="noopener" ', 1) + "</div>"
    # Its name for a screen reader (and a plain-text reading of the page): rank, client, episode.
    label = html_text(f"#{int(r.rank)} · Client {r.client_id} · episode {r.episode_id}")
    more = f'<span class="more">+{int(r.n_reasons) - 1} more</span>' if int(r.n_reasons) > 1 else ""
    reasons = "".join(
        f"<li><b>{html_text(it['label'])}</b>: {html_text(it['words'])}</li>" for it in r.reasons
    )
    if r.discussed_today:
        state = '<span class="done-chip">✓ Discussed today</span>'
        action = '<button class="act" data-action="undo" title="Not discussed after all">Undo</button>'
        today = (
            '<div class="today-note">Action noted today: '
            f'<q class="note">{html_text(r.today_action)}</q></div>'
            if r.today_action
            else ""
        )
        note = ""
    else:
        state = ""
        action = '<button class="act primary" data-action="discussed">Discussed</button>'
        today = ""
        note = (
            '<label class="note-field">Action note '
            f'<input type="text" data-role="note" maxlength="{MAX_NOTE}" '
            f'aria-label="Action note" placeholder="optional short action, up to {MAX_NOTE} characters">'
            "</label>"
        )
    return (
        f'<div class="item{" discussed" if r.discussed_today else ""}" data-episode="{eid}" '
        f'role="listitem" aria-label="{label}">'
        f'<div class="line"><span class="rank">{int(r.rank)}</span>{status_chip(r.status, r.status_words)}'
        f'<span class="what"><span class="headline">{html_text(r.headline)}</span> {more}'
        f'<span class="client">Client {html_text(r.client_id)} · episode {eid}</span></span>'
        f"{sparkline_svg(course)}"
        f'<span class="since">{_since_text(r, year)}{state}</span>'
        '<span class="buttons"><button class="act" data-action="open">Open charts</button>'
        f"{action}</span></div>"
        f"{_last_time(r, year)}"
        f'<div class="details"><ul class="reasons">{reasons}</ul>{today}{note}{page}</div>'
        "</div>"
    )


def since_html(since: dict | None, previous, year: int) -> str:
    """'Since the last meeting (16 Nov)': new flags, resolved flags, clients worse after being discussed."""
    if previous is None or since is None:
        return (
            '<div class="since-box muted">No earlier meeting of this supervisor is recorded (a meeting is '
            "recorded when a client is marked discussed): nothing to compare with yet.</div>"
        )

    def listing(frame: pd.DataFrame, empty: str) -> str:
        if frame is None or frame.empty:
            return f'<span class="muted">{empty}</span>'
        items = [
            f"<li>Client {html_text(r.client_id)} ({html_text(r.supervisee)}): {html_text(r.short)}</li>"
            for r in frame.itertuples()
        ]
        return f"<ul>{''.join(items)}</ul>"

    new, resolved, worse = since["new"], since["resolved"], since["worse"]
    return (
        '<div class="since-box">'
        f'<div class="since-title">Since the last meeting ({said(previous, year)})</div>'
        '<div class="since-cols">'
        f"<div><b>{len(new)} new flag{'s' if len(new) != 1 else ''}</b>{listing(new, 'none')}</div>"
        f"<div><b>{len(resolved)} resolved</b>{listing(resolved, 'none')}</div>"
        f"<div><b class='worse'>{len(worse)} worse after being discussed</b>{listing(worse, 'none')}</div>"
        "</div></div>"
    )


def board_html(
    agenda: pd.DataFrame | None, headers: pd.DataFrame | None, courses: dict, previous, year
) -> str:
    """The whole agenda: a header row per supervisee (every supervisee shown, flagged or not), their items."""
    if headers is None or headers.empty:
        return '<div class="empty">This supervisor has no supervisees in your scope.</div>'
    agenda = agenda if agenda is not None else pd.DataFrame()
    order = list(agenda["supervisee"].drop_duplicates()) if len(agenda) else []
    order += [c for c in headers["supervisee"] if c not in order]  # unflagged supervisees last
    heads = headers.set_index("supervisee", drop=False)
    parts = []
    for who in order:
        h = heads.loc[who]
        rows = agenda[agenda["supervisee"] == who] if len(agenda) else agenda
        items = "".join(agenda_item(r, courses.get(r.episode_id), year) for r in rows.itertuples())
        if not items:
            items = '<div class="empty">No open episode of this supervisee needs discussion.</div>'
        parts.append(
            f'<section class="sup"><div class="sup-head">{supervisee_header(h, previous, year)}</div>'
            f'<div role="list">{items}</div></section>'
        )
    return "".join(parts)


class AgendaBoard(JSComponent):
    """The agenda as one browser component: the HTML (built and escaped in Python), the client in focus
    (``focus``, an episode id, synced both ways), and clicks sent back as ``{action, episode, …}``."""

    content = param.String(default="", doc="The board's HTML (every data string escaped).")
    focus = param.String(default="", doc="Episode id of the client in focus.")
    episodes = param.List(default=[], doc="Episode ids in the board's order (next / previous).")
    compact = param.Boolean(default=False, doc="Narrow rows (the charts are open beside the board).")
    keys = param.Boolean(default=True, doc="Answer j / k / arrows / Enter / o (off inline in Jupyter).")

    _esm = """
export function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "board";
  const notes = new Map();  // typed action notes, kept across redraws
  const open = new Set();   // items whose details were opened with Enter or a click
  const closed = new Set(); // the focused item's details closed with Enter

  const items = () => Array.from(root.querySelectorAll(".item"));
  function apply(scroll) {
    for (const it of items()) {
      const ep = it.dataset.episode;
      const focused = ep === model.focus;
      it.classList.toggle("focused", focused);
      it.classList.toggle("expanded", (focused && !closed.has(ep)) || open.has(ep));
      it.setAttribute("aria-current", focused ? "true" : "false");
      if (focused && scroll) it.scrollIntoView({ block: "nearest" });
    }
  }
  function draw() {
    for (const input of root.querySelectorAll("input[data-role=note]")) {
      notes.set(input.closest(".item").dataset.episode, input.value);
    }
    root.innerHTML = model.content;
    for (const input of root.querySelectorAll("input[data-role=note]")) {
      const ep = input.closest(".item").dataset.episode;
      if (notes.has(ep)) input.value = notes.get(ep);
    }
    const shown = items();
    if (shown.length && !shown.some((it) => it.dataset.episode === model.focus)) {
      setFocus(shown[0].dataset.episode);  // its client left the board (another supervisor, say)
    }
    apply(false);
  }
  function move(step) {
    const eps = model.episodes;
    if (!eps.length) return;
    const i = eps.indexOf(model.focus);
    const j = i < 0 ? 0 : Math.min(eps.length - 1, Math.max(0, i + step));
    setFocus(eps[j]);
  }
  // The focus is the browser's: set here, sent to the server as a message (which every page follows).
  function setFocus(ep) {
    if (ep === model.focus) return;
    model.focus = ep;
    model.send_msg({ action: "focus", episode: ep });
  }
  root.addEventListener("click", (e) => {
    const item = e.target.closest(".item");
    if (!item) return;
    const ep = item.dataset.episode;
    const button = e.target.closest("button");
    if (button) {
      const action = button.dataset.action;
      const input = item.querySelector("input[data-role=note]");
      const note = input ? input.value : "";
      if (action === "discussed") notes.delete(ep);
      setFocus(ep);
      model.send_msg({ action: action, episode: ep, note: note, value: button.dataset.value || "" });
      return;
    }
    if (e.target.closest("input, label, .details")) {
      setFocus(ep);
      return;
    }
    if (ep === model.focus) {
      if (closed.has(ep)) closed.delete(ep); else closed.add(ep);
      apply(false);
    } else {
      setFocus(ep);
    }
  });
  function onKey(e) {
    if (!model.keys) return;
    const target = e.composedPath()[0];
    if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) {
      if (e.key === "Escape") target.blur();
      return;
    }
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    // A focused button takes Enter and Space itself; an open menu (a select's list) takes the arrows.
    if (target && target.tagName === "BUTTON" && (e.key === "Enter" || e.key === " ")) return;
    if (target && target.closest && target.closest("[role=listbox], [role=menu], [role=option]")) return;
    if (e.key === "j" || e.key === "ArrowDown") { move(1); e.preventDefault(); }
    else if (e.key === "k" || e.key === "ArrowUp") { move(-1); e.preventDefault(); }
    else if (e.key === "Enter" && model.focus) {
      const ep = model.focus;
      if (closed.has(ep)) closed.delete(ep); else closed.add(ep);
      apply(false);
      e.preventDefault();
    }
    else if (e.key === "o" && model.focus) { model.send_msg({ action: "open", episode: model.focus }); }
  }
  document.addEventListener("keydown", onKey);
  model.on("remove", () => document.removeEventListener("keydown", onKey));
  model.on("content", draw);
  model.on("focus", () => apply(true));
  model.on("msg:custom", (msg) => { if (msg && msg.step) move(msg.step); });
  const narrow = () => root.classList.toggle("compact", model.compact);
  model.on("compact", narrow);
  narrow();
  draw();
  return root;
}
"""

    _stylesheets = [
        """
:host { display: block; width: 100%; }
.board { font-size: 14px; line-height: 1.3; color: #222; }
.sup { margin: 0 0 6px 0; }
.sup-head { position: sticky; top: 0; z-index: 1; background: #eef2f6; border-left: 4px solid #0072B2;
  padding: 4px 8px; font-size: 14px; }
.sup-head .who { font-weight: 700; font-size: 15px; }
.muted { color: #666; font-weight: normal; }
.item { border-bottom: 1px solid #e2e2e2; padding: 2px 6px; cursor: pointer;
  border-left: 4px solid transparent; }
.item.focused { background: #fff7e0; border-left-color: #E69F00; }
.item.discussed .line { opacity: 0.75; }
.line { display: grid; grid-template-columns: 22px 132px minmax(0, 1fr) 152px 150px auto; align-items: center;
  column-gap: 8px; min-height: 38px; }
.rank { font-weight: 700; font-size: 16px; text-align: right; }
.chip { color: #fff; border-radius: 10px; padding: 1px 8px; font-weight: 600; font-size: 12.5px;
  line-height: 1.25; overflow-wrap: anywhere; text-shadow: 0 0 2px rgba(0,0,0,.6); }
.what { min-width: 0; }
.headline { font-weight: 700; font-size: 15px; }
.more { color: #555; font-size: 12px; margin-left: 4px; }
.client { display: block; color: #444; font-size: 12.5px; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; }
.spark .mid { stroke: #ddd; stroke-width: 1; }
.since { font-size: 12.5px; color: #333; }
.done-chip { display: inline-block; margin-top: 2px; background: #009E73; color: #fff; border-radius: 10px;
  padding: 0 8px; font-weight: 600; }
.buttons { white-space: nowrap; }
button { font: inherit; font-size: 13px; border-radius: 4px; border: 1px solid #0072B2; background: #fff;
  color: #0072B2; padding: 3px 9px; cursor: pointer; margin-left: 4px; }
button.primary { background: #0072B2; color: #fff; }
button.fu { border-color: #777; color: #333; padding: 0 7px; font-size: 12.5px; }
button.fu.on { background: #333; color: #fff; }
button:focus-visible { outline: 3px solid #E69F00; }
.last, .today-note { margin: 0 0 3px 170px; font-size: 13px; color: #333; }
.note { font-style: italic; }
.worse { color: #B14400; }
.details { display: none; margin: 2px 0 6px 170px; }
.item.expanded .details { display: block; }
.reasons { margin: 2px 0 4px 0; padding-left: 18px; font-size: 13.5px; }
.note-field { display: flex; gap: 8px; align-items: center; font-size: 13px; font-weight: 600; }
.note-field input { flex: 1; font: inherit; font-weight: normal; padding: 3px 6px; max-width: 560px; }
.empty { padding: 4px 12px; color: #555; font-style: italic; }
.page-link { margin-top: 3px; font-size: 13px; }
@media (min-width: 1700px) {
  .board { font-size: 16px; }
  .headline { font-size: 17px; }
  .sup-head, .sup-head .who { font-size: 16px; }
  .client, .since, .chip, .last, .today-note, .reasons { font-size: 14.5px; }
  .line { grid-template-columns: 24px 150px minmax(0, 1fr) 190px 170px auto; min-height: 44px; }
  .last, .today-note, .details { margin-left: 190px; }
  .spark { width: 185px; height: 42px; }
}
.board.compact .line { grid-template-columns: 22px 118px minmax(0, 1fr) auto; }
.board.compact .spark { display: none; }
.board.compact .buttons { grid-column: 4; grid-row: 1; }
.board.compact .since { grid-column: 3 / 5; grid-row: 2; }
.board.compact .last, .board.compact .today-note, .board.compact .details { margin-left: 34px; }
"""
    ]

    def __init__(self, on_action: Callable[[dict], None] | None = None, **params):
        super().__init__(**params)
        self.on_action = on_action

    def _handle_msg(self, data) -> None:
        if self.on_action is not None and isinstance(data, dict):
            self.on_action(data)

    def step(self, n: int) -> None:
        """Move the focus ``n`` clients down (negative: up), staying on the board. The browser moves it (it
        holds the focus the keys last set) and sends the new focus back."""
        self._send_msg({"step": int(n)})


class SinceLastMeeting(JSComponent):
    """The 'since the last meeting' box (static HTML, escaped in Python)."""

    content = param.String(default="")

    _esm = """
export function render({ model, el }) {
  const box = document.createElement("div");
  box.innerHTML = model.content;
  model.on("content", () => { box.innerHTML = model.content; });
  return box;
}
"""
    _stylesheets = [
        """
:host { display: block; width: 100%; }
.since-box { font-size: 13px; background: #f6f6f6; border: 1px solid #ddd; border-radius: 4px;
  padding: 4px 10px; }
.since-title { font-weight: 700; font-size: 14px; }
.since-cols { display: grid; grid-template-columns: 1fr 1fr 1fr; column-gap: 14px; }
.since-cols ul { margin: 0; padding-left: 4px; max-height: 3.9em; overflow-y: auto;
  list-style-position: inside; }
.since-cols li { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.since-cols > div { min-width: 0; }
.muted { color: #666; }
.worse { color: #B14400; }
"""
    ]
