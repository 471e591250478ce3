"""``alliance validate``: the evidence a researcher or a clinical director attaches to a decision to rely
on the metrics of one database — one self-contained HTML report (charts with their JavaScript inline: it opens
offline) and the same figures as CSV files beside it.

1. **Reference agreement**: the change statistics against the published R packages' own output shipped in
   ``tests/reference`` (suddengains 0.7.2, clinicalsignificance 2.1; README there): cells and values compared,
   how many agree, the largest difference.
2. **Expected-response bands**: coverage by cross-validation on this database — per outcome instrument and
   session range, with n — of the bands as built (calibrated) and of the bands before calibration, against the
   80 % (10–90) and 50 % (25–75) the bands promise (docs/methods.md §8).
3. **Flags**: the share of held-out later ratings the bands would flag red (worse than the 10th percentile of
   the expected course) and red or yellow (worse than the 25th), against the nominal 10 % and 25 %; and the
   status mix the pages show (reliable deterioration and the functional rule included).
4. **Ruptures** per 100 rated sessions at k = 1 and k = 2, with the robust service scale in force and, for
   comparison, the plain SD of every change (docs/methods.md §7).
5. **Planted events** (demo databases only: ``planted_events``): recall and precision of the detectors.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from alliance.clinical import ClinicalMetrics, MetricSettings
from alliance.db import Database
from alliance.inert import csv_cell, html_text
from alliance.metrics import (
    JacobsonTruax,
    classify_change,
    events_by_episode,
    interval_criteria,
    jt_cutoffs,
    sudden_changes,
)
from alliance.metrics.etr import band_coverage
from alliance.scope import Scope
from alliance.service import Service
from alliance.store import metrics_for

#: The R packages' output shipped with the tests (tests/reference/README.md).
REFERENCE_DIR = Path(__file__).resolve().parents[1] / "tests" / "reference"
NOMINAL = {"coverage_10_90": 0.80, "coverage_25_75": 0.50, "red": 0.10, "red_or_yellow": 0.25}
#: How far from nominal a cross-validated share may be before the report marks it (docs/methods.md §8).
TOLERANCE = 0.05


@dataclass
class Validation:
    """The report's tables, each also written as CSV (``write_report``)."""

    database: Path
    as_of: dt.date
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# -- 1. reference agreement ------------------------------------------------------------------------------

_PLURAL = {"gain": "gains", "loss": "losses"}
_SG_SESSIONS = range(1, 13)
_SG_EXAMINED = range(2, 11)
_BYSG = {
    "sg_session_n": "session",
    "sg_freq_byperson": "events_in_episode",
    "sg_bdi_2n": "severity_n_minus_2",
    "sg_bdi_1n": "severity_n_minus_1",
    "sg_bdi_n": "severity_n",
    "sg_bdi_n1": "severity_n_plus_1",
    "sg_bdi_n2": "severity_n_plus_2",
    "sg_bdi_n3": "severity_n_plus_3",
    "sg_magnitude": "magnitude",
    "sg_bdi_tx_change": "tx_change",
    "sg_change_proportion": "change_proportion",
    "sg_reversal_value": "reversal_value",
    "sg_reversal": "reversal",
}
_CS_CASES = {
    "Jacobson & Truax 1989, DAS (cut-off a, reliability .84)": (
        "cs_jacobson_1989.csv",
        "cs_jacobson1989_das_combined_JT_rel084_a_higher.csv",
        dict(
            id="subject",
            outcome="das",
            pre="pre",
            post="post",
            reliability=0.84,
            higher=True,
            cut="a",
            fn=None,
        ),
    ),
    "Claus 2020, HAMD (cut-off c, reliability .80)": (
        "cs_claus_2020.csv",
        "cs_claus2020_hamd_combined_JT_rel080_c_m8_sd8.csv",
        dict(id="id", outcome="hamd", pre=1, post=4, reliability=0.80, higher=False, cut="c", fn=(8, 8)),
    ),
    "Claus 2020, BDI-II (cut-off c, reliability .80)": (
        "cs_claus_2020.csv",
        "cs_claus2020_bdi_combined_JT_rel080_c_m7_sd7.csv",
        dict(id="id", outcome="bdi", pre=1, post=4, reliability=0.80, higher=False, cut="c", fn=(7, 7)),
    ),
}


