"""The supervision meeting agenda: for one supervisor's team, the open episodes to discuss today, ranked by
the reasons of docs/methods.md §11, each reason in plain words with the session and date it arose.

Every flag comes from the clinical-metrics layer (``ClinicalMetrics``) and the caseload table
(``alliance.caseload.caseload_table``); nothing is recomputed here, only gathered, dated and put in words.
A client discussed at an earlier meeting (a mark in ``alliance.marks``) and not worse since — no reason has
arisen after the meeting at which it was discussed — moves down the agenda.
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
    "rank",
    "supervisee",
    "position",
    "client_id",
    "episode_id",
    "top_reason",
    "top_rank",
    "n_reasons",
    "reasons",
    "reasons_text",
    "latest_reason_date",
    "last_discussed",
    "last_action",
    "discussed_not_worse",
    "status",
    "status_words",
    "instrument",
    "n_sessions",
    "last_session_date",
]


def _day(d) -> str:
    return "date unknown" if d is None or pd.isna(d) else f"{pd.Timestamp(d):%d %b %Y}"


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


REASON_COLUMNS = ["episode_id", "reason", "rank", "label", "session", "date", "words"]


class _ReasonRows:
    """The agenda reasons gathered so far, one row per reason (columns ``REASON_COLUMNS``). A reason that
    arose at a session takes that session's date unless it brings its own."""

    def __init__(self, date_of: dict):
        self.date_of = date_of  # (episode_id, session_number) -> session_date
        self.rows: list[dict] = []

    def add(self, episode_id, key, session, words, date=None):
        rank, label = BY_KEY[key].rank, BY_KEY[key].label
        session = None if session is None or pd.isna(session) else int(session)
        if date is None and session is not None:
            date = self.date_of.get((episode_id, session))
        self.rows.append(
            {
                "episode_id": episode_id,
                "reason": key,
                "rank": rank,
                "label": label,
                "session": session,
                "date": pd.Timestamp(date) if date is not None and not pd.isna(date) else pd.NaT,
                "words": words,
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
    ss = metrics.session_status()
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
        if r["flag_deterioration"]:
            s = run.get("deterioration") or (
                primary.loc[eid, "latest_session"] if eid in primary.index else None
            )
            add(
                eid,
                "deterioration",
                s,
                f"{code} {r['intake']:g} at intake → {r['latest']:g} at session "
                f"{int(primary.loc[eid, 'latest_session'])}: reliably worse than at intake "
                f"(since session {s})",
            )
        if status == "red" and not r["flag_deterioration"]:
            s = run.get("red") or (primary.loc[eid, "latest_session"] if eid in primary.index else None)
            add(eid, "not_on_track", s, f"{code} not on track since session {s}: {r['reason']}")
        if status == "yellow":
            s = run.get("yellow") or (primary.loc[eid, "latest_session"] if eid in primary.index else None)
            add(eid, "at_risk", s, f"{code} at risk since session {s}: {r['reason']}")
        if r["flag_no_recent_session"]:
            last = pd.Timestamp(r["last_session_date"])
            add(
                eid,
                "no_recent_session",
                r["n_sessions"],
                f"no session for {int(r['days_since_last_session'])} days since {_day(last)} "
                f"(session {int(r['n_sessions'])}) and not reliably improved — dropout risk",
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
            reasons.add(r.episode_id, "late_decline", r.session_number, f"late alliance decline: {r.detail}")
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
        state = (
            f"not repaired by session {last}"
            if str(r.repair_status) == "unrepaired"
            else f"still open at session {last} (too few ratings since to say)"
        )
        reasons.add(
            r.episode_id,
            "unrepaired_rupture",
            r.session_number,
            (
                f"{r.instrument} fell from {r.previous_score:g} to {r.score:g} at session "
                f"{r.session_number} (baseline {r.baseline:.1f}) — rupture, {state}"
                if not pd.isna(r.previous_score)
                else f"{r.instrument} fell from a baseline of {r.baseline:.1f} to {r.score:g} at session "
                f"{r.session_number} — rupture, {state}"
            ),
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
            reasons.add(
                eid,
                "below_cutoff",
                s[0],
                f"{code} below the cut-off {cut:g} at the last two ratings: "
                f"{tail['score'].iloc[0]:g} at session {s[0]}, "
                f"{tail['score'].iloc[1]:g} at session {s[1]}",
            )


def _ceiling_reasons(reasons: _ReasonRows, ae: pd.DataFrame, change: pd.DataFrame) -> None:
    """Ceiling alliance in an episode with no reliable improvement on its primary instrument."""
    improved = change.loc[change["primary"].astype(bool)].set_index("episode_id")["reliable_improvement"]
    for r in ae[ae["event"] == "ceiling"].itertuples():
        if bool(pd.Series([improved.get(r.episode_id)]).astype("boolean").fillna(False).iloc[0]):
            continue
        reasons.add(
            r.episode_id,
            "ceiling",
            r.session_number,
            f"ceiling alliance with no reliable improvement by session {r.session_number}: {r.detail}",
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
        reasons.add(
            r.episode_id,
            "sudden_loss",
            n + 1,
            f"sudden loss on {r.instrument} between sessions {n} and {n + 1} "
            f"({scores}{abs(r.magnitude):g} points{', reversed later' if r.reversal else ''})",
        )


def episode_reasons(metrics: ClinicalMetrics) -> pd.DataFrame:
    """Every agenda reason of every open episode in ``metrics``' scope, one row per reason.

    Columns: episode_id, reason, rank, label, session, date, words.
    """
    table = caseload_table(metrics).set_index("episode_id")
    table = table[~table["closed"].astype(bool)]
    if table.empty:
        return pd.DataFrame(columns=REASON_COLUMNS)
    open_ids = set(table.index)

    reasons = _ReasonRows(_session_dates(metrics, open_ids))
    _outcome_reasons(reasons, metrics, table, open_ids)
    _alliance_reasons(reasons, metrics, open_ids)
    _sudden_loss_reasons(reasons, metrics, open_ids)

    out = pd.DataFrame(reasons.rows, columns=REASON_COLUMNS)
    return out.sort_values(["episode_id", "rank", "session"]).reset_index(drop=True)


def _latest_marks(marks: pd.DataFrame | None, meeting_date: dt.date) -> pd.DataFrame:
    cols = ["meeting_date", "action_note", "supervisor_id"]
    if marks is None or marks.empty:
        return pd.DataFrame(columns=cols, index=pd.Index([], name="episode_id"))
    m = marks.copy()
    m["meeting_date"] = pd.to_datetime(m["meeting_date"])
    m = m[m["meeting_date"] <= pd.Timestamp(meeting_date)]
    m = m.sort_values(["meeting_date", "marked_at"] if "marked_at" in m else ["meeting_date"])
    return m.drop_duplicates("episode_id", keep="last").set_index("episode_id")[cols]


def meeting_agenda(
    metrics: ClinicalMetrics,
    supervisor_id: str,
    meeting_date: dt.date,
    marks: pd.DataFrame | None = None,
    clinician_id: str | None = None,
) -> pd.DataFrame:
    """The agenda of one supervisor's meeting: open episodes of the team with at least one reason, ranked.

    ``metrics`` may be the service-wide metrics; they are narrowed to the team, and to the data as they stood
    on ``meeting_date`` when it is before the data's date (``metrics_until``). ``marks`` are
    ``MarkStore.marks_for`` rows; marks of meetings after ``meeting_date`` are ignored. ``clinician_id``
    restricts the agenda to one supervisee. Ranking: clients discussed and not worse since last; then
    strongest reason (docs/methods.md §11), more reasons, most recent reason first. One row per
    episode (columns ``AGENDA_COLUMNS``; ``reasons`` is a list of dicts with reason, rank, label,
    session, date, words).
    """
    team = team_clinicians(metrics.service, supervisor_id)
    if clinician_id is not None:
        team = [c for c in team if c == clinician_id]
    scoped = metrics.for_scope(Service(metrics.service.db, metrics.service.scope.restrict(*team)))
    scoped = metrics_until(scoped, meeting_date)
    if not team:
        return pd.DataFrame(columns=AGENDA_COLUMNS)
    reasons = episode_reasons(scoped)
    if reasons.empty:
        return pd.DataFrame(columns=AGENDA_COLUMNS)
    table = caseload_table(scoped).set_index("episode_id")
    latest = _latest_marks(marks, meeting_date)

    rows = []
    for eid, sub in reasons.groupby("episode_id", sort=False):
        info = table.loc[eid]
        last_date = sub["date"].max()
        mark = latest.loc[eid] if eid in latest.index else None
        discussed = mark["meeting_date"] if mark is not None else pd.NaT
        not_worse = mark is not None and (pd.isna(last_date) or last_date <= discussed)
        items = sub.drop(columns="episode_id").to_dict("records")
        rows.append(
            {
                "supervisee": info["clinician_id"],
                "client_id": info["client_id"],
                "episode_id": eid,
                "top_reason": sub["reason"].iloc[0],
                "top_rank": int(sub["rank"].min()),
                "n_reasons": int(sub["reason"].nunique()),
                "reasons": items,
                "reasons_text": "; ".join(
                    f"{it['words']} ({_day(it['date'])})" if it["session"] is not None else it["words"]
                    for it in items
                ),
                "latest_reason_date": last_date,
                "last_discussed": discussed,
                "last_action": (mark["action_note"] or "") if mark is not None else "",
                "discussed_not_worse": bool(not_worse),
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
    agenda["rank"] = np.arange(1, len(agenda) + 1)
    agenda["position"] = agenda.groupby("supervisee").cumcount() + 1
    return agenda[AGENDA_COLUMNS].reset_index(drop=True)
