"""Every named query runs against a small generated database and returns exactly its documented columns;
every query takes the viewer's scope and applies it in SQL."""

import pandas as pd
import pytest

from alliance.db import Database, load_query, query_names
from alliance.scope import Scope
from alliance.service import Service

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
