"""Caseload and comparison on a generated service: flags name the planted events, a caseload is narrowed to
its clinician in the query layer, the planted better and worse clinicians fall outside the funnel on what
they were planted on, and a clinician's comparison row is recomputed from the `alliance metrics` CSVs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from alliance.caseload import alliance_sessions, caseload_headlines, caseload_table, caseload_trend
from alliance.clinical import ClinicalMetrics, MetricSettings
from alliance.clinician_comparison import ComparisonFilter, comparison_frames
from alliance.db import Database
from alliance.export import write_metrics
from alliance.metrics.comparison_stats import funnel_position, wilson_interval
from alliance.pages import caseload_page
from alliance.scope import Scope
from alliance.service import Service

AS_OF = dt.date(2026, 11, 1)


@pytest.fixture(scope="module")
def service_db(demo_db) -> Path:
    """The shared default-size demo (tests/conftest.py)."""
    return demo_db


@pytest.fixture(scope="module")
def db(service_db):
    database = Database(service_db)  # its own connection: the autouse fixture closes the shared ones
    yield database
    database.close()


@pytest.fixture(scope="module")
def metrics(db) -> ClinicalMetrics:
    return ClinicalMetrics(Service(db, Scope.full_access()), MetricSettings(as_of=AS_OF))


@pytest.fixture(scope="module")
def planted(service_db) -> pd.DataFrame:
    con = duckdb.connect(str(service_db), read_only=True)
    try:
        return con.execute("SELECT * FROM planted_events").df()
    finally:
        con.close()


def test_caseload_is_narrowed_to_its_clinician_in_the_query_layer(db, metrics):
    one = metrics.episodes["clinician_id"].iloc[0]
    scoped = metrics.for_scope(Service(db, Scope.full_access().restrict(one)))
    table = caseload_table(scoped)
    assert set(table["clinician_id"]) == {one}
    assert set(scoped.outcome_ratings["episode_id"]) <= set(table["episode_id"])
    # A viewer restricted to one clinician cannot widen the scope to another.
    other = metrics.episodes["clinician_id"].iloc[-1]
    assert Scope.clinicians(one).restrict(other).clinician_ids == ()


def test_flags_name_the_planted_events(metrics, planted):
    table = caseload_table(metrics).set_index("episode_id")
    unrepaired = planted.query("event_type == 'rupture_unrepaired'")["episode_id"]
    deteriorated = planted.query("event_type == 'deterioration'")["episode_id"]
    # Planted unrepaired ruptures stay low for the whole repair window or the episode ends ('unrepaired' or
    # 'open'): both raise the flag, so nearly all planted ones must carry it.
    assert table.loc[unrepaired, "flag_unrepaired_rupture"].mean() >= 0.9
    assert table.loc[deteriorated, "flag_deterioration"].mean() >= 0.9
    assert (table.loc[deteriorated, "flags"].str.contains("reliably deteriorated")).mean() >= 0.9
    # Flags and their words agree everywhere.
    assert ((table["n_flags"] > 0) == (table["flags"] != "")).all()


def test_headline_figures_carry_n_and_wilson_intervals(metrics):
    table = caseload_table(metrics)
    h = caseload_headlines(table, alliance_sessions(metrics)).set_index("figure")
    closed = table[table["closed"] & table["category"].notna()]
    row = h.loc["recovered (closed)"]
    assert row["n"] == len(closed)
    k = int((closed["category"] == "recovered").sum())
    low, high = wilson_interval(k, len(closed))
    assert (row["value"], row["low"], row["high"]) == pytest.approx((k / len(closed), low, high))
    assert h.loc["open episodes", "value"] == (~table["closed"]).sum()


def test_alliance_figures_follow_the_measure_in_use(db, metrics):
    """A clinician whose clients rate the WAI-SR is not shown SRS figures or an SRS cut-off."""
    sessions = alliance_sessions(metrics).merge(
        metrics.episodes[["episode_id", "clinician_id"]], on="episode_id"
    )
    by = sessions.groupby("clinician_id")["instrument"].agg(set)
    wai = by[by == {"WAI-SR"}].index[0]
    scoped = metrics.for_scope(Service(db, Scope.clinicians(wai)))
    mine = alliance_sessions(scoped)
    h = caseload_headlines(caseload_table(scoped), mine).set_index("figure")
    assert not [f for f in h.index if "SRS" in f]
    assert h.loc["mean alliance (WAI-SR)", "value"] == pytest.approx(mine["score"].mean())
    below = h.loc["WAI-SR sessions below the client's own baseline"]
    assert below["n"] == len(mine) and below["value"] == pytest.approx(mine["below_cutoff"].mean())
    trend = caseload_trend(caseload_table(scoped), mine)
    assert set(trend["alliance_measure"].dropna()) == {"WAI-SR"}


def _position(frames, measure: str) -> pd.Series:
    t = frames["table"].set_index("clinician_id")
    m = measure.removesuffix("_rate")
    target = frames["rates"].attrs["service_rate"][m]
    return pd.Series(funnel_position(t[measure], t[f"{m}_n"], target=target).astype(str).to_numpy(), t.index)


def test_planted_better_and_worse_clinicians_fall_outside_the_funnel(metrics, planted):
    frames = comparison_frames(
        metrics.episode_change,
        metrics.episode_end,
        metrics.episode_alliance,
        ComparisonFilter("ORS"),
    )
    better = planted.query("event_type == 'clinician_better'")["clinician_id"].tolist()
    worse = planted.query("event_type == 'clinician_worse'")["clinician_id"].tolist()
    position = _position(frames, "reliably_improved_rate")
    # The generator plants them on improvement (about ±0.7 SD): on the reliable-improvement rate they sit
    # beyond the 95 % limits at least, on the right side.
    assert position[better].str.startswith("above").all(), position[better]
    assert position[worse].str.startswith("below").all(), position[worse]
    # Ordinary clinicians: no evidence of a difference for most (inside the 99.8 % limits).
    ordinary = position.drop(better + worse)
    assert (~ordinary.isin(["above 99.8 %", "below 99.8 %"])).mean() >= 0.8
    # Shrunken estimates order them the same way: the better ones top, the worse ones near the bottom.
    eb = frames["shrink"].table["eb_estimate"].sort_values()
    assert set(eb.index[-2:]) == set(better)
    assert set(worse) <= set(eb.index[: len(eb) // 3])


def test_a_clinicians_row_reproduces_from_the_exported_csvs(service_db, metrics, tmp_path):
    write_metrics(service_db, tmp_path, as_of=AS_OF)
    change = pd.read_csv(tmp_path / "episode_change.csv")
    end = pd.read_csv(tmp_path / "episode_end.csv")
    events = pd.read_csv(tmp_path / "alliance_events.csv")
    frames = comparison_frames(
        metrics.episode_change,
        metrics.episode_end,
        metrics.episode_alliance,
        ComparisonFilter("ORS"),
    )
    row = frames["table"].set_index("clinician_id").loc["CL03"]
    # By hand from the CSVs: CL03's closed ORS episodes with two or more ratings.
    ors = change[(change["instrument"] == "ORS") & (change["clinician_id"] == "CL03")]
    closed = end[end["closed"] & end["episode_id"].isin(ors["episode_id"])]
    judged = ors[ors["episode_id"].isin(closed["episode_id"]) & (ors["n_ratings"] >= 2)]
    assert row["closed"] == len(closed)
    improved = judged["reliable_improvement"].astype(bool)
    assert row["reliably_improved_n"] == len(judged)
    assert row["reliably_improved_rate"] == pytest.approx(improved.mean())
    assert row["recovered_rate"] == pytest.approx((judged["category"] == "recovered").mean())
    dropout = closed.set_index("episode_id").loc[judged["episode_id"], "dropout"]
    assert row["dropout_rate"] == pytest.approx(dropout.mean())
    # Effect size: mean improvement ÷ SD of intake over the service's eligible episodes (docs/metrics.md).
    eligible = change[
        (change["instrument"] == "ORS")
        & (change["n_ratings"] >= 2)
        & change["clinical_pre"]
        & change["episode_id"].isin(end.loc[end["closed"], "episode_id"])
    ]
    mine = eligible[eligible["clinician_id"] == "CL03"]
    assert row["es"] == pytest.approx(mine["improvement"].mean() / eligible["intake"].std())
    # Ruptures per 100 alliance sessions.
    mine_eps = end.loc[
        (end["clinician_id"] == "CL03") & end["episode_id"].isin(ors["episode_id"]), "episode_id"
    ]
    ruptures = events[(events["event"] == "rupture") & events["episode_id"].isin(mine_eps)]
    assert row["ruptures"] == len(ruptures)
    assert row["share_repaired"] == pytest.approx((ruptures["repair_status"] == "repaired").mean())


def test_minimum_n_greys_and_unranks(metrics):
    frames = comparison_frames(
        metrics.episode_change,
        metrics.episode_end,
        metrics.episode_alliance,
        ComparisonFilter("ORS", minimum=40),
    )
    t = frames["table"]
    assert t.loc[t["closed"] < 40, "rank"].isna().all()
    ranked = t.loc[t["closed"] >= 40, "rank"].dropna().sort_values()
    assert list(ranked) == list(np.arange(1, len(ranked) + 1))


def test_a_caseload_draws_its_courses_once_per_choice(demo_db, monkeypatch):
    """Building a caseload computes the picture's courses once (they were computed twice: once by the
    instrument's watcher, once more by hand); showing closed episodes computes them once more."""
    import alliance.caseload
    from alliance.pages import caseload_page

    calls = []
    real = alliance.caseload.caseload_courses
    monkeypatch.setattr(
        alliance.caseload, "caseload_courses", lambda *a, **k: (calls.append(1), real(*a, **k))[1]
    )
    page = caseload_page(demo_db)
    assert len(calls) == 1 and page.state.courses is not None and len(page.state.courses)
    page.state.show_closed = True
    assert len(calls) == 2
    other = next(c for c in page.state.param.clinician.objects if c != page.state.clinician)
    page.state.clinician = other
    assert len(calls) == 3


