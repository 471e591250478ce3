"""The story of one episode, ready to draw: every layer of the client page as a tidy frame, with hover text
in clinical words, and the summary. Pure data — the views only map these frames onto marks.

Built from the episode's rows (``Service.episodes``, ``episode_ratings``, ``episode_items``) and the clinical
metrics for that episode (``ClinicalMetrics.for_episode``), so every flag here is the one the metrics layer
raised, with its rule.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alliance import style
from alliance.clinical import ClinicalMetrics
from alliance.metrics.etr import STATUS_WORDS
from alliance.trajectory import TRAJECTORY_COLUMNS, instrument_trajectory

REPAIR_WORDS = {"repaired": "repaired", "unrepaired": "not repaired", "open": "still open"}


def _day(d) -> str:
    return "" if d is None or pd.isna(d) else f"{pd.Timestamp(d):%d %b %Y}"


def _empty(columns) -> pd.DataFrame:
    """An empty layer with these columns (a copy: the story's builders add columns to it)."""
    return _empty_layer(tuple(columns)).copy()


@functools.cache
def _empty_layer(columns: tuple[str, ...]) -> pd.DataFrame:
    # Made once per set of columns: building a frame of typed empty columns costs about as much as a small
    # layer, and a story starts from six of them.
    return pd.DataFrame(
        {c: pd.Series(dtype=float if c not in ("description", "status", "kind") else object) for c in columns}
    )


@dataclass
class EpisodeStory:
    """Everything the client page shows for one episode and one outcome / alliance instrument."""

    outcome: pd.DataFrame  # session_number, session_date, score, status, marker, colour, description
    alliance: pd.DataFrame  # session_number, session_date, score, description, below_cutoff
    band: pd.DataFrame  # session_number, session_date, p10, p25, p50, p75, p90
    rc_band: pd.DataFrame  # session_number, session_date, low, high
    cutoffs: dict  # construct -> cutoff value or None
    scales: dict  # construct -> (min, max)
    sudden: pd.DataFrame  # kind, session_number, x1, y0, y1, date0, date1, description
    ruptures: pd.DataFrame  # session_number, end_session, status, score, date0, date1, description
    dips: pd.DataFrame  # session_number, session_date, score, description
    items: pd.DataFrame  # session_number, session_date, label, subscale, score
    events: pd.DataFrame  # session_number, session_date, row, kind, description
    summary: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    methods: list = field(default_factory=list)


def _dated(
    frame: pd.DataFrame, dates: pd.Series, column="session_number", out="session_date"
) -> pd.DataFrame:
    frame = frame.copy()
    if frame.empty:
        frame[out] = pd.Series(index=frame.index, dtype="datetime64[ns]")
    else:
        frame[out] = pd.to_datetime(frame[column].map(dates))
    return frame


def build_story(
    info: dict,
    ratings: pd.DataFrame,
    metrics: ClinicalMetrics,
    outcome_instrument: str | None,
    alliance_instrument: str | None,
    items: pd.DataFrame | None = None,
) -> EpisodeStory:
    """Assemble the layers for one episode. ``metrics`` must be ``ClinicalMetrics.for_episode(...)``."""
    dates = (
        ratings.drop_duplicates("session_number")
        .set_index("session_number")["session_date"]
        .pipe(pd.to_datetime)
    )
    last_session = int(ratings["session_number"].max()) if len(ratings) else 0
    notes, methods = [], []
    summary: dict = {"info": info}

    # -- outcome ----------------------------------------------------------------------------------------
    outcome = (
        instrument_trajectory(ratings, outcome_instrument)
        if outcome_instrument
        else _empty(TRAJECTORY_COLUMNS)
    )
    band = _empty(["session_number", "session_date", "p10", "p25", "p50", "p75", "p90"])
    rc_band = _empty(["session_number", "session_date", "low", "high"])
    sudden = _empty(["kind", "session_number", "x1", "y0", "y1", "date0", "date1", "description"])
    cutoffs: dict = {"outcome": None, "alliance": None}
    scales: dict = {"outcome": (0.0, 1.0), "alliance": (0.0, 1.0)}
    rows = ratings[ratings["instrument"] == outcome_instrument] if outcome_instrument else ratings.iloc[:0]
    if len(rows):
        first = rows.iloc[0]
        scales["outcome"] = (float(first["min_score"]), float(first["max_score"]))
        cutoffs["outcome"] = None if pd.isna(first["cutoff"]) else float(first["cutoff"])
    change = metrics.episode_change
    change = change[change["instrument"] == outcome_instrument] if len(change) else change
    status = metrics.session_status
    status = status[status["instrument"] == outcome_instrument] if len(status) else status
    if len(status) and len(outcome):
        outcome = outcome.merge(
            status[["session_number", "status", "reason"]], on="session_number", how="left"
        )
    else:
        outcome = outcome.assign(status=None, reason=None)
    outcome["status"] = outcome["status"].astype(object).where(outcome["status"].notna(), None)
    outcome["colour"] = outcome["status"].map(style.STATUS_COLOURS).fillna(style.CONSTRUCT_COLOURS["outcome"])
    outcome["marker"] = outcome["status"].map(style.STATUS_MARKERS).fillna("circle")
    outcome["description"] = [
        d if pd.isna(s) or st is None else f"{d} · {STATUS_WORDS.get(st, st)}: {reason}"
        for d, s, st, reason in zip(
            outcome["description"], outcome["score"], outcome["status"], outcome["reason"], strict=True
        )
    ]

    if len(change):
        ch = change.iloc[0]
        intake = float(ch["intake"])
        summary["change"] = ch.to_dict()
        rc = rows.iloc[0]["reliable_change"] if len(rows) else np.nan
        method = ch["rc_method"]
        methods.append(f"reliable change: {method}")
        # Reliable-change band: within it, a score is not reliably different from the intake.
        if not pd.isna(rc):
            sessions = np.arange(1, max(last_session, 2) + 1)
            lo, hi = scales["outcome"]
            rc_band = pd.DataFrame(
                {
                    "session_number": sessions,
                    "low": np.clip(intake - rc, lo, hi),
                    "high": np.clip(intake + rc, lo, hi),
                }
            )
            rc_band = _dated(rc_band, dates)
        bands = metrics.etr_bands
        if len(bands):
            mine = bands[bands["instrument"] == outcome_instrument]
            if len(mine):
                centres = mine["intake_bin"].unique()
                nearest = centres[np.argmin(np.abs(centres - intake))]
                half = mine.loc[mine["intake_bin"] == nearest, "half_width"].iloc[0]
                if abs(nearest - intake) <= half:
                    b = mine[mine["intake_bin"] == nearest]
                    b = b[b["session_number"] <= max(last_session + 2, 6)]
                    band = _dated(
                        b[["session_number", "p10", "p25", "p50", "p75", "p90"]].reset_index(drop=True), dates
                    )
                    methods.append(
                        f"expected course: intake {nearest:g} ± {half:g} "
                        f"({int(b['n_episodes'].iloc[0])} closed episodes of this service), "
                        f"{metrics.settings.etr.describe()}"
                    )
        if band.empty:
            notes.append(
                f"No expected-course band for a {outcome_instrument} intake of {intake:g}: "
                "too few similar closed episodes. Status uses the rational fallback."
            )
        st = metrics.episode_status
        st = st[st["instrument"] == outcome_instrument]
        if len(st):
            summary["status"] = st.iloc[0].to_dict()

    se = metrics.sudden_events
    if len(se):
        se = se[se["instrument"] == outcome_instrument]
        score_at = rows.set_index("session_number")["score"] if len(rows) else pd.Series(dtype=float)
        if len(se):
            n = se["session"].astype(int)
            sudden = pd.DataFrame(
                {
                    "kind": se["kind"].to_numpy(),
                    "session_number": n.to_numpy(dtype=float),
                    "x1": (n + 1).to_numpy(dtype=float),
                    "y0": n.map(score_at).to_numpy(dtype=float),
                    "y1": (n + 1).map(score_at).to_numpy(dtype=float),
                }
            )
            sudden["date0"] = sudden["session_number"].map(dates)
            sudden["date1"] = sudden["x1"].map(dates)
            sudden["description"] = [
                f"Candidate sudden {k} between sessions {int(a)} and {int(b)}: {outcome_instrument} {y0:g} → "
                f"{y1:g} ({abs(m):g} points{', reversed later' if rev else ''})"
                for k, a, b, y0, y1, m, rev in zip(
                    sudden["kind"],
                    sudden["session_number"],
                    sudden["x1"],
                    sudden["y0"],
                    sudden["y1"],
                    se["magnitude"],
                    se["reversal"],
                    strict=True,
                )
            ]
            methods.append("sudden gains and losses: " + se["method"].iloc[0])
        summary["sudden"] = se

    # -- alliance ---------------------------------------------------------------------------------------
    alliance = (
        instrument_trajectory(ratings, alliance_instrument)
        if alliance_instrument
        else _empty(TRAJECTORY_COLUMNS)
    )
    ruptures = _empty(["session_number", "end_session", "status", "score", "date0", "date1", "description"])
    dips = _empty(["session_number", "session_date", "score", "description"])
    arows = ratings[ratings["instrument"] == alliance_instrument] if alliance_instrument else ratings.iloc[:0]
    if len(arows):
        first = arows.iloc[0]
        scales["alliance"] = (float(first["min_score"]), float(first["max_score"]))
        cutoffs["alliance"] = None if pd.isna(first["cutoff"]) else float(first["cutoff"])
    ae = metrics.alliance_events
    ae = ae[ae["instrument"] == alliance_instrument] if len(ae) else ae
    extra: dict[int, list[str]] = {}
    if len(ae):
        rup = ae[ae["event"] == "rupture"]
        if len(rup):
            end = rup["repair_session"].astype("Float64").fillna(float(last_session) + 0.5).astype(float)
            ruptures = pd.DataFrame(
                {
                    "session_number": rup["session_number"].to_numpy(dtype=float),
                    "end_session": end.to_numpy(),
                    "status": rup["repair_status"].astype(str).to_numpy(),
                    "score": rup["score"].to_numpy(dtype=float),
                    "description": rup["detail"].astype(str).to_numpy(),
                }
            )
            ruptures["date0"] = ruptures["session_number"].map(dates)
            ruptures["date1"] = (
                ruptures["end_session"].map(dates).fillna(dates.max() if len(dates) else pd.NaT)
            )
            for r in rup.itertuples():
                status_words = REPAIR_WORDS.get(str(r.repair_status), str(r.repair_status))
                at = f" at session {int(r.repair_session)}" if not pd.isna(r.repair_session) else ""
                extra.setdefault(int(r.session_number), []).append(f"rupture, {status_words}{at}")
        dp = ae[ae["event"] == "dip"]
        if len(dp):
            dips = _dated(
                pd.DataFrame(
                    {
                        "session_number": dp["session_number"].to_numpy(dtype=float),
                        "score": dp["score"].to_numpy(dtype=float),
                        "description": dp["detail"].astype(str).to_numpy(),
                    }
                ),
                dates,
            )
        for kind in ("ceiling", "late_decline"):
            ev = ae[ae["event"] == kind]
            if len(ev):
                summary[kind] = str(ev["detail"].iloc[0])
        summary["alliance_events"] = ae
    if alliance_instrument:
        methods.append("alliance: " + metrics.settings.alliance.describe())
    if not alliance.empty:
        alliance["description"] = [
            d + ("; " + "; ".join(extra[int(n)]) if int(n) in extra else "")
            for d, n in zip(alliance["description"], alliance["session_number"], strict=True)
        ]
        rated = alliance.dropna(subset=["score"])
        if len(rated):
            slope = np.polyfit(rated["session_number"], rated["score"], 1)[0] if len(rated) >= 3 else np.nan
            summary["alliance_mean"] = float(rated["score"].mean())
            summary["alliance_slope"] = float(slope)
            summary["alliance_n"] = len(rated)

    # -- items ------------------------------------------------------------------------------------------
    items = (
        items
        if items is not None and len(items)
        else _empty(["session_number", "item_no", "label", "subscale", "score"])
    )
    if len(items) and items["subscale"].notna().any():
        # WAI-SR: show the subscales (sums of their items), not twelve lines.
        items = (
            items.dropna(subset=["subscale"])
            .groupby(["session_number", "subscale"], as_index=False)["score"]
            .sum()
            .rename(columns={"subscale": "label"})
        )
    items = (
        _dated(items, dates) if len(items) else items.assign(session_date=pd.Series(dtype="datetime64[ns]"))
    )

    # -- events strip -----------------------------------------------------------------------------------
    ev_rows = []
    for code, frame in ((outcome_instrument, outcome), (alliance_instrument, alliance)):
        if code and len(frame):
            for n in frame.loc[frame["score"].isna(), "session_number"]:
                ev_rows.append((n, "Missing rating", "missing", f"Session {int(n)}: {code} not rated"))
    for o in outcome.itertuples():
        if o.status == "red":
            ev_rows.append(
                (o.session_number, "Alert", "red", f"Session {int(o.session_number)}: {o.description}")
            )
    for r in ruptures.itertuples():
        if r.status != "repaired":
            ev_rows.append(
                (
                    r.session_number,
                    "Alert",
                    "rupture",
                    f"Session {int(r.session_number)}: rupture {REPAIR_WORDS.get(r.status, r.status)}",
                )
            )
    for s in sudden.itertuples():
        if s.kind == "loss":
            ev_rows.append((s.x1, "Alert", "loss", s.description))
    end = metrics.episode_end
    end_type = end["end_type"].iloc[0] if len(end) else None
    summary["end"] = end.iloc[0].to_dict() if len(end) else {}
    if end_type and end_type != "open" and last_session:
        words = {
            "planned": "Planned ending",
            "dropout": "Unplanned ending (dropout)",
            "transferred": "Transferred",
            "unplanned after improvement": "Unplanned ending after improvement",
        }
        ev_rows.append(
            (
                float(last_session),
                "End",
                "planned" if end_type == "planned" else "unplanned",
                f"Session {last_session}: {words.get(end_type, end_type)}",
            )
        )
    events = pd.DataFrame(ev_rows, columns=["session_number", "row", "kind", "description"])
    events["session_number"] = events["session_number"].astype(float)
    events = _dated(events, dates)

    return EpisodeStory(
        outcome=outcome,
        alliance=alliance,
        band=band,
        rc_band=rc_band,
        cutoffs=cutoffs,
        scales=scales,
        sudden=sudden,
        ruptures=ruptures,
        dips=dips,
        items=items,
        events=events,
        summary=summary,
        notes=notes,
        methods=methods,
    )
