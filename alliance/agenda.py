"""The supervision meeting agenda: for one supervisor's team, the open episodes to discuss today, ranked by
the reasons of docs/methods.md §11, each reason in plain words with the session and date it arose.

Every flag comes from the clinical-metrics layer (``ClinicalMetrics``) and the caseload table
(``alliance.caseload.caseload_table``); nothing is recomputed here, only gathered, dated and put in words.
A client discussed at an earlier meeting (a mark in ``alliance.marks``) and not worse since — no reason has
arisen after the meeting at which it was discussed — moves down the agenda; a mark made at this meeting
changes nothing in the order (the item stays where it is, marked, until the next meeting). Ranks restart at 1
for each supervisee. Around the agenda: a header per supervisee (open caseload, flagged, data completeness,
change since the last meeting) and what changed since the last meeting (``meeting_board``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd

from alliance.caseload import caseload_table
from alliance.clinical import ClinicalMetrics
from alliance.flags import BY_KEY, NO_SESSION_DAYS
from alliance.service import Service

AGENDA_COLUMNS = [
    "rank",  # within the supervisee: 1, 2, 3, … for each
    "supervisee",
    "client_id",
    "episode_id",
    "top_reason",
    "top_rank",
    "headline",  # the strongest reason in a few words, with the date it arose
    "n_reasons",
    "reasons",
    "reasons_text",
    "latest_reason_date",
    "last_discussed",  # the latest earlier meeting at which it was discussed (NaT: never)
    "last_action",
    "last_mark_id",
    "followup",  # '', 'done' or 'not done': the follow-up of last time's action
    "discussed_not_worse",
    "discussed_today",  # marked at this meeting (the order does not change until the next one)
    "today_action",
    "today_mark_id",
    "sessions_since_discussed",
    "status",
    "status_words",
    "instrument",
    "n_sessions",
    "last_session_date",
]


def said(d, year: int | None = None) -> str:
    """A date as a supervisor reads it aloud: '28 Oct', with the year when it is not ``year``."""
    if d is None or pd.isna(d):
        return "date unknown"
    d = pd.Timestamp(d)
    return f"{d.day} {d:%b}" + ("" if year is not None and d.year == year else f" {d.year}")


def _day(d) -> str:
    return "date unknown" if d is None or pd.isna(d) else f"{pd.Timestamp(d).day} {pd.Timestamp(d):%b %Y}"


def team_clinicians(service: Service, supervisor_id: str) -> list[str]:
    """The supervisees of ``supervisor_id``: clinicians of the teams they supervise (not themselves)."""
    c = service.clinicians()
    team = c[c["supervisor_id"] == supervisor_id]
    return sorted(set(team["clinician_id"]) - {supervisor_id})


def supervisors(service: Service) -> list[str]:
    """Every supervisor with a team within the viewer's scope."""
    c = service.clinicians()
    return sorted(c["supervisor_id"].dropna().unique().tolist())


def metrics_until(metrics: ClinicalMetrics, meeting_date: dt.date) -> ClinicalMetrics:
    """The metrics as they stood on ``meeting_date`` when that is before the data's date: ratings after it
    are left out, discharges after it not yet made, and 'today' is the meeting date. The service-wide
    aggregates (expected-response bands, alliance SD, norms) stay those of the whole database."""
    day = pd.Timestamp(meeting_date)
    if day >= pd.Timestamp(metrics.as_of):
        return metrics
    m = ClinicalMetrics(metrics.service, dataclasses.replace(metrics.settings, as_of=day.date()))
    for name in ClinicalMetrics.SHARED:
        if name != "as_of":
            m.__dict__[name] = getattr(metrics, name)
    ratings = {}
    for construct in ("outcome", "alliance"):
        r = getattr(metrics, f"{construct}_ratings")
        ratings[construct] = r[pd.to_datetime(r["session_date"]) <= day].reset_index(drop=True)
        m.__dict__[f"{construct}_ratings"] = ratings[construct]
    e = metrics.episodes
    e = e[pd.to_datetime(e["start_date"]) <= day].copy()
    seen = pd.concat([ratings["outcome"], ratings["alliance"]])
    sessions = seen.groupby("episode_id").agg(
        n_sessions=("session_number", "nunique"), last_session_date=("session_date", "max")
    )
    e = e[e["episode_id"].isin(sessions.index)]
    later = pd.to_datetime(e["end_date"]) > day
    e.loc[later, "end_date"] = pd.NaT
    e.loc[later, "end_reason"] = None
    e["n_sessions"] = e["episode_id"].map(sessions["n_sessions"]).astype(int)
    e["last_session_date"] = pd.to_datetime(e["episode_id"].map(sessions["last_session_date"]))
    m.__dict__["episodes"] = e.reset_index(drop=True)
    return m