def _cell(value) -> bool | None:
    """An R logical cell as True / False / None (an empty cell is NA)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return {"TRUE": True, "FALSE": False}[value]
    return bool(value)


def _details(table: pd.DataFrame, oracle: pd.DataFrame, prefix: str) -> tuple[int, int]:
    """Cells of suddengains' crit123_details output compared and agreeing (criteria and combined flag)."""
    compared = agreeing = 0

    def flag(value) -> int | None:
        return None if value is None or pd.isna(value) else int(value)

    for n in _SG_EXAMINED:
        rows = table[table["session"] == n].set_index("episode_id").reindex(oracle.index)
        pairs = []
        for crit in ("crit1", "crit2", "crit3"):
            theirs = [_cell(v) for v in oracle[f"{prefix}_{crit}_{n}to{n + 1}"].tolist()]
            pairs += zip([_cell(v) for v in rows[crit].tolist()], theirs, strict=True)
        theirs = [flag(v) for v in oracle[f"{prefix}_{n}to{n + 1}"].tolist()]
        ours = [int(e) if ok else None for e, ok in zip(rows["event"], rows["evaluable"], strict=True)]
        pairs += zip(ours, theirs, strict=True)
        compared += len(pairs)
        agreeing += sum(a == b for a, b in pairs)
    return compared, agreeing


def _numbers(ours: pd.DataFrame, theirs: pd.DataFrame, columns: dict[str, str]) -> tuple[int, int, float]:
    """Values compared, agreeing within 1e-9 (NaN = NaN) and the largest difference."""
    if len(ours) != len(theirs):
        return len(theirs) * len(columns), 0, float("inf")
    a = np.column_stack([ours[c].to_numpy(dtype=float) for c in columns.values()])
    b = np.column_stack([theirs[c].to_numpy(dtype=float) for c in columns])
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan, 0.0, np.abs(a - b))
    diff = np.where(np.isnan(diff), np.inf, diff)
    return a.size, int((diff <= 1e-9).sum()), float(diff.max()) if diff.size else 0.0


