"""Higher-is-better instruments: sudden gains on the ORS are increases and criterion 2 uses severity
(40 − score), not the raw score. Hand-computed fixtures, imported through `alliance import`."""

import datetime as dt

import pandas as pd

from alliance.clinical import ClinicalMetrics, MetricSettings
from alliance.importer import import_csv
from alliance.service import Service


def _metrics(tmp_path, series: dict[str, list[float]], instrument="ORS") -> ClinicalMetrics:
    rows = [
        {
            "client_id": cid,
            "clinician_id": "CL1",
            "session_date": str(dt.date(2026, 1, 5) + dt.timedelta(weeks=i)),
            "session_number": i + 1,
            "instrument": instrument,
            "score": s,
        }
        for cid, scores in series.items()
        for i, s in enumerate(scores)
    ]
    csv = tmp_path / "in.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    db = tmp_path / "t.duckdb"
    assert import_csv(csv, db).ok
    return ClinicalMetrics(Service.open(db), MetricSettings(as_of=dt.date(2026, 6, 1)))


def test_ors_gain_is_an_increase_and_crit2_uses_severity(tmp_path):
    # ORS 30, 29, 30, 36, 37, 36, 37 → severity (40 − score) 10, 11, 10, 4, 3, 4, 3.
    # Interval 3→4: crit1 10 − 4 = 6 ≥ 5 (ORS reliable change); crit2 6 ≥ 0.25 × 10 = 2.5 on severity
    # (on the raw score it would need 0.25 × 30 = 7.5 and fail); crit3: pre severities 10, 11, 10 (mean
    # 10.333, SD 0.577), post 4, 3, 4 (mean 3.667, SD 0.577), pooled SD 0.577, t(.975, 4) = 2.776 →
    # 1.603 < 6.667. A gain at pregain session 3 of magnitude 6 (severity points = ORS points up).
    m = _metrics(tmp_path, {"UP": [30, 29, 30, 36, 37, 36, 37], "DOWN": [37, 36, 37, 30, 29, 30, 29]})
    ev = m.sudden_events.set_index("episode_id")
    assert ev.loc["UP-1", "kind"] == "gain" and ev.loc["UP-1", "session"] == 3
    assert ev.loc["UP-1", "magnitude"] == 6 and ev.loc["UP-1", "crit1_cutoff"] == 5
    # The mirror: ORS falling 37 → 30 is a sudden loss (severity 3 → 10: worsening 7 ≥ 5, ≥ 25 % of 3).
    assert ev.loc["DOWN-1", "kind"] == "loss" and ev.loc["DOWN-1", "magnitude"] == -7
    change = m.episode_change.set_index("episode_id")
    # Improvement is post − pre for a higher-better scale: 37 − 30 = 7 ≥ 5 → reliably improved;
    # 30 at intake is not below the adult cut-off 25, so not clinical: improved, not recovered.
    assert change.loc["UP-1", "improvement"] == 7 and change.loc["UP-1", "category"] == "improved"
    assert change.loc["UP-1", "intake_severity"] == 10 and change.loc["UP-1", "latest_severity"] == 3
    assert change.loc["DOWN-1", "improvement"] == -8 and change.loc["DOWN-1", "category"] == "deteriorated"


def test_ors_recovery_needs_crossing_the_cutoff(tmp_path):
    # ORS 18 → 27: improvement 9 ≥ 5; clinical at intake (18 < 25) and not after (27 ≥ 25) → recovered.
    # ORS 20 → 25: 25 itself is non-clinical ('below 25' is clinical) and 5 ≥ 5 (inclusive) → recovered.
    # ORS 26 → 22: worse by 4 < 5 → unchanged (though now clinical).
    m = _metrics(tmp_path, {"A": [18, 21, 27], "B": [20, 22, 25], "C": [26, 24, 22]})
    cat = m.episode_change.set_index("episode_id")["category"]
    assert (cat["A-1"], cat["B-1"], cat["C-1"]) == ("recovered", "recovered", "unchanged")
