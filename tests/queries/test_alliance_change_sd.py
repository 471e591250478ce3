"""queries/service_alliance_change_sd.sql against a hand calculation: every alliance rating with its change from
the previous *available* rating of the same instrument in the episode (a gap bridged), the input of the service
scale of alliance change (docs/methods.md §7). The SD of those changes (ddof = 1, pooled over all episodes)
equals the Python rule :func:`alliance.metrics.alliance_signals.service_change_sd`, and with no rupture and no
pair of ratings at the scale's top the robust scale (:func:`service_change_scale`) and the stored service scales
equal it too. On a small database written by `alliance import`'s code path."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from alliance.clinical import ClinicalMetrics, MetricSettings
from alliance.db import Database
from alliance.importer import import_csv
from alliance.metrics.alliance_signals import service_change_scale, service_change_sd
from alliance.scope import Scope
from alliance.service import Service

# (client, session_number, instrument, score). One client = one episode; clinician CL01, team T1.
RATINGS = [
    # A: SRS at sessions 1, 2, 4, 5 — session 3 was held (ORS only), SRS is missing there (a gap).
    # ORS is an outcome measure: its rows must not count (its changes would be 2, 2, 2, 2).
    ("A", 1, "SRS", 30),
    ("A", 2, "SRS", 34),
    ("A", 4, "SRS", 28),
    ("A", 5, "SRS", 35),
    ("A", 1, "ORS", 10),
    ("A", 2, "ORS", 12),
    ("A", 3, "ORS", 14),
    ("A", 4, "ORS", 16),
    ("A", 5, "ORS", 18),
    # B: SRS at sessions 1, 2, 3 and 5 — no session 4 at all (a gap with no session row).
    ("B", 1, "SRS", 36),
    ("B", 2, "SRS", 37),
    ("B", 3, "SRS", 33),
    ("B", 5, "SRS", 37),
    # C: WAI-SR at sessions 1–4, no gap.
    ("C", 1, "WAI-SR", 40),
    ("C", 2, "WAI-SR", 44),
    ("C", 3, "WAI-SR", 41),
    ("C", 4, "WAI-SR", 47),
    # D: WAI-SR at sessions 1 and 3; session 2 has an SRS rating only. Both instruments in one episode: a
    # change must never be taken across instruments (WAI-SR 50 → SRS 20 → WAI-SR 47), and D's single SRS
    # rating gives no change.
    ("D", 1, "WAI-SR", 50),
    ("D", 2, "SRS", 20),
    ("D", 3, "WAI-SR", 47),
    # E: a single WAI-SR rating: no change.
    ("E", 1, "WAI-SR", 45),
]

# Hand calculation (consecutive available ratings within an episode and instrument, gaps bridged):
#   SRS    A: 34−30 = 4, 28−34 = −6 (sessions 2→4), 35−28 = 7;  B: 37−36 = 1, 33−37 = −4, 37−33 = 4 (3→5)
#          six changes 4, −6, 7, 1, −4, 4; sum 6, mean 1; deviations 3, −7, 6, 0, −5, 3;
#          squares 9 + 49 + 36 + 0 + 25 + 9 = 128; variance 128 / (6 − 1) = 25.6; SD = √25.6 = 5.0596442562694…
#   WAI-SR C: 44−40 = 4, 41−44 = −3, 47−41 = 6;  D: 47−50 = −3 (sessions 1→3);  E: none
#          four changes 4, −3, 6, −3; sum 4, mean 1; deviations 3, −4, 5, −4;
#          squares 9 + 16 + 25 + 16 = 66; variance 66 / (4 − 1) = 22; SD = √22 = 4.6904157598234…
#   (Wrong readings give other numbers: ddof = 0 → √(128/6) = 4.62 and √(66/4) = 4.06; dropping the
#   changes across a gap → SRS 4, 7, 1, −4 and WAI-SR 4, −3, 6.)
EXPECTED = {"SRS": (5.0596442562694, 6), "WAI-SR": (4.6904157598234, 4)}
# The change of every rating, in (episode, session) order; None for an episode's first rating of the instrument.
CHANGES = {
    "SRS": [None, 4, -6, 7, None, 1, -4, 4, None],  # A1 A2 A4 A5, B1 B2 B3 B5, D2
    "WAI-SR": [None, 4, -3, 6, None, -3, None],  # C1 … C4, D1 D3, E1
}


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    frame = pd.DataFrame(RATINGS, columns=["client_id", "session_number", "instrument", "score"])
    frame["episode_id"] = "EP-" + frame["client_id"]
    frame["session_date"] = (
        pd.Timestamp("2026-03-02") + pd.to_timedelta(7 * (frame["session_number"] - 1), unit="D")
    ).dt.strftime("%Y-%m-%d")
    return frame


@pytest.fixture(scope="module")
def db(ratings, tmp_path_factory):
    folder = tmp_path_factory.mktemp("alliance_sd")
    csv = folder / "ratings.csv"
    ratings.assign(clinician_id="CL01", team_id="T1", supervisor_id="CL01", population="adult").to_csv(
        csv, index=False
    )
    report = import_csv(csv, folder / "sd.duckdb")
    assert report.ok, report.summary()
    database = Database(folder / "sd.duckdb")
    yield database
    database.close()


@pytest.fixture(scope="module")
def result(db) -> pd.DataFrame:
    return db.query("service_alliance_change_sd")


def test_the_database_holds_the_hand_made_rows(db, ratings):
    stored = (
        db._con.cursor()
        .execute("SELECT episode_id, session_number, instrument, score FROM rating ORDER BY ALL")
        .df()
    )
    expected = ratings[["episode_id", "session_number", "instrument", "score"]].sort_values(
        ["episode_id", "session_number", "instrument"]
    )
    assert stored.values.tolist() == expected.values.tolist()


def test_one_row_per_alliance_rating_and_no_outcome_measure(result):
    assert list(result.columns) == ["instrument", "episode_id", "session_number", "score", "change"]
    assert sorted(result["instrument"].unique()) == ["SRS", "WAI-SR"]
    assert len(result) == 16  # every SRS and WAI-SR rating, none of the ORS ones


@pytest.mark.parametrize("instrument", sorted(EXPECTED))
def test_changes_bridge_gaps_and_never_cross_instruments(result, instrument):
    rows = result[result["instrument"] == instrument]
    got = [None if pd.isna(c) else c for c in rows["change"]]
    assert got == CHANGES[instrument]


@pytest.mark.parametrize("instrument", sorted(EXPECTED))
def test_sd_matches_the_hand_calculation(result, instrument):
    sd, n = EXPECTED[instrument]
    change = result.loc[result["instrument"] == instrument, "change"].dropna()
    assert len(change) == n
    assert change.std(ddof=1) == pytest.approx(sd, abs=1e-9)


@pytest.mark.parametrize("instrument", sorted(EXPECTED))
def test_sd_equals_the_python_rules_on_the_same_rows(result, ratings, instrument):
    rows = ratings.loc[ratings["instrument"] == instrument, ["episode_id", "session_number", "score"]]
    python = service_change_sd(rows)
    assert math.isfinite(python)
    assert python == pytest.approx(EXPECTED[instrument][0], abs=1e-9)
    queried = result.loc[result["instrument"] == instrument, ["episode_id", "session_number", "score"]]
    assert service_change_sd(queried) == pytest.approx(python, abs=1e-9)
    # No rating here is a rupture (the lowest, SRS 28 after 30 and 34, stays above 32 − 2 × 5.06) and no pair
    # sits at the top of the scale: the robust scale leaves nothing out.
    scale = service_change_scale(queried, min_score=0, max_score=40 if instrument == "SRS" else 60)
    assert (scale.sd, scale.n, scale.n_in_ruptures, scale.n_at_limit) == (
        pytest.approx(python, abs=1e-9),
        EXPECTED[instrument][1],
        0,
        0,
    )


def test_the_service_scales_hold_both(db):
    metrics = ClinicalMetrics(Service(db, Scope.full_access()), MetricSettings())
    scales = metrics.service_scales.set_index(["scale", "instrument"])
    for instrument, (sd, n) in EXPECTED.items():
        for name in ("alliance_change_sd", "alliance_change_sd_all"):
            assert scales.loc[(name, instrument), "value"] == pytest.approx(sd, abs=1e-9)
            assert scales.loc[(name, instrument), "n"] == n
    assert metrics.alliance_sd == pytest.approx({k: v[0] for k, v in EXPECTED.items()}, abs=1e-9)
