"""The metrics store: the stored tables equal a from-scratch computation, are narrowed by scope in SQL, and
are never read once the data, the settings or the date they were computed for have changed."""

from __future__ import annotations

import dataclasses
import shutil

import duckdb
import pandas as pd
import pytest

from alliance.clinical import ClinicalMetrics, MetricSettings
from alliance.db import Database
from alliance.metrics.alliance_signals import AllianceRules
from alliance.scope import Scope
from alliance.service import Service
from alliance.store import (
    SCOPED_TABLES,
    TABLES,
    StoredMetrics,
    _storable,
    is_current,
    metrics_for,
    read_stamp,
    refresh,
)
from tests.conftest import AS_OF

SETTINGS = MetricSettings(as_of=AS_OF)


@pytest.fixture()
def db_copy(demo_db, tmp_path):
    """A private copy of the demo database that a test may change."""
    path = tmp_path / "copy.duckdb"
    shutil.copy(demo_db, path)
    return path


def stored_frames(path) -> dict[str, pd.DataFrame]:
    db = Database(path)
    try:
        m = metrics_for(Service(db, Scope.full_access()), SETTINGS)
        assert isinstance(m, StoredMetrics)
        return {t: getattr(m, attr).reset_index(drop=True) for t, (attr, _) in TABLES.items()}
    finally:
        db.close()


def test_the_demo_writes_a_current_store(demo_db):
    db = Database(demo_db)
    try:
        stamp = read_stamp(db)
        assert stamp is not None and stamp.as_of == AS_OF
        assert is_current(db, SETTINGS)
    finally:
        db.close()


def test_stored_tables_equal_a_computation_from_scratch(demo_db):
    db = Database(demo_db)
    try:
        computed = ClinicalMetrics(Service(db, Scope.full_access()), SETTINGS)
        stored = StoredMetrics(Service(db, Scope.full_access()), SETTINGS)
        for table, (attr, _) in TABLES.items():
            fresh = _storable(getattr(computed, attr)).reset_index(drop=True)
            kept = getattr(stored, attr).reset_index(drop=True)
            assert len(fresh) > 0, table
            pd.testing.assert_frame_equal(fresh, kept, check_dtype=False, obj=table)
    finally:
        db.close()


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Missing values as None: pandas' NA when computed, NULL (None) when read."""
    frame = frame.reset_index(drop=True).astype(object)
    return frame.where(frame.notna(), None)


def test_an_episode_taken_from_its_clinicians_rows_is_the_episode_read_alone(demo_db):
    """The client page takes an episode's stored rows from its clinician's (kept per data version): the same
    rows, in the same order and with the same column types (exactly, not after a conversion) as a read of
    that episode alone, whatever the rest of the caseload holds: every fifth episode of the demo, among them
    episodes with no row in a table, and with a column that has no value for the episode but some for others
    of the caseload."""
    from alliance.db import load_query

    db = Database(demo_db)
    try:
        stored = StoredMetrics(Service(db, Scope.full_access()), SETTINGS)
        episodes = db._con.execute(
            "SELECT episode_id, clinician_id FROM episode ORDER BY episode_id"
        ).fetchall()
        alone = {
            q: load_query(q).sql.replace(
                "WHERE m.scope_clinician = $clinician_id",
                "WHERE m.scope_clinician = $clinician_id AND m.episode_id = $episode_id",
            )
            for q in StoredMetrics.EPISODE_READS.values()
        }
        assert all("$episode_id" in sql for sql in alone.values())
        empty = typed = 0
        for episode_id, clinician in episodes[::5]:
            taken = stored.episode_reads(episode_id, clinician)
            for attr, query in StoredMetrics.EPISODE_READS.items():
                own = db._con.execute(
                    alone[query],
                    {
                        "scope_all": True,
                        "scope_clinicians": [],
                        "clinician_id": clinician,
                        "episode_id": episode_id,
                    },
                ).df()
                pd.testing.assert_frame_equal(taken[attr], own, obj=f"{episode_id} {attr}")
                empty += own.empty
                typed += any(own[c].dtype == bool for c in own.columns)
        assert empty > 0 and typed > 0  # both kinds of episode were compared
    finally:
        db.close()