def reference_agreement(reference_dir: Path = REFERENCE_DIR) -> pd.DataFrame:
    """Our statistics on the R packages' example data against the packages' own output, one row per check."""
    cols = ["check", "package", "compared", "agreeing", "max_difference"]
    if not (reference_dir / "README.md").is_file():
        return pd.DataFrame(columns=cols)
    read = lambda name: pd.read_csv(reference_dir / name)  # noqa: E731
    rows = []
    sgdata = read("sgdata.csv")
    long = sgdata.melt(
        id_vars="id", value_vars=[f"bdi_s{s}" for s in _SG_SESSIONS], var_name="column", value_name="severity"
    )
    long["session_number"] = long["column"].str.removeprefix("bdi_s").astype(int)
    ratings = long.rename(columns={"id": "episode_id"})[["episode_id", "session_number", "severity"]]
    sg = "suddengains 0.7.2"
    for kind, prefix, name, rule in (
        ("gain", "sg", "sgdata_identify_sg_crit123_details.csv", "mirrored"),
        ("loss", "sl", "sgdata_identify_sl_crit123_details.csv", "suddengains"),
    ):
        table = interval_criteria(ratings, kind=kind, cutoff=7, pct=0.25, crit3=True, loss_pct_rule=rule)
        compared, agreeing = _details(table, read(name).set_index("id"), prefix)
        rows.append(
            (
                f"sudden {_PLURAL[kind]}: every criterion of every interval (identify_s{prefix[1]}"
                + (", suddengains' own criterion 2 for losses)" if kind == "loss" else ")"),
                sg,
                compared,
                agreeing,
                0.0,
            )
        )
    for kind, name in (("gain", "sgdata_bysg.csv"), ("loss", "sgdata_bysl.csv")):
        events = sudden_changes(ratings, cutoff=7, kinds=(kind,))
        theirs = read(name)
        compared, agreeing, worst = _numbers(events, theirs, _BYSG)
        same_ids = list(events["episode_id"]) == list(theirs["id"])
        rows.append(
            (
                f"sudden {_PLURAL[kind]}: one row per event (create_bys{kind[0]}, {len(theirs)} events)",
                sg,
                compared + len(theirs),
                agreeing + len(theirs) * same_ids,
                worst,
            )
        )
    gains = sudden_changes(ratings, cutoff=7, kinds=("gain",))
    first = events_by_episode(gains, kind="gain", select="first", episode_ids=sgdata["id"])
    theirs = read("sgdata_byperson_first.csv")
    compared, agreeing, worst = _numbers(first, theirs, _BYSG)
    flags = int((first["has_event"].astype(int).to_numpy() == theirs["sg_crit123"].to_numpy()).sum())
    rows.append(
        (
            "sudden gains: first per person (create_byperson)",
            sg,
            compared + len(theirs),
            agreeing + flags,
            worst,
        )
    )
    for label, (data, result, c) in _CS_CASES.items():
        wide = read(data).pivot(index=c["id"], columns="time", values=c["outcome"])
        pairs = wide[[c["pre"], c["post"]]].dropna()
        pairs.columns = ["pre", "post"]
        m_pre, sd_pre = pairs["pre"].mean(), pairs["pre"].std()
        cut = jt_cutoffs(m_pre, sd_pre, *(c["fn"] or (None, None)), higher_is_better=c["higher"])[c["cut"]]
        ours = classify_change(
            pairs["pre"],
            pairs["post"],
            higher_is_better=c["higher"],
            cutoff=cut,
            method=JacobsonTruax(sd=sd_pre, reliability=c["reliability"]),
            at_cutoff="neither",
        )
        expected = read(result).set_index("id")
        compared, agreeing, worst = _numbers(ours, expected, {k: k for k in ("pre", "post", "change", "rci")})
        same = (ours["category"].astype(str).to_numpy() == expected["category"].str.lower().to_numpy()).sum()
        rows.append(
            (
                f"reliable change and clinical significance: {label}",
                "clinicalsignificance 2.1",
                compared + len(expected),
                agreeing + int(same),
                worst,
            )
        )
    out = pd.DataFrame(rows, columns=cols)
    out["share_agreeing"] = out["agreeing"] / out["compared"]
    return out


# -- 2.–3. bands and flags -------------------------------------------------------------------------------


def band_tables(metrics: ClinicalMetrics) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cross-validated band coverage per instrument and session range (calibrated and before calibration),
    and the shares the band rule flags red and red-or-yellow, in each instrument's unfavourable direction."""
    coverage, flags = [], []
    limits = metrics.norms.drop_duplicates("instrument").set_index("instrument")
    stored = metrics.etr_bands
    for code, sub in metrics.reference.groupby("instrument", sort=True):
        if code not in limits.index:
            continue
        higher = bool(limits.loc[code, "higher_is_better"])
        scale = dict(min_score=limits.loc[code, "min_score"], max_score=limits.loc[code, "max_score"])
        mine = stored[stored["instrument"] == code] if len(stored) else stored
        calibration = str(mine["calibration"].iloc[0]) if len(mine) else "no band"
        for calibrated in (True, False):
            table = band_coverage(sub, **scale, settings=metrics.settings.etr, calibrated=calibrated)
            if table.empty:
                continue
            bands = "calibrated" if calibrated else "before calibration"
            table.insert(0, "bands", bands)
            table.insert(0, "instrument", code)
            table["n_reference"] = sub["episode_id"].nunique()
            table["calibration"] = calibration if calibrated else "none"
            coverage.append(table)
            red = table["below_p10"] if higher else table["above_p90"]
            amber = table["below_p25"] if higher else table["above_p75"]
            flags.append(
                pd.DataFrame(
                    {
                        "instrument": code,
                        "bands": bands,
                        "session_range": table["session_range"],
                        "n_ratings": table["n_ratings"],
                        "red": red,
                        "red_or_yellow": amber,
                        "direction": "higher is better" if higher else "lower is better",
                    }
                )
            )
    cov = pd.concat(coverage, ignore_index=True) if coverage else pd.DataFrame()
    flg = pd.concat(flags, ignore_index=True) if flags else pd.DataFrame()
    return cov, flg


