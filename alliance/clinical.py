"""The clinical-metrics layer every page and export uses: episode change, sudden events, alliance events,
expected-response bands, on-track status and episode end — for the episodes in a viewer's scope.

Rules live in ``alliance.metrics`` (each reproduced against its reference); this module feeds them from the
named queries in one pass per construct (no per-episode loop), with every threshold taken from the instrument
registry stored in the database or from :class:`MetricSettings`, and reports the method in force with each
result. ``alliance metrics --db PATH --out DIR`` writes the same frames as CSV (docs/metrics.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from alliance.metrics import FixedThreshold, JacobsonTruax, classify_change, jt_cutoffs, sudden_changes
from alliance.metrics.alliance_signals import AllianceRules, alliance_events, service_change_scale
from alliance.metrics.etr import EtrSettings, episode_status, etr_bands
from alliance.service import Service

CHANGE_COLUMNS = [
    "episode_id",
    "instrument",
    "n_ratings",
    "first_session",
    "latest_session",
    "intake",
    "latest",
    "clinician_id",
    "population",
    "change",
    "improvement",
    "rci",
    "reliable_improvement",
    "reliable_deterioration",
    "clinical_pre",
    "clinical_post",
    "category",
    "rc_method",
    "cutoff",
    "higher_is_better",
    "intake_severity",
    "latest_severity",
    "effect_size",
    "primary",
]


@dataclass(frozen=True)
class MetricSettings:
    """Named settings with documented defaults (docs/methods.md §5–9)."""

    alliance: AllianceRules = field(default_factory=AllianceRules)
    etr: EtrSettings = field(default_factory=EtrSettings)
    #: The service scale of session-to-session alliance change in the rupture rule (§7): "robust" (the SD of
    #: the changes outside ruptures, ceiling pairs left out) or "plain" (the SD of every change, as before).
    alliance_scale: str = "robust"
    #: Sudden events: crit1 cutoff per instrument (default: the instrument's reliable change), crit2 share
    #: of pregain severity, crit3 two-tailed alpha (suddengains' adjusted critical value).
    sudden_cutoff: dict[str, float] = field(default_factory=dict)
    sudden_pct: float = 0.25
    sudden_alpha: float = 0.05
    #: An episode without a discharge record is closed after this many days without a session (§9).
    inactivity_days: int = 60
    #: Norm set to use where an instrument has several (e.g. OQ-45 'NL').
    norm_set: str = "default"
    #: The date the data describe; default: alliance_meta 'data_as_of', else today.
    as_of: dt.date | None = None


def _norm_rules(registry: pd.DataFrame, norm_set: str) -> pd.DataFrame:
    """One row per instrument × population with the cut-off, clinical side and reliable-change method.

    Cut-off: the registry's, else Jacobson–Truax c (or a) from the norms. Reliable change: a published fixed
    threshold where there is one (inclusive), else Jacobson–Truax from SD and reliability.
    """
    reg = registry[(registry["norm_set"] == norm_set) | registry["norm_set"].isna()].copy()
    rows = []
    for r in reg.itertuples(index=False):
        cutoff, side, method = r.cutoff, r.clinical_side, None
        if not pd.isna(r.reliable_change):
            method = FixedThreshold(float(r.reliable_change), source=None)
        elif not pd.isna(r.clinical_sd) and not pd.isna(r.reliability):
            method = JacobsonTruax(float(r.clinical_sd), float(r.reliability))
        if pd.isna(cutoff) and not pd.isna(r.clinical_mean) and not pd.isna(r.clinical_sd):
            cuts = jt_cutoffs(
                r.clinical_mean,
                r.clinical_sd,
                None if pd.isna(r.functional_mean) else r.functional_mean,
                None if pd.isna(r.functional_sd) else r.functional_sd,
                higher_is_better=bool(r.higher_is_better),
            )
            cutoff = cuts["c"] if cuts["c"] is not None else cuts["a"]
            side = "below" if r.higher_is_better else "at_or_above"
        rows.append(
            dict(
                instrument=r.code,
                position=r.position,
                construct=r.construct,
                population=r.population if isinstance(r.population, str) else "adult",
                min_score=r.min_score,
                max_score=r.max_score,
                higher_is_better=bool(r.higher_is_better),
                cutoff=None if pd.isna(cutoff) else float(cutoff),
                clinical_side=side if isinstance(side, str) else None,
                rc_method=method,
            )
        )
    return pd.DataFrame(rows)


#: The columns of ``ClinicalMetrics.session_status`` (and of the stored ``metrics_session_status``).
SESSION_STATUS_COLUMNS = [
    "episode_id",
    "instrument",
    "session_number",
    "score",
    "status",
    "status_words",
    "reason",
    "method",
    "band_p10",
    "band_p25",
    "band_p50",
    "band_p75",
    "band_p90",
    "intake_bin",
]


class ClinicalMetrics:
    """Clinical metrics for the episodes a viewer may see; each frame is computed once and cached."""

    #: Service-wide aggregates, shared by an episode's metrics with the service's (see ``for_episode``).
    SHARED = ("as_of", "norms", "etr_bands", "service_scales", "expected_change")

    def __init__(self, service: Service, settings: MetricSettings | None = None):
        self.service = service
        self.settings = settings or MetricSettings()

    def for_scope(self, service: Service) -> ClinicalMetrics:
        """The same metrics for another (narrower) scope, sharing this object's service-wide aggregates."""
        m = ClinicalMetrics(service, self.settings)
        for name in self.SHARED:
            m.__dict__[name] = getattr(self, name)
        return m

    def client_list(self, clinician_id: str) -> pd.DataFrame:
        """One clinician's clients within the scope (``Service.clients``); the store reads its own copy."""
        return self.service.clients(clinician_id)

    def client_episodes(self, client_id: str) -> pd.DataFrame:
        """A client's episodes within the scope (``Service.episodes``); the store reads its own copy."""
        return self.service.episodes(client_id)

    def for_episode(self, episode: dict, ratings: pd.DataFrame) -> ClinicalMetrics:
        """The same metrics for one episode, from its rows of ``Service.episodes`` / ``episode_ratings``.

        The service-wide aggregates (expected-response bands, alliance SD, norms) are this object's, computed
        once and shared, so a page can follow one episode after another cheaply.
        """
        m = ClinicalMetrics(self.service, self.settings)
        for name in self.SHARED:
            m.__dict__[name] = getattr(self, name)
        m.__dict__["episodes"] = pd.DataFrame([episode])
        rated = ratings[ratings["score"].notna()]
        for construct in ("outcome", "alliance"):
            m.__dict__[f"{construct}_ratings"] = rated.loc[
                rated["construct"] == construct,
                ["episode_id", "instrument", "session_number", "score", "session_date"],
            ].reset_index(drop=True)
        return m

    @cached_property
    def session_status(self) -> pd.DataFrame:
        """Status at every outcome rating after the intake, as if it were the latest (the chart's points).

        Columns: episode_id, instrument, session_number, score, status, status_words, reason, method,
        band_p10 … band_p90, intake_bin.
        """
        empty = pd.DataFrame(columns=SESSION_STATUS_COLUMNS)
        if self.episode_change.empty:
            return empty
        ch = self.episode_change.set_index(["episode_id", "instrument"])
        r = self.outcome_ratings.join(
            ch[["intake", "higher_is_better", "cutoff", "rc_method", "clinical_pre"]],
            on=["episode_id", "instrument"],
            how="inner",
        )
        frames = []
        for code, sub in r.groupby("instrument", sort=True):
            first = sub.iloc[0]
            nrm = self.norms[(self.norms["instrument"] == code) & (self.norms["population"] == "adult")].iloc[
                0
            ]
            method = nrm["rc_method"]
            side = nrm["clinical_side"]
            cls = classify_change(
                sub["intake"],
                sub["score"],
                higher_is_better=bool(first["higher_is_better"]),
                cutoff=None if pd.isna(first["cutoff"]) else float(first["cutoff"]),
                method=method,
                at_cutoff="healthy" if side == "below" else "clinical",
            )
            latest = pd.DataFrame(
                {
                    "intake": sub["intake"],
                    "latest": sub["score"],
                    "latest_session": sub["session_number"],
                    "clinical_pre": cls["clinical_pre"],
                    "clinical_post": cls["clinical_post"],
                    "reliable_improvement": cls["reliable_improvement"],
                    "reliable_deterioration": cls["reliable_deterioration"],
                },
                index=sub.index,
            )
            bands = self.etr_bands
            bands = bands[bands["instrument"] == code] if not bands.empty else bands
            st = episode_status(
                latest, bands, higher_is_better=bool(first["higher_is_better"]), settings=self.settings.etr
            )
            frames.append(
                pd.concat([sub[["episode_id", "instrument", "session_number", "score"]], st], axis=1)
            )
        if not frames:
            return empty
        # In episode order: the stored table is read an episode at a time, and sorted rows let DuckDB skip
        # the row groups that cannot hold it.
        out = pd.concat(frames, ignore_index=True)
        out = out.sort_values(["episode_id", "instrument", "session_number"], kind="stable")
        return out.reindex(columns=SESSION_STATUS_COLUMNS).reset_index(drop=True)

    # -- inputs ---------------------------------------------------------------------------------------
    @cached_property
    def as_of(self) -> dt.date:
        if self.settings.as_of:
            return self.settings.as_of
        meta = dict(self.service.database_info().itertuples(index=False))
        return dt.date.fromisoformat(meta["data_as_of"]) if "data_as_of" in meta else dt.date.today()

    @cached_property
    def norms(self) -> pd.DataFrame:
        return _norm_rules(self.service.registry(), self.settings.norm_set)

    @cached_property
    def episodes(self) -> pd.DataFrame:
        return self.service.scoped_episodes()

    @cached_property
    def outcome_ratings(self) -> pd.DataFrame:
        return self.service.scoped_ratings("outcome")

    @cached_property
    def alliance_ratings(self) -> pd.DataFrame:
        return self.service.scoped_ratings("alliance")

    def _norm_for(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The norm row for each (instrument, population) of ``frame``, falling back to adult."""
        pop = frame[["instrument"]].assign(population=frame["population"])
        own = pop.merge(self.norms, on=["instrument", "population"], how="left")
        adult = pop[["instrument"]].merge(
            self.norms[self.norms["population"] == "adult"].drop(columns="population"),
            on="instrument",
            how="left",
        )
        return own.combine_first(adult).set_index(frame.index)

    # -- episode change -------------------------------------------------------------------------------
    @cached_property
    def episode_change(self) -> pd.DataFrame:
        """First vs latest rating per episode and outcome instrument (docs/methods.md §5).

        Columns: episode_id, clinician_id, instrument, population, n_ratings, first_session, latest_session,
        intake, latest, improvement, intake_severity, latest_severity, rci, reliable_improvement,
        reliable_deterioration, clinical_pre, clinical_post, category, effect_size, rc_method, cutoff,
        primary.
        """
        r = self.outcome_ratings.dropna(subset=["score"])
        g = r.sort_values(["episode_id", "instrument", "session_number"]).groupby(
            ["episode_id", "instrument"], sort=False
        )
        ends = g.agg(
            n_ratings=("score", "size"),
            first_session=("session_number", "first"),
            latest_session=("session_number", "last"),
            intake=("score", "first"),
            latest=("score", "last"),
        ).reset_index()
        ends = ends.merge(
            self.episodes[["episode_id", "clinician_id", "population"]], on="episode_id", how="left"
        )
        norm = self._norm_for(ends)
        parts = []
        for _, idx in ends.groupby(["instrument", norm["cutoff"].fillna(-1)]).groups.items():
            sub, nrm = ends.loc[idx], norm.loc[idx].iloc[0]
            method = nrm["rc_method"]
            if method is None or (isinstance(method, float) and np.isnan(method)):
                continue
            side = nrm["clinical_side"]
            cls = classify_change(
                sub["intake"],
                sub["latest"],
                higher_is_better=bool(nrm["higher_is_better"]),
                cutoff=nrm["cutoff"],
                method=method,
                # 'below 25' puts 25 itself in the healthy range; 'at or above 10' puts 10 in the clinical.
                at_cutoff="healthy" if side == "below" else "clinical",
            )
            cls["cutoff"] = nrm["cutoff"]
            cls["higher_is_better"] = bool(nrm["higher_is_better"])
            cls["max_score"], cls["min_score"] = nrm["max_score"], nrm["min_score"]
            parts.append(cls.drop(columns=["pre", "post"]))
        if not parts:  # no outcome ratings with a reliable-change rule in scope
            return pd.DataFrame(columns=CHANGE_COLUMNS)
        cls = pd.concat(parts)
        out = ends.join(cls.rename(columns={"method": "rc_method"}))
        # One rating is no change: no category, no reliable change (the page says "a single rating").
        single = out["n_ratings"] < 2
        for col in ("reliable_improvement", "reliable_deterioration", "clinical_post"):
            out.loc[single, col] = pd.NA
        out["category"] = out["category"].where(~single)
        hib = out["higher_is_better"].astype(bool)
        out["intake_severity"] = np.where(
            hib, out["max_score"] - out["intake"], out["intake"] - out["min_score"]
        )
        out["latest_severity"] = np.where(
            hib, out["max_score"] - out["latest"], out["latest"] - out["min_score"]
        )
        # Per-episode effect size: improvement in units of the service's intake SD for the instrument.
        # No spread of intake scores (a tiny reference) gives no effect size, not an infinite one.
        sd = out["instrument"].map(self.intake_sd)
        out["effect_size"] = out["improvement"] / sd.where(sd > 0)
        # The primary outcome of an episode: its most-rated outcome instrument (ties: registry order).
        out["position"] = out["instrument"].map(
            self.norms.drop_duplicates("instrument").set_index("instrument")["position"]
        )
        rank = out.sort_values(["episode_id", "n_ratings", "position"], ascending=[True, False, True])
        out["primary"] = False
        out.loc[rank.drop_duplicates("episode_id").index, "primary"] = True
        return out.drop(columns=["max_score", "min_score", "position"]).reset_index(drop=True)[CHANGE_COLUMNS]

    # -- sudden gains and losses ----------------------------------------------------------------------
    @cached_property
    def sudden_events(self) -> pd.DataFrame:
        """Candidate sudden gains and losses per episode and outcome instrument (docs/methods.md §6)."""
        s = self.settings
        r = self.outcome_ratings
        frames = []
        for code, sub in r.groupby("instrument", sort=True):
            nrm = self.norms[(self.norms["instrument"] == code) & (self.norms["population"] == "adult")]
            if nrm.empty:
                continue
            nrm = nrm.iloc[0]
            method = nrm["rc_method"]
            cutoff = s.sudden_cutoff.get(code)
            if cutoff is None:
                if isinstance(method, FixedThreshold):
                    cutoff = method.points
                elif isinstance(method, JacobsonTruax):
                    cutoff = method.minimum_change
                else:
                    continue
            hib = bool(nrm["higher_is_better"])
            sev = (nrm["max_score"] - sub["score"]) if hib else (sub["score"] - nrm["min_score"])
            ev = sudden_changes(
                pd.DataFrame(
                    {
                        "episode_id": sub["episode_id"],
                        "session_number": sub["session_number"],
                        "severity": sev,
                    }
                ),
                cutoff=cutoff,
                pct=s.sudden_pct,
                alpha=s.sudden_alpha,
            )
            if ev.empty:
                continue
            ev.insert(1, "instrument", code)
            ev["crit1_cutoff"] = cutoff
            ev["method"] = (
                f"Tang & DeRubeis (suddengains semantics): change ≥ {cutoff:g} points, ≥ "
                f"{s.sudden_pct:.0%} of pregain severity, and mean of up to 3 sessions either side differs "
                f"beyond the t critical value (alpha {s.sudden_alpha:g}); candidate events"
            )
            frames.append(ev)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    # -- alliance signals -----------------------------------------------------------------------------
    @cached_property
    def service_scales(self) -> pd.DataFrame:
        """Service-wide scales per instrument: SD of intake scores (closed episodes; effect sizes), the scale
        of session-to-session alliance change the rupture rule uses and the plain SD of that change
        (``_alliance_scales``). Columns: instrument, scale, value, n."""
        ref = self.reference.drop_duplicates(["instrument", "episode_id"]).groupby("instrument")["intake"]
        intake = pd.DataFrame({"value": ref.std(), "n": ref.size()}).reset_index().assign(scale="intake_sd")
        frames = [intake, self._alliance_scales()]
        frames = [f for f in frames if not f.empty]
        if not frames:
            return pd.DataFrame(columns=["instrument", "scale", "value", "n"])
        out = pd.concat(frames, ignore_index=True)[["instrument", "scale", "value", "n"]]
        return out.sort_values(["scale", "instrument"], ignore_index=True)

    def _alliance_scales(self) -> pd.DataFrame:
        """Per alliance instrument, the scale of session-to-session change the rupture rule uses
        (``alliance_change_sd``: robust, ruptures and ceiling pairs left out, unless settings say 'plain') and
        the plain SD of every change (``alliance_change_sd_all``), both service-wide (docs/methods.md §7)."""
        how = self.settings.alliance_scale
        if how not in ("robust", "plain"):
            raise ValueError(f"alliance_scale must be 'robust' or 'plain', got {how!r}")
        robust = how == "robust"
        ratings = self.service.alliance_change_sd()
        limits = self.norms.drop_duplicates("instrument").set_index("instrument")
        rows = []
        for code, sub in ratings.groupby("instrument", sort=True):
            lim = limits.loc[code] if code in limits.index else None
            scale = service_change_scale(
                sub[["episode_id", "session_number", "score"]],
                rules=self.settings.alliance,
                min_score=None if lim is None else float(lim["min_score"]),
                max_score=None if lim is None else float(lim["max_score"]),
            )
            rows.append(
                dict(
                    instrument=code,
                    scale="alliance_change_sd",
                    value=scale.sd if robust else scale.sd_all,
                    n=scale.n if robust else scale.n_all,
                )
            )
            rows.append(
                dict(instrument=code, scale="alliance_change_sd_all", value=scale.sd_all, n=scale.n_all)
            )
        return pd.DataFrame(rows, columns=["instrument", "scale", "value", "n"])

    def _scale(self, name: str) -> dict[str, float]:
        s = self.service_scales
        s = s[s["scale"] == name]
        return dict(zip(s["instrument"], s["value"].astype(float), strict=True))

    @property
    def intake_sd(self) -> dict[str, float]:
        """SD of intake scores per outcome instrument across the service's closed episodes."""
        return self._scale("intake_sd")

    @property
    def alliance_sd(self) -> dict[str, float]:
        """Service-wide scale of session-to-session change per alliance instrument, as the rupture rule uses
        it (robust by default: ruptures and ceiling pairs left out, docs/methods.md §7)."""
        return self._scale("alliance_change_sd")

    @cached_property
    def expected_change(self) -> pd.DataFrame:
        """Percentiles (10, 25, 50, 75, 90) of change from intake (better direction) by instrument and session
        1–20 across the service's closed episodes, where at least 10 episodes were rated at that session."""
        cols = ["instrument", "session_number", "p10", "p25", "p50", "p75", "p90", "n"]
        ref = self.reference[self.reference["session_number"] <= 20]
        frames = []
        hib = self.norms.drop_duplicates("instrument").set_index("instrument")["higher_is_better"]
        for code, sub in ref.groupby("instrument", sort=True):
            if code not in hib.index:
                continue
            change = (sub["score"] - sub["intake"]) if hib[code] else (sub["intake"] - sub["score"])
            g = change.groupby(sub["session_number"])
            band = g.quantile([0.1, 0.25, 0.5, 0.75, 0.9]).unstack()
            band.columns = ["p10", "p25", "p50", "p75", "p90"]
            band["n"] = g.size()
            frames.append(band[band["n"] >= 10].reset_index().assign(instrument=code))
        return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)

    @cached_property
    def alliance_events(self) -> pd.DataFrame:
        """Below cut-off, dips, ruptures with repair, ceiling and late decline (docs/methods.md §7)."""
        frames = []
        for code, sub in self.alliance_ratings.groupby("instrument", sort=True):
            sd = self.alliance_sd.get(code)
            if sd is None or not np.isfinite(sd) or sd <= 0:
                continue
            nrm = self.norms[(self.norms["instrument"] == code) & (self.norms["population"] == "adult")]
            cutoff = None if nrm.empty or pd.isna(nrm.iloc[0]["cutoff"]) else float(nrm.iloc[0]["cutoff"])
            rules = self.settings.alliance
            if cutoff is None:  # the ceiling rule is defined on the SRS's 0–40 scale
                rules = AllianceRules(**{**rules.__dict__, "ceiling_score": float("inf")})
            ev = alliance_events(
                sub[["episode_id", "session_number", "score"]],
                rules=rules,
                sd_service=float(sd),
                cutoff=cutoff,
                instrument=code,
                scale=self.settings.alliance_scale,
            )
            ev.insert(1, "instrument", code)
            ev["sd_service"] = sd
            frames.append(ev)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def alliance_sessions(self) -> pd.DataFrame:
        """Every alliance rating in scope with whether it was below the cut-off (or, for WAI-SR, the client's
        own baseline rule): the ``below_cutoff`` events of ``alliance_events`` as a flag per rating."""
        a = self.alliance_ratings
        out = a.copy()
        out["below_cutoff"] = False
        ae = self.alliance_events
        if a.empty or ae.empty:
            return out
        below = ae.loc[ae["event"] == "below_cutoff", ["episode_id", "instrument", "session_number"]]
        if len(below):
            key = pd.MultiIndex.from_frame(out[["episode_id", "instrument", "session_number"]])
            out["below_cutoff"] = key.isin(pd.MultiIndex.from_frame(below))
        return out

    @cached_property
    def episode_alliance(self) -> pd.DataFrame:
        """Per episode and alliance instrument: rated sessions, mean score, sessions below the cut-off,
        ruptures and repaired ruptures — what comparisons add up per clinician (docs/methods.md §10)."""
        cols = [
            "episode_id",
            "instrument",
            "n_ratings",
            "mean_score",
            "n_below_cutoff",
            "ruptures",
            "repaired",
        ]
        a = self.alliance_sessions()
        if a.empty:
            return pd.DataFrame(columns=cols)
        g = a.groupby(["episode_id", "instrument"], sort=True)
        out = g.agg(
            n_ratings=("score", "size"),
            mean_score=("score", "mean"),
            n_below_cutoff=("below_cutoff", "sum"),
        )
        ae = self.alliance_events
        rup = ae[ae["event"] == "rupture"] if len(ae) else ae
        if len(rup):
            key = ["episode_id", "instrument"]
            out["ruptures"] = rup.groupby(key).size()
            out["repaired"] = rup[rup["repair_status"].astype(str) == "repaired"].groupby(key).size()
        else:
            out["ruptures"], out["repaired"] = 0, 0
        out[["ruptures", "repaired"]] = out[["ruptures", "repaired"]].fillna(0).astype(int)
        out["n_below_cutoff"] = out["n_below_cutoff"].astype(int)
        return out.reset_index()[cols]

    # -- expected response and status -----------------------------------------------------------------
    @cached_property
    def reference(self) -> pd.DataFrame:
        return self.service.service_reference(self.as_of, self.settings.inactivity_days)

    @cached_property
    def etr_bands(self) -> pd.DataFrame:
        """Smoothed percentile bands per outcome instrument, intake bin and session (docs/methods.md §8)."""
        frames = []
        lim = self.norms.drop_duplicates("instrument").set_index("instrument")
        for code, sub in self.reference.groupby("instrument", sort=True):
            b = etr_bands(
                sub,
                min_score=lim.loc[code, "min_score"],
                max_score=lim.loc[code, "max_score"],
                settings=self.settings.etr,
            )
            b["instrument"] = code
            frames.append(b)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @cached_property
    def episode_status(self) -> pd.DataFrame:
        """Red / yellow / green / white per episode and outcome instrument at the latest rating."""
        ch = self.episode_change
        frames = []
        for code, sub in ch.groupby("instrument", sort=True):
            bands = self.etr_bands
            bands = bands[bands["instrument"] == code] if not bands.empty else bands
            st = episode_status(
                sub.rename(columns={"latest_session": "latest_session"}),
                bands,
                higher_is_better=bool(sub["higher_is_better"].iloc[0]),
                settings=self.settings.etr,
            )
            frames.append(
                pd.concat(
                    [sub[["episode_id", "instrument", "latest_session", "latest", "primary"]], st], axis=1
                )
            )
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    # -- episode end ----------------------------------------------------------------------------------
    @cached_property
    def episode_end(self) -> pd.DataFrame:
        """Open or closed, and how it ended: planned, dropout, transferred or other (docs/methods.md §9)."""
        e = self.episodes.copy()
        last = pd.to_datetime(e["last_session_date"])
        cutoff_day = pd.Timestamp(self.as_of) - pd.Timedelta(days=self.settings.inactivity_days)
        discharged = e["end_date"].notna()
        inactive = ~discharged & (last < cutoff_day)
        e["closed"] = discharged | inactive
        e["closed_by"] = np.select([discharged, inactive], ["discharge record", "inactivity"], default="")
        change = self.episode_change
        primary = change.loc[change["primary"].astype(bool)].set_index("episode_id")
        improved = (
            e["episode_id"]
            .map(primary["reliable_improvement"])
            .astype("boolean")
            .fillna(False)
            .to_numpy(bool)
        )
        reason = e["end_reason"].astype("string").fillna("")  # all-NULL columns arrive as float
        unplanned = e["closed"] & reason.isin(["dropout", ""])
        e["end_type"] = np.select(
            [~e["closed"], reason.eq("planned"), reason.eq("transferred"), unplanned & ~improved, unplanned],
            ["open", "planned", "transferred", "dropout", "unplanned after improvement"],
            default="other",
        )
        e["dropout"] = e["end_type"].eq("dropout")
        e["days_since_last_session"] = (pd.Timestamp(self.as_of) - last).dt.days
        e["rule"] = (
            f"closed: discharge record or no session for {self.settings.inactivity_days} days before "
            f"{self.as_of:%d %b %Y}; dropout: closed without a planned ending before reliable improvement"
        )
        return e[
            [
                "episode_id",
                "client_id",
                "clinician_id",
                "team_id",
                "population",
                "start_date",
                "last_session_date",
                "n_sessions",
                "closed",
                "closed_by",
                "end_reason",
                "end_type",
                "dropout",
                "days_since_last_session",
                "rule",
            ]
        ]