def test_each_episode_carries_the_rank_of_its_strongest_flag(metrics):
    from alliance.flags import BY_KEY

    table = caseload_table(metrics)
    deteriorated = table["flag_deterioration"]
    assert deteriorated.any()
    assert (table.loc[deteriorated, "strongest_flag"] == BY_KEY["deterioration"].rank).all()
    assert table.loc[table["n_flags"] == 0, "strongest_flag"].isna().all()
    only_ceiling = table["flag_ceiling"] & (table["n_flags"] == 1)
    assert only_ceiling.any()
    assert (table.loc[only_ceiling, "strongest_flag"] == BY_KEY["ceiling"].rank).all()


def test_the_episode_table_lists_the_strongest_flag_first(demo_db):
    """Flagged first, strongest first: read back from the words in the table's flags column."""
    from alliance.flags import BY_KEY, CASELOAD_FLAGS
    from alliance.pages import caseload_page

    rank_of_words = {words: BY_KEY[key].rank for key, words in CASELOAD_FLAGS.items()}
    page = caseload_page(demo_db)
    page.state.show_closed = True
    flags = page.table.frame()["flags"]
    strongest = [min((rank_of_words[w] for w in f.split(", ")), default=99) if f else 99 for f in flags]
    assert len(set(strongest)) > 2  # several kinds of flag on this caseload, and unflagged episodes
    assert strongest == sorted(strongest)