def status_mix(metrics: ClinicalMetrics) -> pd.DataFrame:
    """The status the pages show, per outcome instrument: at every later rating (as the chart colours it) and
    at each episode's latest rating (as the caseload flags it)."""
    rows = []
    for where, frame in (
        ("every later rating", metrics.session_status),
        ("latest rating", metrics.episode_status),
    ):
        if frame is None or frame.empty:
            continue
        rated = frame[frame["status"].notna()]
        for code, sub in rated.groupby("instrument", sort=True):
            shares = sub["status"].value_counts(normalize=True)
            band_red = sub["reason"].astype(str).str.contains("percentile of the expected course") & (
                sub["status"] == "red"
            )
            rows.append(
                {
                    "instrument": code,
                    "at": where,
                    "n": len(sub),
                    **{s: float(shares.get(s, 0.0)) for s in ("red", "yellow", "green", "white")},
                    "red_by_band": float(band_red.mean()),
                }
            )
    return pd.DataFrame(rows)


# -- 4. ruptures ------------------------------------------------------------------------------------------


def rupture_rates(service: Service, settings: MetricSettings) -> pd.DataFrame:
    """Ruptures per 100 rated sessions per alliance instrument at k = 1 and k = 2, with the robust service
    scale in force and with the plain SD of every change."""
    rows = []
    for scale in ("robust", "plain"):
        for k in (1.0, 2.0):
            rules = dataclasses.replace(settings.alliance, k=k, repair_k=min(settings.alliance.repair_k, k))
            m = ClinicalMetrics(service, dataclasses.replace(settings, alliance=rules, alliance_scale=scale))
            sessions = m.alliance_ratings.groupby("instrument").size()
            events = m.alliance_events
            ruptures = events[events["event"] == "rupture"] if len(events) else events
            counts = ruptures.groupby("instrument").size() if len(ruptures) else pd.Series(dtype=int)
            repaired = (
                ruptures[ruptures["repair_status"].astype(str) == "repaired"].groupby("instrument").size()
                if len(ruptures)
                else pd.Series(dtype=int)
            )
            for code, n in sessions.items():
                rows.append(
                    {
                        "instrument": code,
                        "scale": scale,
                        "k": k,
                        "sd_service": m.alliance_sd.get(code, float("nan")),
                        "rated_sessions": int(n),
                        "ruptures": int(counts.get(code, 0)),
                        "per_100_sessions": 100 * counts.get(code, 0) / n,
                        "share_repaired": repaired.get(code, 0) / counts.get(code, 0)
                        if counts.get(code, 0)
                        else np.nan,
                    }
                )
    return pd.DataFrame(rows)


# -- 5. planted events -------------------------------------------------------------------------------------


def planted_events(path: Path) -> pd.DataFrame | None:
    """The demo's truth table, or None for a database without one (every imported database)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        return con.execute("SELECT * FROM planted_events").df() if "planted_events" in tables else None
    finally:
        con.close()


def _match(planted: pd.DataFrame, found: pd.DataFrame, tolerance: int) -> tuple[int, int]:
    """Planted events found and found events planted, matched on episode and instrument with the session
    within ``tolerance``, each side counted once."""
    keys = ["episode_id", "instrument"]
    pairs = planted[[*keys, "session_number"]].merge(found[[*keys, "session"]], on=keys)
    pairs = pairs[(pairs["session"] - pairs["session_number"]).abs() <= tolerance]
    return len(pairs.drop_duplicates([*keys, "session_number"])), len(
        pairs.drop_duplicates([*keys, "session"])
    )


def planted_recall(
    metrics: ClinicalMetrics, sensitive: ClinicalMetrics, planted: pd.DataFrame
) -> pd.DataFrame:
    """Recall and precision (against planted events only) of each detector on the demo's truth table."""
    rows = []
    se = metrics.sudden_events
    for kind in ("gain", "loss"):
        truth = planted[planted["event_type"] == f"sudden_{kind}"]
        found = se[se["kind"] == kind] if len(se) else se
        hit, right = _match(truth, found, tolerance=1)
        rows.append((f"sudden {_PLURAL[kind]} (candidate, ±1 session)", len(truth), len(found), hit, right))
    truth = planted[planted["event_type"].str.startswith("rupture")]
    for label, m in (("ruptures, k = 2 (strict)", metrics), ("ruptures, k = 1 (sensitive)", sensitive)):
        ev = m.alliance_events
        found = ev[ev["event"] == "rupture"].rename(columns={"session_number": "session"}) if len(ev) else ev
        hit, right = _match(truth, found, tolerance=0)
        rows.append((label, len(truth), len(found), hit, right))
    change = metrics.episode_change
    truth = planted[planted["event_type"] == "deterioration"]
    deteriorated = change[change["reliable_deterioration"].fillna(False).astype(bool)]
    hit = len(truth.merge(deteriorated, on=["episode_id", "instrument"]))
    rows.append(("deterioration (reliably worse than intake)", len(truth), len(deteriorated), hit, hit))
    out = pd.DataFrame(rows, columns=["detector", "planted", "found", "planted_found", "found_planted"])
    out["recall"] = out["planted_found"] / out["planted"].where(out["planted"] > 0)
    out["precision"] = out["found_planted"] / out["found"].where(out["found"] > 0)
    return out