def test_a_caseloads_kept_rows_are_one_answer_for_every_viewer_who_may_see_it(demo_db):
    """The clinician's rows are kept under the viewer's scope narrowed to that clinician: a director, the
    clinician and a supervisor of theirs share one answer; a viewer outside gets no row and no one's rows."""
    db = Database(demo_db)
    try:
        episode_id, clinician, other = db._con.execute(
            "SELECT e.episode_id, e.clinician_id, (SELECT min(clinician_id) FROM clinician "
            "WHERE clinician_id <> e.clinician_id) FROM episode e ORDER BY e.episode_id LIMIT 1"
        ).fetchone()

        def reads(scope: Scope) -> dict:
            return StoredMetrics(Service(db, scope), SETTINGS).episode_reads(episode_id, clinician)

        director = reads(Scope.full_access())
        assert len(director["episode_end"]) == 1
        kept = db._clinician_run.cache_info().misses
        for viewer in (Scope.clinicians(clinician), Scope.clinicians(other, clinician)):
            mine = reads(viewer)
            for attr, frame in director.items():
                pd.testing.assert_frame_equal(mine[attr], frame, obj=attr)
        assert db._clinician_run.cache_info().misses == kept, "another viewer read the caseload again"
        outside = reads(Scope.clinicians(other))
        assert all(frame.empty for frame in outside.values())
    finally:
        db.close()


def test_one_episode_reads_its_status_at_every_rating_from_the_store(demo_db):
    """The client page's metrics of one episode: its change, status and status at every rating come from the
    stored tables (read by the episode's code, within the scope), equal to computing them from the episode's
    ratings; an episode outside the scope reads nothing."""
    db = Database(demo_db)
    try:
        full = Service(db, Scope.full_access())
        computed = ClinicalMetrics(full, SETTINGS)
        stored = StoredMetrics(full, SETTINGS)
        ends = computed.episode_end
        picks = ends.sort_values("n_sessions", ascending=False)["episode_id"].head(3).tolist()
        picks.append(ends.sort_values("n_sessions")["episode_id"].iloc[0])
        # and episodes with a sudden change and with an alliance event, so those stored rows are compared too
        picks += [
            computed.sudden_events["episode_id"].iloc[0],
            computed.alliance_events["episode_id"].iloc[0],
        ]
        compared = set()
        for episode_id in picks:
            client = ends.loc[ends["episode_id"] == episode_id, "client_id"].iloc[0]
            info = full.episodes(client).set_index("episode_id").loc[episode_id].to_dict()
            info["episode_id"] = episode_id
            ratings = full.episode_ratings(episode_id)
            fresh, kept = computed.for_episode(info, ratings), stored.for_episode(info, ratings)
            n_outcome = ratings.query("construct == 'outcome'")["score"].notna().sum()
            assert len(kept.session_status) == n_outcome > 0
            for attr in StoredMetrics.EPISODE_READS:
                if getattr(fresh, attr).empty:  # computed: no rows and maybe no columns; stored: no rows
                    assert getattr(kept, attr).empty, f"{episode_id} {attr}"
                    continue
                pd.testing.assert_frame_equal(
                    plain(_storable(getattr(fresh, attr))),
                    plain(getattr(kept, attr)),
                    obj=f"{episode_id} {attr}",
                )
                compared.add(attr)
            other = next(c for c in ends["clinician_id"].unique() if c != info["clinician_id"])
            elsewhere = StoredMetrics(Service(db, Scope.clinicians(other)), SETTINGS).for_episode(
                info, ratings
            )
            assert all(getattr(elsewhere, attr).empty for attr in StoredMetrics.EPISODE_READS)
        assert compared == set(StoredMetrics.EPISODE_READS)
    finally:
        db.close()


def test_stored_metrics_are_narrowed_by_scope_in_sql(demo_db):
    db = Database(demo_db)
    try:
        full = StoredMetrics(Service(db, Scope.full_access()), SETTINGS)
        one = full.episode_end["clinician_id"].iloc[0]
        scoped = full.for_scope(Service(db, Scope.clinicians(one)))
        episodes = set(full.episode_end.loc[full.episode_end["clinician_id"] == one, "episode_id"])
        for attr in StoredMetrics.SCOPED:
            frame = getattr(scoped, attr)
            assert len(frame) and set(frame["episode_id"]) <= episodes, attr
        # Nothing outside the scope is read: a scope of an unknown clinician sees no rows at all.
        nobody = full.for_scope(Service(db, Scope.clinicians("NO-SUCH")))
        assert all(getattr(nobody, attr).empty for attr in StoredMetrics.SCOPED)
    finally:
        db.close()


