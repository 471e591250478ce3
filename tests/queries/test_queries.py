"""Every named query runs against a small generated database and returns exactly its documented columns;
every query takes the viewer's scope and applies it in SQL."""

import pandas as pd
import pytest

from alliance.db import Database, load_query, query_names
from alliance.scope import Scope
from alliance.service import Service
from alliance.store import StoredMetrics

SCOPE_PARAMS = {"scope_all", "scope_clinicians"}


@pytest.fixture(scope="module")
def db(demo_db):
    database = Database(demo_db)
    yield database
    database.close()


@pytest.fixture(scope="module")
def sample(db):
    """Real ids from the database to feed the queries' parameters."""
    con = db._con.cursor()
    episode_id, client_id, clinician_id = con.execute(
        "SELECT e.episode_id, e.client_id, e.clinician_id FROM episode e "
        "JOIN rating r USING (episode_id) "
        "WHERE e.episode_id IN (SELECT episode_id FROM rating_item WHERE instrument = 'SRS') "
        # with a stored sudden change and alliance event: every one-episode query then has rows to return
        "AND e.episode_id IN (SELECT episode_id FROM metrics_sudden_events) "
        "AND e.episode_id IN (SELECT episode_id FROM metrics_alliance_events) "
        "GROUP BY ALL HAVING count(*) > 6 ORDER BY 1 LIMIT 1"
    ).fetchone()
    return {
        "episode_id": episode_id,
        "client_id": client_id,
        "clinician_id": clinician_id,
        "construct": "outcome",
        "as_of": "2026-11-01",
        "inactivity_days": 60,
        "instrument": "SRS",
        "outcome_instrument": "ORS",
    }


def test_queries_exist():
    assert {
        "service_overview",
        "clinicians",
        "clinician_clients",
        "client_episodes",
        "episode_ratings",
    } <= set(query_names())


@pytest.mark.parametrize("name", query_names())
def test_query_takes_the_viewers_scope(name):
    q = load_query(name)
    if q.scope_note:  # registry, file metadata or a service-wide aggregate: says so in its header
        assert "client" not in set(q.columns) and "client_id" not in set(q.columns), name
        return
    assert SCOPE_PARAMS <= set(q.params), f"queries/{name}.sql ignores the scope"


@pytest.mark.parametrize("name", query_names())
def test_query_returns_its_documented_columns_and_rows(db, sample, name):
    q = load_query(name)
    params = {p: sample[p] for p in q.params if p not in SCOPE_PARAMS}
    scope = {} if q.scope_note else Scope.full_access().params()
    frame = db.query(name, **scope, **params)
    assert isinstance(frame, pd.DataFrame)
    assert tuple(frame.columns) == q.columns
    assert len(frame) > 0


def test_parameters_are_checked(db):
    with pytest.raises(TypeError, match="missing parameters"):
        db.query("clinician_clients", **Scope.full_access().params())
    with pytest.raises(TypeError, match="unexpected"):
        db.query("clinicians", **Scope.full_access().params(), clinician_id="x")


def test_scope_limits_every_answer_to_the_viewers_clinicians(db, sample):
    mine = sample["clinician_id"]
    full = Service(db, Scope.full_access())
    scoped = Service(db, Scope.clinicians(mine))
    assert set(scoped.clinicians()["clinician_id"]) == {mine}
    assert scoped.overview().n_episodes < full.overview().n_episodes
    assert len(scoped.episode_ratings(sample["episode_id"])) > 0
    # Another clinician's episode is invisible in the query itself, not just hidden by the UI.
    other = full.clinicians().query("clinician_id != @mine").iloc[0]["clinician_id"]
    theirs = Service(db, Scope.clinicians(other))
    assert theirs.episode_ratings(sample["episode_id"]).empty
    assert theirs.clients(mine).empty
    assert theirs.episodes(sample["client_id"]).query("clinician_id == @mine").empty
    nobody = Service(db, Scope.clinicians())
    assert nobody.overview().empty and nobody.clinicians().empty


def test_user_input_is_bound_not_formatted(db):
    # A hostile value is treated as a value: no rows, no error, no injection.
    svc = Service(db, Scope.full_access())
    assert svc.episodes("x' OR '1'='1").empty
    assert svc.episode_ratings("'; DROP TABLE rating; --").empty


def test_episode_ratings_shows_gaps_and_norms(edge_db):
    svc = Service.open(edge_db)
    frame = svc.episode_ratings("X-GAPS-1")
    ors = frame[frame["instrument"] == "ORS"].set_index("session_number")
    # Sessions 1..5: ORS missing at 2 (session held, SRS only) and at 3 (no session row at all).
    assert list(ors.index) == [1, 2, 3, 4, 5]
    assert ors["score"].isna().tolist() == [False, True, True, False, False]
    assert pd.isna(ors.loc[3, "session_date"]) and not pd.isna(ors.loc[2, "session_date"])
    assert set(ors["cutoff"]) == {25} and set(ors["clinical_side"]) == {"below"}


def test_population_norms_are_used(edge_db):
    svc = Service.open(edge_db)
    srs = svc.episode_ratings("X-ONLYALL-1")
    assert set(srs["instrument"]) == {"SRS"} and set(srs["cutoff"]) == {36}


