"""Fair clinician comparisons (docs/methods.md §10), assembled from the clinical-metrics frames — the same
frames ``alliance metrics`` exports, so every figure here can be recomputed from episode_change.csv,
episode_end.csv, episode_alliance.csv and alliance_events.csv (a test does exactly that for one clinician)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alliance.metrics.comparison_stats import (
    MIN_EPISODES_RANKED,
    effect_size_episodes,
    effect_sizes,
    rank_eligible,
    rate_table,
    shrunken_estimates,
)

RATES = {
    "reliably_improved": "reliably improved",
    "recovered": "recovered",
    "deteriorated": "reliably deteriorated",
    "dropout": "dropped out",
}


#: What the funnel plot can show: each rate, and the pre–post effect size.
MEASURES = {**{f"{k}_rate": v for k, v in RATES.items()}, "es": "pre–post effect size"}


@dataclass(frozen=True)
class ComparisonFilter:
    """Which episodes enter the comparison."""

    instrument: str
    start: dt.date | None = None  # closed episodes whose last session falls in [start, end]
    end: dt.date | None = None
    team_id: str | None = None
    population: str | None = None
    minimum: int = MIN_EPISODES_RANKED


def comparison_frames(
    change: pd.DataFrame,
    end: pd.DataFrame,
    episode_alliance: pd.DataFrame,
    f: ComparisonFilter,
) -> dict[str, object]:
    """Per-clinician table, the flags behind the rates, the effect-size episodes and the shrinkage fit.

    ``change``, ``end`` and ``episode_alliance`` have the columns of the exported CSVs (episode_change.csv,
    episode_end.csv, episode_alliance.csv).
    """
    # Only episodes rated on the compared instrument: clinicians using other measures are not in this table.
    episodes = end[
        end["episode_id"].isin(change.loc[change["instrument"] == f.instrument, "episode_id"])
    ].copy()
    if f.team_id:
        episodes = episodes[episodes["team_id"] == f.team_id]
    if f.population:
        episodes = episodes[episodes["population"] == f.population]
    last = pd.to_datetime(episodes["last_session_date"])
    in_period = pd.Series(True, index=episodes.index)
    if f.start:
        in_period &= last >= pd.Timestamp(f.start)
    if f.end:
        in_period &= last <= pd.Timestamp(f.end)
    closed = episodes[episodes["closed"].astype(bool) & in_period]
    open_ = episodes[~episodes["closed"].astype(bool)]

    primary = change[(change["instrument"] == f.instrument)]
    outcomes = closed.merge(primary, on=["episode_id", "clinician_id"], how="inner", suffixes=("", "_change"))
    # Rates: closed episodes with the instrument and at least two ratings (a change to judge).
    judged = outcomes[outcomes["n_ratings"] >= 2]
    flags = pd.DataFrame(
        {
            "clinician_id": judged["clinician_id"],
            "reliably_improved": judged["reliable_improvement"].astype("boolean"),
            "recovered": judged["category"].astype(str).eq("recovered"),
            "deteriorated": judged["reliable_deterioration"].astype("boolean"),
            "dropout": judged["dropout"].astype(bool),
        }
    )
    rates = rate_table(flags, "clinician_id", list(RATES))

    es_input = effect_size_episodes(primary, closed, f.instrument)
    es = effect_sizes(es_input) if len(es_input) >= 3 else pd.DataFrame()
    shrink = (
        shrunken_estimates(es_input["improvement"], es_input["clinician_id"]) if len(es_input) >= 3 else None
    )

    # Alliance: mean, share of sessions below the cut-off, ruptures per 100 sessions, share repaired — added
    # up from the per-episode summaries (the same numbers as counting every rating and event).
    ids = set(closed["episode_id"]) | set(open_["episode_id"])
    a = episode_alliance[episode_alliance["episode_id"].isin(ids)].merge(
        episodes[["episode_id", "clinician_id"]], on="episode_id"
    )
    a = a.assign(score_sum=a["mean_score"] * a["n_ratings"])
    per = a.groupby("clinician_id")[
        ["n_ratings", "score_sum", "n_below_cutoff", "ruptures", "repaired"]
    ].sum()
    alliance = pd.DataFrame(
        {
            "alliance_sessions": per["n_ratings"],
            "mean_alliance": per["score_sum"] / per["n_ratings"],
            "below_cutoff": per["n_below_cutoff"] / per["n_ratings"],
            "ruptures": per["ruptures"],
            "repaired": per["repaired"],
        }
    )
    alliance["ruptures_per_100"] = 100 * alliance["ruptures"] / alliance["alliance_sessions"]
    alliance["share_repaired"] = np.where(
        alliance["ruptures"] > 0, alliance["repaired"] / alliance["ruptures"], np.nan
    )

    table = pd.DataFrame(
        {
            "team_id": episodes.groupby("clinician_id")["team_id"].first(),
            "open": open_.groupby("clinician_id").size(),
            "closed": closed.groupby("clinician_id").size(),
            "mean_sessions": closed.groupby("clinician_id")["n_sessions"].mean(),
            "mean_intake_severity": outcomes.groupby("clinician_id")["intake_severity"].mean(),
        }
    )
    table[["open", "closed"]] = table[["open", "closed"]].fillna(0).astype(int)
    if len(es):
        table = table.join(
            es[["n", "es", "es_low", "es_high", "saes", "saes_low", "saes_high"]].rename(
                columns={"n": "n_es"}
            )
        )
    wide = rates.pivot(index="clinician_id", columns="measure", values=["count", "n", "rate", "low", "high"])
    for m in RATES:
        for stat in ("count", "n", "rate", "low", "high"):
            table[f"{m}_{stat}"] = wide[(stat, m)] if (stat, m) in wide else np.nan
    table = table.join(alliance)
    table["eligible"] = table["closed"] >= f.minimum
    score = table["saes"] if "saes" in table else table["reliably_improved_rate"]
    table["rank"] = rank_eligible(score, table["closed"].where(table["eligible"], 0), f.minimum)
    table.index.name = "clinician_id"
    table = table.reset_index()
    return {
        "table": table,
        "table_text": table_text(table),
        "rates": rates,
        "es": es,
        "es_episodes": es_input,
        "shrink": shrink,
        "flags": flags,
    }


def table_text(t: pd.DataFrame) -> pd.DataFrame:
    """What the comparison table shows, one row per clinician of ``comparison_frames``' table: ranked
    clinicians first, by rank; each rate with its 95 % interval and n, each effect size with its interval.

    Made once with the comparison and kept with it in the process's cache: formatting a service's thousands
    of clinicians cell by cell took about 40 ms, and measuring the columns' widths another 15 ms, of every
    new session of the comparison page. The widths of every column but the clinician's (whose names depend
    on the viewer) are in ``attrs["widths"]``."""
    from alliance.style import column_widths, percent

    if t is None or t.empty:
        return pd.DataFrame()
    t = t.sort_values(["eligible", "rank"], ascending=[False, True])

    def rate(m):
        return [
            f"{percent(r)} ({percent(lo)}–{percent(hi)}) n={int(n) if not pd.isna(n) else 0}"
            for r, lo, hi, n in zip(t[f"{m}_rate"], t[f"{m}_low"], t[f"{m}_high"], t[f"{m}_n"], strict=True)
        ]

    def interval(v, lo, hi):
        return [
            ("—" if pd.isna(a) else f"{a:.2f} ({b:.2f} to {c:.2f})")
            for a, b, c in zip(
                t[v] if v in t else [np.nan] * len(t),
                t[lo] if lo in t else [np.nan] * len(t),
                t[hi] if hi in t else [np.nan] * len(t),
                strict=True,
            )
        ]

    text = pd.DataFrame(
        {
            "rank": [("—" if pd.isna(r) else f"{int(r)}") for r in t["rank"]],
            "clinician_id": t["clinician_id"],
            "team": t["team_id"],
            "open": t["open"],
            "closed": t["closed"],
            "mean intake severity": t["mean_intake_severity"].round(1),
            "effect size (95 % CI)": interval("es", "es_low", "es_high"),
            "severity-adjusted ES (95 % CI)": interval("saes", "saes_low", "saes_high"),
            **{f"{w} (95 % CI)": rate(m) for m, w in RATES.items()},
            "mean alliance": t["mean_alliance"].round(1),
            "sessions below alliance cut-off": t["below_cutoff"].map(percent),
            "ruptures per 100 sessions": t["ruptures_per_100"].round(1),
            "ruptures repaired": t["share_repaired"].map(percent),
            "mean sessions": t["mean_sessions"].round(1),
            "eligible": t["eligible"],
        }
    )
    text.attrs["widths"] = column_widths(text.drop(columns=["clinician_id"]))
    return text


# -- who the viewer may see by name --------------------------------------------------------------------------
def _letters(i: int) -> str:
    """0 → A, 25 → Z, 26 → AA, …"""
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def clinician_names(codes, *, named, you: str = "", key: bytes) -> dict[str, str]:
    """How each clinician code is shown to a viewer: "you (CODE)" for the viewer's own, the code for a
    clinician in ``named`` (None: every clinician), else "clinician A", "clinician B", ….

    Letters follow a keyed hash of the codes (``key``: a server secret with the data version), not the codes'
    order, so a letter says nothing about the code behind it; they are given over every code passed (the
    whole service), so a clinician keeps their letter whatever the filters, for as long as the data version.
    """
    import hashlib
    import hmac

    codes = sorted({str(c) for c in codes})
    order = sorted(codes, key=lambda c: hmac.new(key, c.encode("utf-8"), hashlib.sha256).digest())
    letter = {c: _letters(i) for i, c in enumerate(order)}
    names = {}
    for c in codes:
        if you and c == you:
            names[c] = f"you ({c})"
        elif named is None or c in named:
            names[c] = c
        else:
            names[c] = f"clinician {letter[c]}"
    return names


def rename_clinicians(frames: dict[str, object], names: dict[str, str]) -> dict[str, object]:
    """The comparison frames with every clinician code replaced by its shown name (a code missing from
    ``names`` is hidden too), and no episode code left in them: what a view receives is all it can show."""
    import dataclasses

    def shown(code) -> str:
        return names.get(str(code), "clinician (not named)")

    def column(df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        if "clinician_id" in out:
            out["clinician_id"] = out["clinician_id"].map(shown)
        out = out.drop(columns=[c for c in ("episode_id", "client_id") if c in out])
        out.attrs = dict(df.attrs)
        return out

    def index(df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        out.index = pd.Index([shown(c) for c in df.index], name=df.index.name)
        out.attrs = dict(df.attrs)
        return out

    renamed: dict[str, object] = {}
    for name, value in frames.items():
        if name == "shrink" and value is not None:
            renamed[name] = dataclasses.replace(value, table=index(value.table))
        elif name == "es" and isinstance(value, pd.DataFrame) and "clinician_id" not in value:
            renamed[name] = index(value)
        elif isinstance(value, pd.DataFrame):
            renamed[name] = column(value)
        else:
            renamed[name] = value
    return renamed


class NamedComparisons:
    """A data store whose comparisons show each clinician as the viewer may see them (``clinician_names``).

    ``store`` is an ``alliance.datastore.DataStore``; its cached comparisons keep the codes, and every answer
    given out through this wrapper is renamed."""

    def __init__(self, store, names: dict[str, str]):
        self.store = store
        self.names = dict(names)

    def metrics(self):
        return self.store.metrics()

    def comparison_options(self, scope=None) -> dict:
        return self.store.comparison_options(scope)  # measures, teams and dates: no clinician in them

    def comparison(self, f: ComparisonFilter) -> dict:
        return rename_clinicians(self.store.comparison(f), self.names)