def _final_run_start(sessions: pd.Series, hit: pd.Series) -> int | None:
    """The first session of the last unbroken run of ``hit`` (in session order); None if the last is no
    hit."""
    order = np.argsort(sessions.to_numpy(), kind="stable")
    s, h = sessions.to_numpy()[order], hit.to_numpy(bool)[order]
    if not len(h) or not h[-1]:
        return None
    i = len(h) - 1
    while i > 0 and h[i - 1]:
        i -= 1
    return int(s[i])


REASON_COLUMNS = ["episode_id", "reason", "rank", "label", "session", "date", "words", "short"]


class _ReasonRows:
    """The agenda reasons gathered so far, one row per reason (columns ``REASON_COLUMNS``). A reason that
    arose at a session takes that session's date unless it brings its own. ``words`` is the full reason,
    read aloud with the date in words; ``short`` is the same in a few words (the agenda row)."""

    def __init__(self, date_of: dict, year: int):
        self.date_of = date_of  # (episode_id, session_number) -> session_date
        self.year = year  # dates in this year are said without it
        self.rows: list[dict] = []

    def when(self, episode_id, session) -> pd.Timestamp:
        """The date of a session of an episode (NaT if unknown)."""
        if session is None or pd.isna(session):
            return pd.NaT
        d = self.date_of.get((episode_id, int(session)))
        return pd.Timestamp(d) if d is not None and not pd.isna(d) else pd.NaT

    def on(self, episode_id, session) -> str:
        """'on 3 Oct' for a session's date ('' when it is unknown)."""
        d = self.when(episode_id, session)
        return "" if pd.isna(d) else f"on {said(d, self.year)}"

    def said(self, d) -> str:
        return said(d, self.year)

    def add(self, episode_id, key, session, words, short, date=None):
        rank, label = BY_KEY[key].rank, BY_KEY[key].label
        session = None if session is None or pd.isna(session) else int(session)
        if date is None and session is not None:
            date = self.when(episode_id, session)
        self.rows.append(
            {
                "episode_id": episode_id,
                "reason": key,
                "rank": rank,
                "label": label,
                "session": session,
                "date": pd.Timestamp(date) if date is not None and not pd.isna(date) else pd.NaT,
                "words": words,
                "short": short,
            }
        )


def _session_dates(metrics: ClinicalMetrics, open_ids: set) -> dict:
    """The date of every rated session of the open episodes, by (episode_id, session_number)."""
    dates = pd.concat(
        [
            metrics.outcome_ratings[["episode_id", "session_number", "session_date"]],
            metrics.alliance_ratings[["episode_id", "session_number", "session_date"]],
        ]
    ).drop_duplicates(["episode_id", "session_number"])
    dates = dates[dates["episode_id"].isin(open_ids)]
    return dates.set_index(["episode_id", "session_number"])["session_date"].to_dict()


def _status_runs(metrics: ClinicalMetrics, primary: pd.DataFrame, open_ids: set) -> dict:
    """Per open episode, the session its final run of deterioration, red and yellow began (None if its last
    rating is not in such a run), from the outcome status at every rating of its primary instrument."""
    # Outcome status at every rating (for when deterioration / red / yellow began).
    ss = metrics.session_status
    if len(ss):
        ss = ss[ss["episode_id"].isin(open_ids)]
        ss = ss.merge(primary[["instrument"]].reset_index(), on=["episode_id", "instrument"], how="inner")
    runs = {}
    for eid, sub in ss.groupby("episode_id", sort=False) if len(ss) else []:
        runs[eid] = {
            "deterioration": _final_run_start(
                sub["session_number"], sub["reason"].eq("reliably worse than at intake")
            ),
            "red": _final_run_start(sub["session_number"], sub["status"].eq("red")),
            "yellow": _final_run_start(sub["session_number"], sub["status"].eq("yellow")),
        }
    return runs


def _since(reasons: _ReasonRows, eid, s) -> str:
    """'since session 5 (3 Oct)'."""
    d = reasons.when(eid, s)
    return f"since session {s}" + ("" if pd.isna(d) else f" ({reasons.said(d)})")