def test_small_answers_are_kept_per_version_of_the_file_and_per_scope(demo_db, tmp_path):
    """A ``-- cache: per data version`` query (pickers, the store's stamp) is run once per open version of the
    file, scope and parameters; each caller gets its own copy; a new version of the file is a new Database
    and answers from its own data; a connection being written never keeps an answer."""
    import shutil

    import duckdb

    from alliance.db import forget_databases, open_database

    cached = [n for n in query_names() if load_query(n).cached]
    assert {"clinicians", "clinician_clients", "scope_has_ratings", "metrics_meta"} <= set(cached)
    # One episode's rows too (about 24 KB an episode, in a cache bounded to 4,096 answers): a step back to an
    # episode seen before reads nothing, and the landing episode of every new client page is read once.
    assert {"episode_ratings", *StoredMetrics.EPISODE_READS.values()} <= set(cached)

    path = tmp_path / "copy.duckdb"
    shutil.copy(demo_db, path)
    db = open_database(path)
    full = Service(db, Scope.full_access())
    first = full.clinicians()
    one = first["clinician_id"].iloc[0]
    calls = db._cached_run.cache_info().misses
    again = full.clinicians()
    assert db._cached_run.cache_info().misses == calls  # answered from what was kept
    pd.testing.assert_frame_equal(first, again)
    again.loc[:, "n_episodes"] = -1  # a caller that changes its frame changes only its own copy
    assert (full.clinicians()["n_episodes"] >= 0).all()
    # Another scope is another answer, never the full one.
    assert set(Service(db, Scope.clinicians(one)).clinicians()["clinician_id"]) == {one}
    other = next(c for c in first["clinician_id"] if c != one)
    episode = db.query("scoped_episodes", **Scope.clinicians(other).params())["episode_id"].iloc[0]
    assert len(full.episode_ratings(episode)) > 0  # kept for the full scope
    assert Service(db, Scope.clinicians(one)).episode_ratings(episode).empty, "another scope's kept rows"
    kept = db._cached_run.cache_info().misses
    assert kept == calls + 3  # the scoped clinicians, and the episode's rows for each scope

    # A new version of the file (written beside it and swapped in, as import and refresh do).
    new = tmp_path / "new.duckdb"
    shutil.copy(demo_db, new)
    con = duckdb.connect(str(new))
    team = first["team_id"].iloc[0]
    con.execute("INSERT INTO clinician (clinician_id, team_id) VALUES ('CL-NEW', ?)", [team])
    con.close()
    new.replace(path)
    reopened = open_database(path)
    assert reopened is not db
    answer = Service(reopened, Scope.full_access()).clinicians()
    assert set(answer["clinician_id"]) == set(first["clinician_id"]) | {"CL-NEW"}
    assert db._cached_run.cache_info().misses == kept  # the old version kept its own answers

    forget_databases()

    # A connection being written (the store, an import) runs every query afresh.
    writable = tmp_path / "writing.duckdb"
    shutil.copy(demo_db, writable)
    con = duckdb.connect(str(writable))
    try:
        writing = Database.on_connection(con, writable)
        before = writing.query("clinicians", **Scope.full_access().params())
        con.execute("INSERT INTO clinician (clinician_id, team_id) VALUES ('CL-NEW2', ?)", [team])
        after = writing.query("clinicians", **Scope.full_access().params())
        assert "CL-NEW2" in set(after["clinician_id"]) and len(after) == len(before) + 1
    finally:
        con.close()


def test_a_clinicians_stored_rows_are_kept_apart_in_a_smaller_cache(demo_db, monkeypatch):
    """``-- cache: per data version, one clinician`` (a caseload's stored rows, a few MB at service scale) is kept
    in a cache of its own, bounded to ``CLINICIAN_ANSWERS``, so that the many small answers cannot push a
    caseload out and caseloads cannot fill the small answers' 4,096 places; each caller gets a copy."""
    from alliance import db as db_module

    per_clinician = [n for n in query_names() if load_query(n).per_clinician]
    assert set(per_clinician) == set(StoredMetrics.EPISODE_READS.values())
    assert all(load_query(n).cached for n in per_clinician)
    assert not any(load_query(n).per_clinician for n in ("clinicians", "episode_ratings"))
    monkeypatch.setattr(db_module, "CLINICIAN_ANSWERS", 2)
    database = Database(demo_db)
    try:
        scope = Scope.full_access().params()
        ids = database.query("clinicians", **scope)["clinician_id"].tolist()[:3]
        first = database.query("metrics_episode_end_clinician", clinician_id=ids[0], **scope)
        assert len(first) > 0 and set(first["clinician_id"]) == {ids[0]}
        first.loc[:, "n_sessions"] = -1  # the caller's own copy
        again = database.query("metrics_episode_end_clinician", clinician_id=ids[0], **scope)
        assert (again["n_sessions"] > 0).all()
        kept = database._clinician_run.cache_info()
        assert (kept.hits, kept.misses, kept.maxsize) == (1, 1, 2)
        assert database._cached_run.cache_info().currsize == 1  # only the clinicians' list
        for clinician in ids[1:]:  # two more caseloads: the first one's answer is dropped
            database.query("metrics_episode_end_clinician", clinician_id=clinician, **scope)
        database.query("metrics_episode_end_clinician", clinician_id=ids[0], **scope)
        assert database._clinician_run.cache_info().misses == 4
    finally:
        database.close()


def test_a_database_with_kept_answers_is_freed_when_let_go(demo_db):
    """The kept answers hold no reference back to their Database: an old version of a file (and its DuckDB
    connection and cache) goes as soon as no session holds it, without waiting for the cycle collector."""
    import gc
    import weakref

    database = Database(demo_db)
    Service(database, Scope.full_access()).clinicians()  # an answer kept
    assert database._cached_run.cache_info().currsize == 1
    gone = weakref.ref(database)
    gc.disable()
    try:
        del database
        assert gone() is None
    finally:
        gc.enable()