# -- the report --------------------------------------------------------------------------------------------


def validate(
    db_path: Path | str,
    *,
    as_of: dt.date | None = None,
    reference_dir: Path = REFERENCE_DIR,
    settings: MetricSettings | None = None,
) -> Validation:
    """Every table of the report for the database at ``db_path``."""
    path = Path(db_path)
    db = Database(path)
    try:
        settings = settings or MetricSettings(as_of=as_of)
        service = Service(db, Scope.full_access("validation"))
        metrics = metrics_for(service, settings)
        v = Validation(database=path, as_of=metrics.as_of)
        v.tables["reference_agreement"] = reference_agreement(reference_dir)
        if v.tables["reference_agreement"].empty:
            v.notes.append(f"Reference files not found in {reference_dir}: agreement not checked.")
        v.tables["band_coverage"], v.tables["flag_shares"] = band_tables(metrics)
        v.tables["status_mix"] = status_mix(metrics)
        v.tables["rupture_rates"] = rupture_rates(service, metrics.settings)
        truth = planted_events(path)
        if truth is None:
            v.notes.append(
                "No planted_events table (not a demo database): planted-event recall not measured."
            )
        else:
            rules = dataclasses.replace(
                settings.alliance, k=1.0, repair_k=min(settings.alliance.repair_k, 1.0)
            )
            sensitive = ClinicalMetrics(service, dataclasses.replace(metrics.settings, alliance=rules))
            v.tables["planted_recall"] = planted_recall(metrics, sensitive, truth)
        return v
    finally:
        db.close()