def test_stored_ratings_and_scoped_tables_equal_their_reads_through_the_episodes(demo_db):
    """Layout 4 keeps the per-episode tables and a copy of the ratings in clinician order, each row with its
    episode's clinician: narrowed by that column, a clinician's and a team's rows are exactly those found by
    joining through the episode table (the ratings equal ``Service.scoped_ratings`` row for row, in order),
    and each stored row's clinician is its episode's."""
    db = Database(demo_db)
    try:
        full = StoredMetrics(Service(db, Scope.full_access()), SETTINGS)
        ends = full.episode_end
        one = ends["clinician_id"].value_counts().index[0]
        team = ends.loc[ends["team_id"] == ends.loc[ends["clinician_id"] == one, "team_id"].iloc[0]]
        scopes = [Scope.clinicians(one), Scope.clinicians(*sorted(team["clinician_id"].unique()))]
        for scope in [Scope.full_access(), *scopes]:
            service = Service(db, scope)
            stored = full.for_scope(service)
            computed = ClinicalMetrics(service, SETTINGS)
            for construct in ("outcome", "alliance"):
                expected = service.scoped_ratings(construct)
                kept = getattr(stored, f"{construct}_ratings")
                assert len(expected) > 0
                pd.testing.assert_frame_equal(expected, kept, obj=f"{construct} ratings")
            if scope.all_clinicians:
                continue
            episodes = set(computed.episodes["episode_id"])
            for attr in StoredMetrics.SCOPED:
                frame = getattr(stored, attr)
                assert set(frame["episode_id"]) <= episodes, attr
                pd.testing.assert_frame_equal(
                    plain(frame),
                    plain(full_rows(full, attr, episodes)),
                    obj=attr,
                )
        con = duckdb.connect(str(demo_db), read_only=True)
        try:
            for table in (*SCOPED_TABLES, "metrics_ratings"):
                wrong, order = con.execute(
                    f"SELECT count(*) FILTER (WHERE m.scope_clinician IS DISTINCT FROM e.clinician_id), "
                    f"bool_and(m.scope_clinician >= lag_clinician OR lag_clinician IS NULL) "
                    f"FROM (SELECT *, lag(scope_clinician) OVER () AS lag_clinician FROM {table}) m "
                    f"JOIN episode e USING (episode_id)"
                ).fetchone()
                assert wrong == 0, table
                assert order, f"{table} is not kept in clinician order"
        finally:
            con.close()
    finally:
        db.close()


def test_the_pickers_read_the_stored_episode_list_as_the_live_queries_answer(demo_db):
    """The client page's lists (a clinician's clients, a client's episodes) come from the store's episode list:
    the same rows, columns and order as the queries over sessions and ratings, in every scope, and nothing
    outside the scope."""
    db = Database(demo_db)
    try:
        full = StoredMetrics(Service(db, Scope.full_access()), SETTINGS)
        ends = full.episode_end
        busiest = ends["clinician_id"].value_counts()
        clinicians = [busiest.index[0], busiest.index[-1]]
        many = ends["client_id"].value_counts()
        clients = [many.index[0], *ends.loc[ends["clinician_id"] == clinicians[0], "client_id"].head(5)]
        for scope in (Scope.full_access(), Scope.clinicians(clinicians[0])):
            service = Service(db, scope)
            stored = full.for_scope(service)
            for clinician in clinicians:
                live = service.clients(clinician)
                pd.testing.assert_frame_equal(live, stored.client_list(clinician), obj=clinician)
            for client in clients:
                live = service.episodes(client)
                kept = stored.client_episodes(client)
                assert len(live) or not scope.all_clinicians
                pd.testing.assert_frame_equal(plain(live), plain(kept), obj=client)
        outside = full.for_scope(Service(db, Scope.clinicians(clinicians[0])))
        assert outside.client_list(clinicians[1]).empty
    finally:
        db.close()


def full_rows(full: StoredMetrics, attr: str, episodes: set) -> pd.DataFrame:
    """The whole service's rows of ``attr`` for these episodes, in the computed order."""
    frame = getattr(full, attr)
    return frame[frame["episode_id"].isin(episodes)]


def test_one_changed_rating_makes_the_store_stale_and_refresh_updates_every_table(db_copy):
    before = stored_frames(db_copy)
    con = duckdb.connect(str(db_copy))
    # The latest ORS rating of a closed episode (so it feeds the bands) with a typical intake (a bin with many
    # episodes) and several ratings: from its value to the scale's floor (a big worsening).
    episode, session, old = con.execute(
        "SELECT episode_id, max(session_number), arg_max(score, session_number) FROM rating "
        "WHERE instrument = 'ORS' AND episode_id IN (SELECT episode_id FROM episode WHERE end_date IS NOT NULL) "
        "GROUP BY episode_id HAVING count(*) >= 6 AND max(session_number) <= 12 "
        "AND arg_min(score, session_number) BETWEEN 15 AND 22 ORDER BY episode_id LIMIT 1"
    ).fetchone()
    con.execute(
        # Sessions 1 and 2 too: the intake feeds the service scales, and the bands are fitted only through
        # sessions that many reference episodes reached.
        "UPDATE rating SET score = 0 WHERE episode_id = $e AND session_number IN (1, 2, $s) AND instrument = 'ORS'",
        {"e": episode, "s": session},
    )
    con.close()
    db = Database(db_copy)
    try:
        assert not is_current(db, SETTINGS)  # stale: never read
        assert type(metrics_for(Service(db, Scope.full_access()), SETTINGS)) is ClinicalMetrics
    finally:
        db.close()
    refresh(db_copy, SETTINGS)
    after = stored_frames(db_copy)
    change = after["metrics_episode_change"].set_index(["episode_id", "instrument"])
    assert change.loc[(episode, "ORS"), "latest"] == 0 and old > 0
    # Every table that depends on outcome ratings changed; the service-wide ones too (bands, scales).
    for table in (
        "metrics_episode_change",
        "metrics_episode_status",
        "metrics_etr_bands",
        "metrics_service_scales",
        "metrics_expected_change",
    ):
        assert not before[table].equals(after[table]), table