def test_a_caseload_is_read_once_per_process_and_only_for_its_clinician(demo_db):
    """Two sessions of the same clinician's caseload (the clinician again, their supervisor in a meeting) share
    the process's cached reads of that caseload; another clinician's is read for that clinician only, and a
    viewer never gets a caseload outside their scope from the cache."""
    from alliance.state import CaseloadState, forget_service_metrics

    forget_service_metrics()
    service = Service.open(demo_db)
    ids = service.clinicians()["clinician_id"].tolist()
    first, again = CaseloadState(service, clinician=ids[0]), CaseloadState(service, clinician=ids[0])
    assert first.metrics is again.metrics, "the second session read the caseload again"
    # ... and the table, headlines and trend made from it: made once, shared, and left as made by a page
    # that shows them (each view draws from its own copy).
    for frame in ("table", "headlines", "trend"):
        assert getattr(first, frame) is getattr(again, frame), f"the second session made its {frame} again"
    made = {f: getattr(first, f).copy() for f in ("table", "headlines", "trend")}
    page = caseload_page(demo_db, Scope.full_access(), clinician=ids[0])
    page.page().get_root()
    page.state.show_closed = True
    for frame, copy in made.items():
        pd.testing.assert_frame_equal(getattr(page.state, frame), copy, obj=frame)
    other = CaseloadState(service, clinician=ids[1])
    assert other.metrics is not first.metrics
    assert set(other.table["clinician_id"]) == {ids[1]} and set(first.table["clinician_id"]) == {ids[0]}
    # A clinician whose scope is their own caseload asking for a colleague's gets their own (the first in
    # scope), never the colleague's cached rows.
    own = CaseloadState(Service.open(demo_db, Scope.clinicians(ids[1])), clinician=ids[0])
    assert own.clinician == ids[1] and set(own.table["clinician_id"]) == {ids[1]}