def _figures(v: Validation) -> dict[str, object]:
    """HoloViews charts of the tables (HoloViews objects, rendered with Bokeh by ``write_report``)."""
    import holoviews as hv

    from alliance import style

    style.apply_defaults()
    figs: dict[str, object] = {}
    cov = v.tables.get("band_coverage", pd.DataFrame())
    if len(cov):
        d = cov[cov["session_range"] != "all"].copy()
        d["where"] = d["instrument"] + " · " + d["session_range"]
        panels = []
        for col, title in (
            ("coverage_10_90", "10–90 band (promised 80 %)"),
            ("coverage_25_75", "25–75 band (promised 50 %)"),
        ):
            nominal = NOMINAL[col]
            points = hv.Points(d, kdims=["where", col], vdims=["bands", "n_ratings", "n_episodes"]).opts(
                color="bands",
                cmap={"calibrated": style.CONSTRUCT_COLOURS["outcome"], "before calibration": "#999999"},
                marker=hv.dim("bands").categorize({"calibrated": "circle", "before calibration": "triangle"}),
                size=11,
                legend_position="bottom_right",
                show_legend=True,
                tools=["hover"],
            )
            panels.append(
                (
                    hv.HSpan(nominal - TOLERANCE, nominal + TOLERANCE).opts(color="#56B4E9", alpha=0.2)
                    * hv.HLine(nominal).opts(color="#555555", line_dash="dashed", line_width=1)
                    * points
                ).opts(
                    title=f"Cross-validated coverage, {title}",
                    width=style.PLOT_WIDTH,
                    height=300,
                    xrotation=35,
                    ylim=(max(0.0, nominal - 0.3), min(1.0, nominal + 0.3)),
                    ylabel="share of held-out ratings inside",
                    xlabel="instrument · session range",
                    show_legend=True,
                )
            )
        figs["band_coverage"] = hv.Layout(panels).cols(1)
    flags = v.tables.get("flag_shares", pd.DataFrame())
    if len(flags):
        d = flags[flags["session_range"] == "all"].melt(
            id_vars=["instrument", "bands"],
            value_vars=["red", "red_or_yellow"],
            var_name="flag",
            value_name="share",
        )
        d["where"] = d["instrument"] + " · " + d["flag"].map({"red": "red", "red_or_yellow": "red or yellow"})
        bars = hv.Bars(d, kdims=["where", "bands"], vdims=["share"]).opts(
            color=hv.dim("bands").categorize(
                {"calibrated": style.CONSTRUCT_COLOURS["outcome"], "before calibration": "#BBBBBB"}
            ),
            width=style.PLOT_WIDTH,
            height=340,
            xrotation=20,
            tools=["hover"],
            ylabel="share of held-out later ratings",
            xlabel="instrument · flag, bands (blue: calibrated, grey: before calibration)",
            title="Flagged by the band rule, cross-validated (dashed: nominal 10 % red, 25 % red or yellow)",
        )
        figs["flag_shares"] = (
            bars
            * hv.HLine(NOMINAL["red"]).opts(color=style.STATUS_COLOURS["red"], line_dash="dashed")
            * hv.HLine(NOMINAL["red_or_yellow"]).opts(
                color=style.STATUS_COLOURS["yellow"], line_dash="dashed"
            )
        )
    rup = v.tables.get("rupture_rates", pd.DataFrame())
    if len(rup):
        d = rup.assign(
            where=lambda f: f["instrument"] + " · k = " + f["k"].map("{:g}".format),
            scale=lambda f: f["scale"] + " scale",
        )
        figs["rupture_rates"] = hv.Bars(d, kdims=["where", "scale"], vdims=["per_100_sessions"]).opts(
            color=hv.dim("scale").categorize(
                {"robust scale": style.CONSTRUCT_COLOURS["alliance"], "plain scale": "#BBBBBB"}
            ),
            width=style.PLOT_WIDTH,
            height=320,
            tools=["hover"],
            ylabel="ruptures per 100 rated sessions",
            xlabel="instrument · rule, scale (pink: robust, in force; grey: plain SD, for comparison)",
            title="Ruptures per 100 rated sessions",
        )
    planted = v.tables.get("planted_recall")
    if planted is not None and len(planted):
        short = planted.assign(detector=planted["detector"].str.split(" [(]", regex=True).str[0])
        d = short.melt(
            id_vars=["detector"], value_vars=["recall", "precision"], var_name="measure", value_name="value"
        )
        figs["planted_recall"] = hv.Bars(d, kdims=["detector", "measure"], vdims=["value"]).opts(
            color=hv.dim("measure").categorize({"recall": "#0072B2", "precision": "#E69F00"}),
            width=style.PLOT_WIDTH,
            height=320,
            ylim=(0, 1.05),
            tools=["hover"],
            xlabel="detector, measure (blue: recall, orange: precision)",
            ylabel="share",
            title="Planted events: recall and precision (precision against planted events only)",
        )
    return figs


def _pct(x) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1%}"


_FORMATS = {
    "coverage_10_90": _pct,
    "coverage_25_75": _pct,
    "below_p10": _pct,
    "above_p90": _pct,
    "below_p25": _pct,
    "above_p75": _pct,
    "red": _pct,
    "yellow": _pct,
    "green": _pct,
    "white": _pct,
    "red_by_band": _pct,
    "red_or_yellow": _pct,
    "share_agreeing": _pct,
    "share_repaired": _pct,
    "recall": _pct,
    "precision": _pct,
    "per_100_sessions": lambda x: f"{x:.2f}",
    "sd_service": lambda x: f"{x:.3f}",
    "max_difference": lambda x: f"{x:.1e}",
}