def test_changed_settings_or_date_make_the_store_stale(demo_db):
    db = Database(demo_db)
    try:
        assert is_current(db, SETTINGS)
        sensitive = dataclasses.replace(SETTINGS, alliance=AllianceRules(k=1.0))
        assert not is_current(db, sensitive)
        assert not is_current(db, dataclasses.replace(SETTINGS, inactivity_days=90))
        assert not is_current(db, dataclasses.replace(SETTINGS, as_of=AS_OF.replace(day=2)))
        assert type(metrics_for(Service(db, Scope.full_access()), sensitive)) is ClinicalMetrics
    finally:
        db.close()


def test_a_database_without_a_store_is_computed(empty_db):
    db = Database(empty_db)
    try:
        assert read_stamp(db) is None
        assert type(metrics_for(Service(db, Scope.full_access()))) is ClinicalMetrics
    finally:
        db.close()


def test_cli_refresh(db_copy, capsys):
    from alliance.cli import main

    con = duckdb.connect(str(db_copy))
    con.execute("DROP TABLE metrics_meta")
    con.close()
    args = ["refresh", "--db", str(db_copy), "--as-of", AS_OF.isoformat(), "--if-stale"]
    assert main(args) == 0  # stale (no stamp): refreshed
    assert "refreshed" in capsys.readouterr().out
    db = Database(db_copy)
    try:
        assert is_current(db, SETTINGS)
    finally:
        db.close()
    # Current: --if-stale leaves the file alone (make serve runs it at every start on the demo).
    before = db_copy.stat().st_mtime_ns, db_copy.stat().st_ino
    assert main(args) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert (db_copy.stat().st_mtime_ns, db_copy.stat().st_ino) == before


def test_empty_stored_tables_are_read_by_scope(edge_db):
    """The edge cases have no sudden events: the empty stored table must still answer a restricted scope
    (an untyped empty column would be stored as DOUBLE and break the comparison with episode codes)."""
    db = Database(edge_db)
    try:
        full = metrics_for(Service(db, Scope.full_access()))
        assert isinstance(full, StoredMetrics) and full.sudden_events.empty
        one = full.for_scope(Service(db, Scope.clinicians("CL91")))
        for attr in StoredMetrics.SCOPED:
            getattr(one, attr)  # no Binder Error
        assert set(one.episode_end["clinician_id"]) == {"CL91"}
    finally:
        db.close()


def test_the_comparison_from_its_narrow_reads_equals_the_one_from_the_full_frames(demo_db):
    """The comparison page adds up only the columns and rows it uses (``comparison_inputs``): the same table,
    rates and effect sizes as from the whole episode frames, for every outcome measure and with filters."""
    from alliance.clinician_comparison import ComparisonFilter, comparison_frames

    db = Database(demo_db)
    try:
        full = Service(db, Scope.full_access())
        computed = ClinicalMetrics(full, SETTINGS)
        stored = StoredMetrics(full, SETTINGS)
        team = computed.episode_end["team_id"].dropna().iloc[0]
        filters = [ComparisonFilter(code) for code in computed.episode_change["instrument"].unique()]
        filters.append(ComparisonFilter("ORS", team_id=team, start=AS_OF.replace(year=AS_OF.year - 1)))
        for f in filters:
            whole = comparison_frames(
                computed.episode_change, computed.episode_end, computed.episode_alliance, f
            )
            narrow = comparison_frames(*stored.comparison_inputs(f.instrument), f)
            assert len(whole["table"]) > 0, f
            for key in ("table", "rates", "es"):
                pd.testing.assert_frame_equal(whole[key], narrow[key], check_dtype=False, obj=f"{f} {key}")
    finally:
        db.close()
