"""A clinician's caseload: one row per episode with the flags that say who needs attention and why, the
headline figures with their n, the same figures by quarter, and every episode's change from intake.

Everything comes from the clinical-metrics layer (``ClinicalMetrics``) for the episodes in scope: no rule is
computed here, only gathered and put in words.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alliance.clinical import ClinicalMetrics
from alliance.flags import BY_KEY, CASELOAD_FLAGS, NO_SESSION_DAYS
from alliance.metrics.comparison_stats import wilson_interval


def caseload_table(metrics: ClinicalMetrics) -> pd.DataFrame:
    """One row per episode in scope, with the primary outcome's course, status, alliance and flags."""
    end = metrics.episode_end.set_index("episode_id")
    change = metrics.episode_change
    change = change[change["primary"].astype(bool)].set_index("episode_id") if len(change) else change
    status = metrics.episode_status
    status = status[status["primary"].astype(bool)].set_index("episode_id") if len(status) else status
    table = end[
        [
            "client_id",
            "clinician_id",
            "team_id",
            "population",
            "start_date",
            "last_session_date",
            "n_sessions",
            "closed",
            "end_type",
            "dropout",
            "days_since_last_session",
        ]
    ].copy()
    for col in ("instrument", "intake", "latest", "improvement", "category", "n_ratings"):
        table[col] = change[col] if col in change else np.nan
    table["reliable_deterioration"] = (
        change["reliable_deterioration"].astype("boolean") if "reliable_deterioration" in change else pd.NA
    )
    for col in ("status", "status_words", "reason"):
        table[col] = status[col] if col in status else None

    alliance = metrics.alliance_ratings
    ae = metrics.alliance_events
    if len(alliance):
        last = alliance.sort_values("session_number").groupby("episode_id")
        table["alliance_instrument"] = last["instrument"].last()
        table["alliance_latest"] = last["score"].last()
        table["alliance_lowest"] = last["score"].min()
    else:
        table["alliance_instrument"] = None
        table["alliance_latest"] = table["alliance_lowest"] = np.nan

    def has(event, extra=None):
        if ae is None or ae.empty:
            return pd.Series(False, index=table.index)
        rows = ae[ae["event"] == event]
        if extra is not None:
            rows = rows[extra(rows)]
        return table.index.isin(rows["episode_id"])

    se = metrics.sudden_events
    table["flag_deterioration"] = table["reliable_deterioration"].fillna(False).astype(bool)
    table["flag_not_on_track"] = table["status"].eq("red")
    # 'open' (fewer than R later ratings) counts too: the rupture has not been repaired, and in a closed
    # episode it never was.
    table["flag_unrepaired_rupture"] = has(
        "rupture", lambda r: r["repair_status"].astype(str).isin(["unrepaired", "open"])
    )
    table["flag_sudden_loss"] = (
        table.index.isin(se.loc[se["kind"] == "loss", "episode_id"]) if len(se) else False
    )
    improved = (
        change["reliable_improvement"].astype("boolean").fillna(False)
        if len(change)
        else pd.Series(dtype=bool)
    )
    table["flag_no_recent_session"] = (
        ~table["closed"]
        & (table["days_since_last_session"] >= NO_SESSION_DAYS)
        & ~table.index.isin(improved[improved].index)
    )
    table["flag_ceiling"] = has("ceiling")
    # Every caseload flag of the registry (alliance.flags) has its detector above.
    flag_cols = [f"flag_{k}" for k in CASELOAD_FLAGS]
    table["flags"] = [
        ", ".join(CASELOAD_FLAGS[c.removeprefix("flag_")] for c in flag_cols if row[c])
        for _, row in table[flag_cols].iterrows()
    ]
    table["n_flags"] = table[flag_cols].sum(axis=1)
    # The agenda rank of the strongest flag raised (1 is the strongest; NaN: none), for "strongest first".
    ranks = pd.DataFrame(
        {c: np.where(table[c], BY_KEY[c.removeprefix("flag_")].rank, np.nan) for c in flag_cols}
    )
    table["strongest_flag"] = ranks.min(axis=1).to_numpy() if flag_cols else np.nan
    # The picture highlights the episodes that need attention; a soft signal (ceiling) alone does not.
    table["attention"] = table[[f"flag_{k}" for k in CASELOAD_FLAGS if BY_KEY[k].attention]].any(axis=1)
    return table.reset_index()


def _share(successes: int, n: int) -> dict:
    low, high = wilson_interval(np.array([successes]), np.array([n]))
    return {"value": successes / n if n else np.nan, "low": float(low[0]), "high": float(high[0]), "n": n}