def _table_html(frame: pd.DataFrame, name: str) -> str:
    """The table as escaped HTML with a download link of the same rows as CSV (a data URL: no other file)."""
    if frame.empty:
        return "<p><i>No rows.</i></p>"
    head = "".join(f"<th>{html_text(c, markdown=False)}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for col, value in zip(frame.columns, row, strict=True):
            fmt = _FORMATS.get(col)
            text = fmt(value) if fmt and isinstance(value, (int, float, np.floating)) else value
            if isinstance(text, float):
                text = "" if math.isnan(text) else f"{text:g}"
            cells.append(f"<td>{html_text(text, markdown=False)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    csv = _csv(frame)
    href = "data:text/csv;base64," + base64.b64encode(csv.encode("utf-8")).decode("ascii")
    return (
        f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
        f'<p class="csv"><a download="{html.escape(name)}.csv" href="{href}">{html.escape(name)}.csv</a> '
        "(the same rows; also written beside this file)</p>"
    )


def _csv(frame: pd.DataFrame) -> str:
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = out[col].astype(object).map(csv_cell)
    return out.to_csv(index=False, float_format="%.10g")


_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; max-width: 1000px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; } th { background: #f3f3f3; }
th { overflow-wrap: anywhere; } .wide { overflow-x: auto; }
.verdict { padding: 0.6em 0.9em; border-left: 5px solid #009E73; background: #f4faf7; }
.verdict.warn { border-color: #D55E00; background: #fdf3ee; }
.csv, .note { font-size: 0.85em; color: #555; }
"""


def _verdict(ok: bool, text: str) -> str:
    mark = "✔" if ok else "✖"
    return f'<p class="verdict{"" if ok else " warn"}">{mark} {html_text(text, markdown=False)}</p>'


# A script or style sheet loaded from a file beside the page (Panel adds its ES-module shim to Bokeh's
# resources when it is imported, and each Panel extension imported in the process its style sheets): the
# report needs plain Bokeh only, and must not ask for any file.
_SCRIPT_SRC = re.compile(r'<script\b[^>]*\bsrc="[^"]*"[^>]*>\s*</script>\s*')
_LINK_HREF = re.compile(r'<link\b[^>]*\bhref="(?!data:)[^"]*"[^>]*>\s*')


def _inline_resources(rendered: str) -> str:
    """Bokeh's inline JavaScript and CSS without any script or style sheet loaded from elsewhere."""
    return _LINK_HREF.sub("", _SCRIPT_SRC.sub("", rendered))


def report_html(v: Validation) -> str:
    """The report as one HTML document: BokehJS inline, every chart embedded, no request to any server."""
    import holoviews as hv
    from bokeh.embed import components
    from bokeh.resources import INLINE

    figs = _figures(v)
    models = {name: hv.render(fig, backend="bokeh") for name, fig in figs.items()}
    script, divs = components(models) if models else ("", {})
    t = v.tables
    parts = [
        f"<h1>Alliance validation report</h1><p>Database <code>{html_text(v.database.name, markdown=False)}"
        f"</code>, data as of {v.as_of:%d %B %Y}; written {dt.date.today():%d %B %Y}. Methods: "
        "docs/methods.md §5–8; every figure below is also a CSV file beside this report.</p>",
    ]
    parts += [f'<p class="note">{html_text(n, markdown=False)}</p>' for n in v.notes]

    ref = t.get("reference_agreement", pd.DataFrame())
    parts.append("<h2>1. Agreement with the published R packages</h2>")
    if len(ref):
        agree = bool((ref["agreeing"] == ref["compared"]).all())
        parts.append(
            _verdict(
                agree,
                f"{int(ref['agreeing'].sum()):,} of {int(ref['compared'].sum()):,} cells and values agree "
                f"(numbers within 1e-9; largest difference {ref['max_difference'].max():.1e}).",
            )
        )
        parts.append(
            "<p>Sudden gains and losses (Tang &amp; DeRubeis criteria) on suddengains' example data, "
            "reliable change and clinical significance (Jacobson–Truax) on clinicalsignificance's: "
            "the packages' own output, shipped in <code>tests/reference</code>.</p>"
        )
    parts.append(_table_html(ref, "reference_agreement"))

    cov = t.get("band_coverage", pd.DataFrame())
    parts.append("<h2>2. Expected-response bands: coverage out of sample</h2>")
    parts.append(
        "<p>Each instrument's closed episodes are split into folds by episode; bands built without a "
        "fold are judged on its clients' later ratings (session 2 on), every fold in turn. The bands "
        "promise that 80 % of a new client's ratings fall inside the 10–90 band and 50 % inside 25–75"
        " (shaded: ± 5 points). ‘Before calibration’ is the same percentile bands without the "
        "cross-validated adjustment.</p>"
    )
    if len(cov):
        mine = cov[(cov["bands"] == "calibrated") & (cov["session_range"] == "all")]
        ok = bool(
            ((mine["coverage_10_90"] - 0.8).abs() <= TOLERANCE).all()
            and ((mine["coverage_25_75"] - 0.5).abs() <= TOLERANCE).all()
        )
        words = "; ".join(
            f"{r.instrument}: {r.coverage_10_90:.1%} inside 10–90, {r.coverage_25_75:.1%} inside 25–75 "
            f"({r.n_ratings:,} ratings of {r.n_episodes:,} episodes; {r.calibration})"
            for r in mine.itertuples()
        )
        parts.append(_verdict(ok, words))
    if "band_coverage" in divs:
        parts.append(divs["band_coverage"])
    parts.append(_table_html(cov, "band_coverage"))

    parts.append("<h2>3. Flags: red and yellow against their nominal share</h2>")
    parts.append(
        "<p>The band rule flags a rating red when it is worse than the 10th percentile of the "
        "expected course (10 % of ratings by design) and red or yellow when worse than the 25th (25 "
        "%), in each instrument's unfavourable direction. Cross-validated shares on this "
        "database:</p>"
    )
    flags = t.get("flag_shares", pd.DataFrame())
    if "flag_shares" in divs:
        parts.append(divs["flag_shares"])
    parts.append(_table_html(flags, "flag_shares"))
    parts.append(
        "<p>What the pages show: status at every later rating and at each episode's latest rating. Red also "
        "includes reliable deterioration, and clients non-clinical at intake and still are white, so these "
        "shares differ from the band rule's alone (<i>red_by_band</i>).</p>"
    )
    parts.append(_table_html(t.get("status_mix", pd.DataFrame()), "status_mix"))

    parts.append("<h2>4. Ruptures per 100 rated sessions</h2>")
    parts.append(
        "<p>The rupture rule (docs/methods.md §7) at the strict k = 2 and the sensitive k = 1, with "
        "the service scale in force (the SD of session-to-session change outside ruptures) and, for "
        "comparison, the plain SD of every change, which grows with the number of ruptures.</p>"
    )
    if "rupture_rates" in divs:
        parts.append(divs["rupture_rates"])
    parts.append(_table_html(t.get("rupture_rates", pd.DataFrame()), "rupture_rates"))

    parts.append("<h2>5. Planted events</h2>")
    planted = t.get("planted_recall")
    if planted is None:
        parts.append("<p>This database has no truth table (only demo databases do).</p>")
    else:
        parts.append(
            "<p>The demo generator records the events it planted; the detectors should find them (recall). "
            "Precision counts only planted events as right: noise makes genuine unplanted events too.</p>"
        )
        if "planted_recall" in divs:
            parts.append(divs["planted_recall"])
        parts.append(_table_html(planted, "planted_recall"))

    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Alliance validation — {html_text(v.database.name, markdown=False)}</title>"
        f"<style>{_CSS}</style>{_inline_resources(INLINE.render())}{script}</head>"
        f"<body>{''.join(parts)}</body></html>"
    )


def write_report(v: Validation, out: Path | str) -> tuple[Path, Path]:
    """Write the HTML report to ``out`` and every table as CSV into ``<out stem>_csv/`` beside it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = out.with_name(out.stem + "_csv")
    folder.mkdir(exist_ok=True)
    for name, frame in v.tables.items():
        (folder / f"{name}.csv").write_text(_csv(frame), encoding="utf-8")
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(report_html(v), encoding="utf-8")
    tmp.replace(out)
    return out, folder