def _outcome_reasons(
    reasons: _ReasonRows, metrics: ClinicalMetrics, table: pd.DataFrame, open_ids: set
) -> None:
    """Outcome reasons from the caseload table: deterioration, not on track, at risk (each dated by the
    session its final run began) and no recent session."""
    change = metrics.episode_change
    primary = change[change["primary"].astype(bool) & change["episode_id"].isin(open_ids)]
    primary = primary.set_index("episode_id")
    runs = _status_runs(metrics, primary, open_ids)
    add = reasons.add

    for eid, r in table.iterrows():
        code = r["instrument"]
        run = runs.get(eid, {})
        status = r["status"] if isinstance(r["status"], str) else None
        latest = int(primary.loc[eid, "latest_session"]) if eid in primary.index else None
        if r["flag_deterioration"]:
            s = run.get("deterioration") or latest
            add(
                eid,
                "deterioration",
                s,
                f"{code} {r['intake']:g} at intake → {r['latest']:g} at session {latest} "
                f"({reasons.said(reasons.when(eid, latest))}): reliably worse than at intake "
                f"{_since(reasons, eid, s)}",
                f"{code} reliably worse since {reasons.said(reasons.when(eid, s))}",
            )
        if status == "red" and not r["flag_deterioration"]:
            s = run.get("red") or latest
            add(
                eid,
                "not_on_track",
                s,
                f"{code} not on track {_since(reasons, eid, s)}: {r['reason']}",
                f"{code} not on track since {reasons.said(reasons.when(eid, s))}",
            )
        if status == "yellow":
            s = run.get("yellow") or latest
            add(
                eid,
                "at_risk",
                s,
                f"{code} at risk {_since(reasons, eid, s)}: {r['reason']}",
                f"{code} at risk since {reasons.said(reasons.when(eid, s))}",
            )
        if r["flag_no_recent_session"]:
            last = pd.Timestamp(r["last_session_date"])
            days = int(r["days_since_last_session"])
            add(
                eid,
                "no_recent_session",
                r["n_sessions"],
                f"no session for {days} days, last seen {reasons.said(last)} (session "
                f"{int(r['n_sessions'])}), not reliably improved — dropout risk",
                f"no session for {days} days, last seen {reasons.said(last)}",
                date=last + pd.Timedelta(days=NO_SESSION_DAYS),
            )


def _alliance_reasons(reasons: _ReasonRows, metrics: ClinicalMetrics, open_ids: set) -> None:
    """Alliance reasons of the open episodes, in this order: unrepaired rupture, below the cut-off at the
    last two ratings, late decline, ceiling alliance with no reliable improvement."""
    ae = metrics.alliance_events
    if len(ae):
        ae = ae[ae["episode_id"].isin(open_ids)]
    last_alliance = (
        metrics.alliance_ratings.sort_values("session_number").groupby(["episode_id", "instrument"])
        if len(metrics.alliance_ratings)
        else None
    )
    if len(ae):
        _rupture_reasons(reasons, ae, last_alliance)
        _below_cutoff_reasons(reasons, ae, last_alliance, open_ids)
        for r in ae[ae["event"] == "late_decline"].itertuples():
            reasons.add(
                r.episode_id,
                "late_decline",
                r.session_number,
                f"late alliance decline by session {r.session_number} "
                f"({reasons.said(reasons.when(r.episode_id, r.session_number))}): {r.detail}",
                f"{r.instrument} declining by {reasons.said(reasons.when(r.episode_id, r.session_number))}",
            )
        _ceiling_reasons(reasons, ae, metrics.episode_change)


def _rupture_reasons(reasons: _ReasonRows, ae: pd.DataFrame, last_alliance) -> None:
    """A rupture not repaired, or still open, at the last alliance rating."""
    rup = ae[(ae["event"] == "rupture") & ae["repair_status"].astype(str).isin(["unrepaired", "open"])]
    for r in rup.itertuples():
        last = (
            int(last_alliance.get_group((r.episode_id, r.instrument))["session_number"].iloc[-1])
            if last_alliance is not None
            else r.session_number
        )
        repaired = str(r.repair_status) == "unrepaired"
        state = (
            f"not repaired by session {last}"
            if repaired
            else f"still open at session {last} (too few ratings since to say)"
        )
        on = reasons.on(r.episode_id, r.session_number)
        reasons.add(
            r.episode_id,
            "unrepaired_rupture",
            r.session_number,
            (
                f"{r.instrument} fell from {r.previous_score:g} to {r.score:g} at session "
                f"{r.session_number} {on} (baseline {r.baseline:.1f}) — rupture, {state}"
                if not pd.isna(r.previous_score)
                else f"{r.instrument} fell from a baseline of {r.baseline:.1f} to {r.score:g} at session "
                f"{r.session_number} {on} — rupture, {state}"
            ).replace("  ", " "),
            f"{r.instrument} rupture {on}, {'not repaired' if repaired else 'still open'}".replace("  ", " "),
        )