def caseload_headlines(table: pd.DataFrame, alliance_sessions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Headline figures with n and 95 % Wilson intervals for shares (docs/methods.md §10)."""
    open_ = table[~table["closed"]]
    closed = table[table["closed"] & table["category"].notna()]
    rows = [
        {
            "figure": "open episodes",
            "value": float(len(open_)),
            "low": np.nan,
            "high": np.nan,
            "n": len(table),
        }
    ]
    with_status = open_[open_["status"].notna()]
    rows.append(
        {
            "figure": "on track (open)",
            **_share(int(with_status["status"].isin(["green", "white"]).sum()), len(with_status)),
        }
    )
    rows.append(
        {
            "figure": "reliably improved (closed)",
            **_share(int(closed["category"].isin(["recovered", "improved"]).sum()), len(closed)),
        }
    )
    rows.append(
        {
            "figure": "recovered (closed)",
            **_share(int((closed["category"] == "recovered").sum()), len(closed)),
        }
    )
    all_closed = table[table["closed"]]
    rows.append({"figure": "dropout (closed)", **_share(int(all_closed["dropout"].sum()), len(all_closed))})
    if alliance_sessions is not None and len(alliance_sessions):
        # One pair of figures per alliance measure in use: SRS and WAI-SR totals are on different scales, and
        # WAI-SR has no published cut-off (its "below" is the client's own baseline rule).
        for code, a in alliance_sessions.groupby("instrument", sort=True):
            rows.append(
                {
                    "figure": f"mean alliance ({code})",
                    "value": float(a["score"].mean()),
                    "low": np.nan,
                    "high": np.nan,
                    "n": len(a),
                }
            )
            below = a["below_cutoff"].astype(bool)
            words = (
                f"{code} sessions below the client's own baseline"
                if code == "WAI-SR"
                else f"{code} sessions below the alliance cut-off"
            )
            rows.append({"figure": words, **_share(int(below.sum()), len(a))})
    return pd.DataFrame(rows)


def alliance_sessions(metrics: ClinicalMetrics) -> pd.DataFrame:
    """Every alliance rating in scope with whether it was below the cut-off (or the WAI-SR baseline rule)."""
    return metrics.alliance_sessions()


def caseload_trend(table: pd.DataFrame, sessions: pd.DataFrame) -> pd.DataFrame:
    """The headline figures by calendar quarter, for self-review: closed episodes by the quarter of their last
    session, alliance by the quarter of the session."""
    closed = table[table["closed"]].copy()
    closed["quarter"] = pd.PeriodIndex(pd.to_datetime(closed["last_session_date"]), freq="Q").astype(str)
    rows = []
    for quarter, q in closed.groupby("quarter"):
        rated = q[q["category"].notna()]
        n = len(rated)
        rows.append(
            {
                "quarter": quarter,
                "closed": len(q),
                "closed_with_change": n,
                "reliably_improved": rated["category"].isin(["recovered", "improved"]).mean()
                if n
                else np.nan,
                "recovered": (rated["category"] == "recovered").mean() if n else np.nan,
                "dropout": q["dropout"].mean() if len(q) else np.nan,
            }
        )
    trend = pd.DataFrame(
        rows, columns=["quarter", "closed", "closed_with_change", "reliably_improved", "recovered", "dropout"]
    )
    if len(sessions):
        # One alliance measure (the caseload's most rated): SRS and WAI-SR totals are on different scales.
        code = sessions["instrument"].value_counts().index[0]
        s = sessions[sessions["instrument"] == code].copy()
        s["quarter"] = pd.PeriodIndex(pd.to_datetime(s["session_date"]), freq="Q").astype(str)
        a = (
            s.groupby("quarter")
            .agg(
                alliance_sessions=("score", "size"),
                alliance_mean=("score", "mean"),
                below_cutoff=("below_cutoff", "mean"),
            )
            .reset_index()
            .assign(alliance_measure=code)
        )
        trend = trend.merge(a, on="quarter", how="outer")
    for c in ("closed", "closed_with_change"):
        trend[c] = trend[c].fillna(0).astype(int)
    return trend.sort_values("quarter").reset_index(drop=True)


def caseload_courses(metrics: ClinicalMetrics, table: pd.DataFrame, instrument: str) -> pd.DataFrame:
    """Every episode's change from intake by session on one outcome instrument, in the better direction
    (up is better for every instrument), with the episode's flags for highlighting."""
    r = metrics.outcome_ratings
    r = r[r["instrument"] == instrument].sort_values(["episode_id", "session_number"])
    if r.empty:
        return pd.DataFrame(
            columns=["episode_id", "client_id", "session_number", "change", "flagged", "flags"]
        )
    hib = bool(metrics.norms.loc[metrics.norms["instrument"] == instrument, "higher_is_better"].iloc[0])
    intake = r.groupby("episode_id")["score"].transform("first")
    change = (r["score"] - intake) if hib else (intake - r["score"])
    info = table.set_index("episode_id")[["client_id", "attention", "flags"]]
    out = pd.DataFrame(
        {"episode_id": r["episode_id"], "session_number": r["session_number"], "change": change}
    )
    out = out.join(info, on="episode_id", how="inner")  # only the episodes the table shows
    out["flagged"] = out["attention"].astype(bool)
    return out.drop(columns="attention").reset_index(drop=True)


def expected_change_band(metrics: ClinicalMetrics, instrument: str, max_session: int = 20) -> pd.DataFrame:
    """Percentiles (10, 25, 50, 75, 90) of change from intake by session across the service's closed
    episodes on ``instrument`` (better direction), for the caseload picture's background."""
    band = metrics.expected_change
    band = band[(band["instrument"] == instrument) & (band["session_number"] <= max_session)]
    return band.drop(columns="instrument").reset_index(drop=True)