def _below_cutoff_reasons(reasons: _ReasonRows, ae: pd.DataFrame, last_alliance, open_ids: set) -> None:
    """Alliance below the instrument's cut-off at both of the last two ratings."""
    below = ae[ae["event"] == "below_cutoff"]
    if not (len(below) and last_alliance is not None):
        return
    below_keys = set(zip(below["episode_id"], below["instrument"], below["session_number"], strict=True))
    for (eid, code), sub in last_alliance:
        if eid not in open_ids or len(sub) < 2:
            continue
        tail = sub.tail(2)
        s = tail["session_number"].astype(int).tolist()
        if all((eid, code, n) in below_keys for n in s):
            cut = below.loc[below["instrument"] == code, "threshold"].iloc[0]
            first, second = (reasons.said(reasons.when(eid, n)) for n in s)
            reasons.add(
                eid,
                "below_cutoff",
                s[0],
                f"{code} below the cut-off {cut:g} at the last two ratings: "
                f"{tail['score'].iloc[0]:g} at session {s[0]} ({first}), "
                f"{tail['score'].iloc[1]:g} at session {s[1]} ({second})",
                f"{code} below cut-off since {first}",
            )


def _ceiling_reasons(reasons: _ReasonRows, ae: pd.DataFrame, change: pd.DataFrame) -> None:
    """Ceiling alliance in an episode with no reliable improvement on its primary instrument."""
    improved = change.loc[change["primary"].astype(bool)].set_index("episode_id")["reliable_improvement"]
    for r in ae[ae["event"] == "ceiling"].itertuples():
        if bool(pd.Series([improved.get(r.episode_id)]).astype("boolean").fillna(False).iloc[0]):
            continue
        when = reasons.said(reasons.when(r.episode_id, r.session_number))
        reasons.add(
            r.episode_id,
            "ceiling",
            r.session_number,
            f"ceiling alliance with no reliable improvement by session {r.session_number} ({when}): "
            f"{r.detail}",
            f"{r.instrument} at ceiling, not improved by {when}",
        )


def _sudden_loss_reasons(reasons: _ReasonRows, metrics: ClinicalMetrics, open_ids: set) -> None:
    """A sudden loss on an outcome instrument, dated at the session after the drop."""
    se = metrics.sudden_events
    if not len(se):
        return
    out = metrics.outcome_ratings.set_index(["episode_id", "instrument", "session_number"])["score"]
    for r in se[(se["kind"] == "loss") & se["episode_id"].isin(open_ids)].itertuples():
        n = int(r.session)
        before, after = (
            out.get((r.episode_id, r.instrument, n)),
            out.get((r.episode_id, r.instrument, n + 1)),
        )
        scores = f"{before:g} → {after:g}, " if before is not None and after is not None else ""
        when = reasons.said(reasons.when(r.episode_id, n + 1))
        reasons.add(
            r.episode_id,
            "sudden_loss",
            n + 1,
            f"sudden loss on {r.instrument} between sessions {n} and {n + 1} ({when}; "
            f"{scores}{abs(r.magnitude):g} points{', reversed later' if r.reversal else ''})",
            f"{r.instrument} sudden loss on {when}",
        )


def episode_reasons(metrics: ClinicalMetrics) -> pd.DataFrame:
    """Every agenda reason of every open episode in ``metrics``' scope, one row per reason.

    Columns: episode_id, reason, rank, label, session, date, words, short. Dates in the words are said
    without the year when they fall in the year of ``metrics.as_of`` (the meeting's).
    """
    table = caseload_table(metrics).set_index("episode_id")
    table = table[~table["closed"].astype(bool)]
    if table.empty:
        return pd.DataFrame(columns=REASON_COLUMNS)
    open_ids = set(table.index)

    reasons = _ReasonRows(_session_dates(metrics, open_ids), pd.Timestamp(metrics.as_of).year)
    _outcome_reasons(reasons, metrics, table, open_ids)
    _alliance_reasons(reasons, metrics, open_ids)
    _sudden_loss_reasons(reasons, metrics, open_ids)

    out = pd.DataFrame(reasons.rows, columns=REASON_COLUMNS)
    return out.sort_values(["episode_id", "rank", "session"]).reset_index(drop=True)


_NO_DATES = pd.Series(dtype="datetime64[ns]")
MARK_COLUMNS = ["meeting_date", "action_note", "supervisor_id", "mark_id", "followup"]


def _marks_split(marks: pd.DataFrame | None, meeting_date: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per episode, its latest mark of an earlier meeting, and its latest mark of this meeting."""
    empty = pd.DataFrame(columns=MARK_COLUMNS, index=pd.Index([], name="episode_id"))
    if marks is None or marks.empty:
        return empty, empty
    m = marks.copy()
    for col, default in (("mark_id", None), ("followup", ""), ("action_note", "")):
        if col not in m:
            m[col] = default
    m["meeting_date"] = pd.to_datetime(m["meeting_date"])
    m = m.sort_values(["meeting_date", "marked_at"] if "marked_at" in m else ["meeting_date"], kind="stable")
    day = pd.Timestamp(meeting_date)

    def latest(rows):
        return rows.drop_duplicates("episode_id", keep="last").set_index("episode_id")[MARK_COLUMNS]

    return latest(m[m["meeting_date"] < day]), latest(m[m["meeting_date"] == day])


def team_scope(metrics: ClinicalMetrics, supervisor_id: str, clinician_id: str | None = None):
    """The supervisees (or the one asked for) and the metrics narrowed to their episodes."""
    team = team_clinicians(metrics.service, supervisor_id)
    if clinician_id is not None:
        team = [c for c in team if c == clinician_id]
    return team, metrics.for_scope(Service(metrics.service.db, metrics.service.scope.restrict(*team)))


def _session_dates_of(metrics: ClinicalMetrics) -> pd.DataFrame:
    """One row per rated session of each episode: episode_id, session_number, session_date, and whether an
    outcome and an alliance measure were rated at it."""
    o = metrics.outcome_ratings[["episode_id", "session_number", "session_date"]].assign(outcome=True)
    a = metrics.alliance_ratings[["episode_id", "session_number", "session_date"]].assign(alliance=True)
    o = o.drop_duplicates(["episode_id", "session_number"])
    a = a.drop_duplicates(["episode_id", "session_number"])
    both = o.merge(a, on=["episode_id", "session_number"], how="outer", suffixes=("", "_a"))
    both["session_date"] = both["session_date"].fillna(both.pop("session_date_a"))
    both[["outcome", "alliance"]] = both[["outcome", "alliance"]].astype("boolean").fillna(False).astype(bool)
    return both


@dataclasses.dataclass(frozen=True)
class AgendaDay:
    """What one day's agenda of a team rests on that the discussed-marks do not change: the metrics as they
    stood that day, the reasons, and for the episodes with a reason their caseload rows, rated session dates
    and sparklines; also every rated session of the team (the supervisee headers' completeness). Made once
    per scope and day (a page keeps it in the process's cache), so a mark, or another visit, only re-ranks.
    Shared: read it, never change it."""

    metrics: ClinicalMetrics
    reasons: pd.DataFrame
    table: pd.DataFrame  # caseload_table rows of the episodes with a reason, indexed by episode_id
    dates: dict  # episode_id -> its rated sessions' dates
    courses: dict  # episode_id -> episode_courses entry
    sessions: pd.DataFrame  # _session_dates_of(metrics)


def agenda_day(scoped: ClinicalMetrics, day: dt.date, reasons: pd.DataFrame | None = None) -> AgendaDay:
    """The ``AgendaDay`` of ``scoped`` (the team's metrics) on ``day``; ``reasons`` when already computed
    (``episode_reasons(metrics_until(scoped, day))``)."""
    now = metrics_until(scoped, day)
    if reasons is None:
        reasons = episode_reasons(now)
    ids = set(reasons["episode_id"])
    table = caseload_table(now).set_index("episode_id")
    table = table[table.index.isin(ids)]
    sessions = _session_dates_of(now)
    mine = sessions[sessions["episode_id"].isin(ids)]
    dates = {e: pd.to_datetime(f["session_date"]) for e, f in mine.groupby("episode_id")}
    courses = episode_courses(now, ids) if ids else {}
    return AgendaDay(now, reasons, table, dates, courses, sessions)


def meeting_agenda(
    metrics: ClinicalMetrics,
    supervisor_id: str,
    meeting_date: dt.date,
    marks: pd.DataFrame | None = None,
    clinician_id: str | None = None,
    *,
    day: AgendaDay | None = None,
) -> pd.DataFrame:
    """The agenda of one supervisor's meeting: open episodes of the team with at least one reason, ranked.

    ``metrics`` may be the service-wide metrics; they are narrowed to the team, and to the data as they stood
    on ``meeting_date`` when it is before the data's date (``metrics_until``). ``marks`` are
    ``MarkStore.marks_for`` rows; marks of meetings after ``meeting_date`` are ignored, and marks made at this
    meeting are shown (``discussed_today``) without changing the order. ``clinician_id`` restricts the
    agenda to one supervisee. Supervisees come in the order of their most urgent client; within each, ranks
    restart at 1: clients discussed at an earlier meeting and not worse since last; then strongest reason
    (docs/methods.md §11), more reasons, most recent reason first. One row per episode (columns
    ``AGENDA_COLUMNS``; ``reasons`` is a list of dicts with reason, rank, label, session, date, words,
    short). ``day``: the team's ``AgendaDay`` on ``meeting_date`` when already made (what the marks do not
    change).
    """
    if day is None:
        team, scoped = team_scope(metrics, supervisor_id, clinician_id)
        if not team:
            return pd.DataFrame(columns=AGENDA_COLUMNS)
        day = agenda_day(scoped, meeting_date)
    reasons, table, dates = day.reasons, day.table, day.dates
    if reasons.empty:
        return pd.DataFrame(columns=AGENDA_COLUMNS)
    before, today = _marks_split(marks, meeting_date)

    rows = []
    for eid, sub in reasons.groupby("episode_id", sort=False):
        info = table.loc[eid]
        last_date = sub["date"].max()
        mark = before.loc[eid] if eid in before.index else None
        now = today.loc[eid] if eid in today.index else None
        discussed = mark["meeting_date"] if mark is not None else pd.NaT
        not_worse = mark is not None and (pd.isna(last_date) or last_date <= discussed)
        since = int((dates.get(eid, _NO_DATES) > discussed).sum()) if mark is not None else None
        items = sub.drop(columns="episode_id").to_dict("records")
        rows.append(
            {
                "supervisee": info["clinician_id"],
                "client_id": info["client_id"],
                "episode_id": eid,
                "top_reason": sub["reason"].iloc[0],
                "top_rank": int(sub["rank"].min()),
                "headline": sub["short"].iloc[0],
                "n_reasons": int(sub["reason"].nunique()),
                "reasons": items,
                "reasons_text": "; ".join(it["words"] for it in items),
                "latest_reason_date": last_date,
                "last_discussed": discussed,
                "last_action": (mark["action_note"] or "") if mark is not None else "",
                "last_mark_id": mark["mark_id"] if mark is not None else None,
                "followup": (mark["followup"] or "") if mark is not None else "",
                "discussed_not_worse": bool(not_worse),
                "discussed_today": now is not None,
                "today_action": (now["action_note"] or "") if now is not None else "",
                "today_mark_id": now["mark_id"] if now is not None else None,
                "sessions_since_discussed": since,
                "status": info["status"],
                "status_words": info["status_words"],
                "instrument": info["instrument"],
                "n_sessions": int(info["n_sessions"]),
                "last_session_date": info["last_session_date"],
            }
        )
    agenda = pd.DataFrame(rows)
    agenda["_recent"] = agenda["latest_reason_date"].fillna(pd.Timestamp.min)
    agenda = agenda.sort_values(
        ["discussed_not_worse", "top_rank", "n_reasons", "_recent", "episode_id"],
        ascending=[True, True, False, False, True],
        kind="stable",
    ).drop(columns="_recent")
    # Supervisees in the order of their most urgent client, each one's clients together.
    order = {c: i for i, c in enumerate(agenda["supervisee"].drop_duplicates())}
    agenda = agenda.sort_values("supervisee", key=lambda c: c.map(order), kind="stable")
    agenda["rank"] = agenda.groupby("supervisee").cumcount() + 1
    return agenda[AGENDA_COLUMNS].reset_index(drop=True)


# -- around the agenda: sparklines, supervisee headers, since the last meeting ---------------------------
def _instrument_scales(metrics: ClinicalMetrics) -> pd.DataFrame:
    """Per instrument code: min_score, max_score, higher_is_better (the registry's first row per code)."""
    reg = metrics.service.registry()
    return reg.drop_duplicates("code").set_index("code")[["min_score", "max_score", "higher_is_better"]]


def episode_courses(scoped: ClinicalMetrics, episode_ids) -> dict[str, dict]:
    """Per episode, what its sparkline draws: the primary outcome and the most-rated alliance measure on one
    normalised axis (0 = the instrument's worst score, 1 = its best, so up is better for both), and the
    sessions of its ruptures (not repaired or still open: ``ruptures_open``; repaired: ``ruptures_repaired``)
    and candidate sudden losses and gains (at session n+1, where the change shows)."""
    ids = set(episode_ids)
    scales = _instrument_scales(scoped)
    change = scoped.episode_change
    primary = change.loc[change["primary"].astype(bool) & change["episode_id"].isin(ids)]
    primary = primary.set_index("episode_id")["instrument"]

    def normalised(frame: pd.DataFrame) -> pd.DataFrame:
        f = frame[frame["episode_id"].isin(ids) & frame["score"].notna()].copy()
        sc = scales.reindex(f["instrument"])
        lo, hi = sc["min_score"].to_numpy(float), sc["max_score"].to_numpy(float)
        span = np.where(hi > lo, hi - lo, 1.0)
        y = (f["score"].to_numpy(float) - lo) / span
        better = sc["higher_is_better"].astype("boolean").fillna(True).to_numpy(bool)
        f["y"] = np.clip(np.where(better, y, 1 - y), 0, 1)
        return f.sort_values(["episode_id", "session_number"])

    out_r = normalised(scoped.outcome_ratings)
    out_r = out_r[out_r["instrument"].to_numpy() == out_r["episode_id"].map(primary).to_numpy()]
    all_r = normalised(scoped.alliance_ratings)
    if len(all_r):
        most = all_r.groupby(["episode_id", "instrument"]).size().reset_index(name="n")
        most = most.sort_values(["episode_id", "n"], ascending=[True, False]).drop_duplicates("episode_id")
        all_r = all_r.merge(most[["episode_id", "instrument"]], on=["episode_id", "instrument"])
    ae = scoped.alliance_events
    rup = ae[(ae["event"] == "rupture") & ae["episode_id"].isin(ids)] if len(ae) else ae
    se = scoped.sudden_events
    se = se[se["episode_id"].isin(ids)] if len(se) else se

    courses: dict[str, dict] = {
        e: {
            "outcome": [],
            "alliance": [],
            "outcome_code": primary.get(e),
            "alliance_code": None,
            "ruptures_open": [],
            "ruptures_repaired": [],
            "losses": [],
            "gains": [],
        }
        for e in ids
    }
    for eid, f in out_r.groupby("episode_id"):
        courses[eid]["outcome"] = list(zip(f["session_number"].astype(int), f["y"].round(3), strict=True))
    for eid, f in all_r.groupby("episode_id"):
        courses[eid]["alliance"] = list(zip(f["session_number"].astype(int), f["y"].round(3), strict=True))
        courses[eid]["alliance_code"] = f["instrument"].iloc[0]
    for r in rup.itertuples() if len(rup) else []:
        key = "ruptures_repaired" if str(r.repair_status) == "repaired" else "ruptures_open"
        courses[r.episode_id][key].append(int(r.session_number))
    for r in se.itertuples() if len(se) else []:
        courses[r.episode_id]["losses" if r.kind == "loss" else "gains"].append(int(r.session) + 1)
    return courses


def supervisee_headers(
    scoped: ClinicalMetrics,
    team: list[str],
    agenda: pd.DataFrame,
    then: pd.DataFrame | None,
    sessions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per supervisee: open caseload, how many are on the agenda (flagged), data completeness (the
    share of the open episodes' rated sessions at which both an outcome and an alliance measure were
    rated), and the flagged count at the last meeting (``then``: that meeting's agenda; None: no earlier
    meeting). ``sessions``: ``_session_dates_of(scoped)`` when already made."""
    end = scoped.episode_end
    open_ = end[~end["closed"].astype(bool)]
    if sessions is None:
        sessions = _session_dates_of(scoped)
    sessions = sessions[sessions["episode_id"].isin(set(open_["episode_id"]))]
    sessions = sessions.merge(open_[["episode_id", "clinician_id"]], on="episode_id")
    rows = []
    for c in team:
        s = sessions[sessions["clinician_id"] == c]
        rated = len(s)
        complete = int((s["outcome"] & s["alliance"]).sum())
        rows.append(
            {
                "supervisee": c,
                "open_episodes": int((open_["clinician_id"] == c).sum()),
                "flagged": int((agenda["supervisee"] == c).sum()) if len(agenda) else 0,
                "sessions_rated": rated,
                "sessions_complete": complete,
                "completeness": complete / rated if rated else np.nan,
                "flagged_then": (
                    int((then["supervisee"] == c).sum())
                    if then is not None and len(then)
                    else (0 if then is not None else None)
                ),
            }
        )
    return pd.DataFrame(rows)


def previous_meeting(marks: pd.DataFrame | None, supervisor_id: str, meeting_date: dt.date):
    """The last meeting before ``meeting_date`` at which this supervisor marked a client discussed (None if
    there is none: a meeting is known by its marks)."""
    if marks is None or marks.empty:
        return None
    m = marks[marks["supervisor_id"] == supervisor_id]
    days = pd.to_datetime(m["meeting_date"])
    days = days[days < pd.Timestamp(meeting_date)]
    return None if days.empty else days.max().date()


#: Outcome-status reasons are tiers of one status (rank order): deterioration, not on track, at risk.
_TIERS = {k: BY_KEY[k].rank for k in ("deterioration", "not_on_track", "at_risk")}


def _strongest_tier(reasons: pd.DataFrame) -> dict:
    """Per episode, the rank of its strongest outcome-status reason."""
    r = reasons[reasons["reason"].isin(list(_TIERS))] if len(reasons) else reasons
    return r.groupby("episode_id")["rank"].min().to_dict() if len(r) else {}


SINCE_COLUMNS = ["supervisee", "client_id", "episode_id", "reason", "label", "short", "date"]


def since_last_meeting(
    now: pd.DataFrame, then: pd.DataFrame, agenda: pd.DataFrame, episodes: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """What changed since the last meeting, from the reasons as they stand now (``now``) and as they stood at
    the last meeting (``then``), both ``episode_reasons`` frames; ``episodes`` maps episode_id to client and
    supervisee (``episode_end`` rows).

    - ``new``: a reason an episode has now that it did not have then (by reason, not by wording);
    - ``resolved``: a reason it had then and has no longer (also when the episode has ended since);
    - ``worse``: clients discussed at an earlier meeting with a reason that arose after that meeting.
    """
    who = episodes.set_index("episode_id")[["client_id", "clinician_id"]]

    def keyed(r):
        return set(zip(r["episode_id"], r["reason"], strict=True)) if len(r) else set()

    def rows(frame: pd.DataFrame, keys: set) -> pd.DataFrame:
        if not keys or frame.empty:
            return pd.DataFrame(columns=SINCE_COLUMNS)
        f = frame[[k in keys for k in zip(frame["episode_id"], frame["reason"], strict=True)]]
        f = f.sort_values(["episode_id", "rank", "session"]).drop_duplicates(["episode_id", "reason"])
        f = f.assign(
            client_id=f["episode_id"].map(who["client_id"]),
            supervisee=f["episode_id"].map(who["clinician_id"]),
        )
        return f.sort_values(["supervisee", "rank", "episode_id"])[SINCE_COLUMNS].reset_index(drop=True)

    new_keys, old_keys = keyed(now), keyed(then)
    # Deterioration, red and yellow are tiers of one outcome status: a move to a stronger tier is new, a move
    # to a weaker one resolves the stronger; neither lists the weaker tier as new or the stronger resolved.
    tier_now, tier_then = _strongest_tier(now), _strongest_tier(then)
    new_keys = {(e, k) for e, k in new_keys - old_keys if k not in _TIERS or _TIERS[k] < tier_then.get(e, 99)}
    old_keys = {
        (e, k) for e, k in old_keys - keyed(now) if k not in _TIERS or _TIERS[k] < tier_now.get(e, 99)
    }
    worse = (
        agenda[agenda["last_discussed"].notna() & ~agenda["discussed_not_worse"].astype(bool)]
        if len(agenda)
        else agenda
    )
    worse_rows = []
    for r in worse.itertuples():
        arisen = [it for it in r.reasons if not pd.isna(it["date"]) and it["date"] > r.last_discussed]
        for it in arisen[:1]:  # the strongest reason that arose since
            worse_rows.append(
                {
                    "supervisee": r.supervisee,
                    "client_id": r.client_id,
                    "episode_id": r.episode_id,
                    "reason": it["reason"],
                    "label": it["label"],
                    "short": it["short"],
                    "date": it["date"],
                    "last_discussed": r.last_discussed,
                }
            )
    return {
        "new": rows(now, new_keys),
        "resolved": rows(then, old_keys),
        "worse": pd.DataFrame(worse_rows, columns=[*SINCE_COLUMNS, "last_discussed"]),
    }


@dataclasses.dataclass
class MeetingBoard:
    """Everything the meeting page shows for one supervisor, supervisee choice and date."""

    agenda: pd.DataFrame
    headers: pd.DataFrame
    courses: dict
    previous: dt.date | None
    since: dict | None  # None without an earlier meeting


def meeting_board(
    metrics: ClinicalMetrics,
    supervisor_id: str,
    meeting_date: dt.date,
    marks: pd.DataFrame | None = None,
    clinician_id: str | None = None,
    day_of=None,
    scoped: ClinicalMetrics | None = None,
) -> MeetingBoard:
    """The agenda with its supervisee headers, sparklines and what changed since the last meeting.

    ``day_of(scoped, day)`` returns ``agenda_day(scoped, day)``; a page passes a cached one (what a day's
    agenda rests on does not change with the marks, and a past meeting's reasons neither). ``scoped``: the
    metrics already narrowed to the team (or the one supervisee), e.g. from the process's cache; else
    narrowed here."""
    if scoped is None:
        team, scoped = team_scope(metrics, supervisor_id, clinician_id)
    else:
        team = [c for c in team_clinicians(metrics.service, supervisor_id) if clinician_id in (None, c)]
    if day_of is None:
        day_of = agenda_day

    empty = pd.DataFrame(columns=AGENDA_COLUMNS)
    if not team:
        return MeetingBoard(empty, supervisee_headers(scoped, [], empty, None), {}, None, None)
    today = day_of(scoped, meeting_date)
    agenda = meeting_agenda(metrics, supervisor_id, meeting_date, marks, day=today)
    previous = previous_meeting(marks, supervisor_id, meeting_date)
    since, then_agenda = None, None
    if previous is not None:
        then = day_of(scoped, previous).reasons
        then_agenda = then.drop_duplicates("episode_id").assign(
            supervisee=lambda f: f["episode_id"].map(scoped.episodes.set_index("episode_id")["clinician_id"])
        )
        since = since_last_meeting(today.reasons, then, agenda, scoped.episodes)
    headers = supervisee_headers(today.metrics, team, agenda, then_agenda, today.sessions)
    return MeetingBoard(agenda, headers, today.courses, previous, since)
