"""The demo generator: a database that satisfies the schema, is reproducible, respects its 'today', looks like
a real service (docs/methods.md §12) and carries planted events where the tests of the detectors can find them."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from alliance import demo
from alliance.demo import write as demo_write
from alliance.schema import check_schema

AS_OF = dt.date(2026, 11, 1)
SEED = 3
#: Reliable change thresholds (docs/methods.md §3, data/instruments.toml).
RELIABLE_CHANGE = {"ORS": 5.0, "PHQ-9": 6.0, "GAD-7": 4.0}
HIGHER_IS_BETTER = {"ORS": True, "SRS": True, "WAI-SR": True, "PHQ-9": False, "GAD-7": False}
#: Instruments rated at every session of an episode that uses them; WAI-SR at sessions 1, 3, 5, …
EVERY_SESSION = {"ORS", "SRS", "PHQ-9", "GAD-7"}


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory):
    """The default-size demo (1,500 episodes), written once through write_demo."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    counts = demo.write_demo(path, seed=SEED, as_of=AS_OF)
    return path, counts


@pytest.fixture(scope="module")
def tables(demo_file) -> dict[str, pd.DataFrame]:
    """Every demo table as read back from the file, plus the instrument registry."""
    path, _ = demo_file
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.execute(f"SELECT * FROM {t}").df() for t in (*demo.TABLES, "instrument")}
    finally:
        con.close()


@pytest.fixture(scope="module")
def episodes(tables) -> pd.DataFrame:
    """One row per episode with its closing status and first/last rating on the primary outcome measure
    (ORS, or PHQ-9 for PHQ-9 + GAD-7 clinicians): intake, latest, improvement, n ratings."""
    ep = tables["episode"].set_index("episode_id")
    sessions = tables["session"].groupby("episode_id").session_date.agg(["max", "count"])
    ep["last_session"], ep["n_sessions"] = sessions["max"], sessions["count"]
    # docs/methods.md §9: closed = discharge record or no session for 60 days.
    ep["closed"] = ep.end_date.notna() | (ep.last_session < pd.Timestamp(AS_OF) - pd.Timedelta(days=60))
    ratings = tables["rating"]
    primary = ratings[ratings.instrument.isin(["ORS", "PHQ-9"])].sort_values(["episode_id", "session_number"])
    outcome = primary.groupby("episode_id").agg(
        instrument=("instrument", "first"),
        intake=("score", "first"),
        latest=("score", "last"),
        n_ratings=("score", "size"),
    )
    ep = ep.join(outcome)
    direction = np.where(ep.instrument == "ORS", 1.0, -1.0)
    ep["improvement"] = direction * (ep.latest - ep.intake)
    ep["reliable_change"] = ep.instrument.map(RELIABLE_CHANGE)
    alliance = ratings[ratings.instrument.isin(["SRS", "WAI-SR"])].groupby("episode_id").score.mean()
    ep["mean_alliance"] = alliance
    return ep


@pytest.fixture(scope="module")
def compared(episodes) -> pd.DataFrame:
    """ORS episodes a clinician comparison counts: closed, with at least two ratings (docs/methods.md §10)."""
    return episodes[episodes.closed & (episodes.n_ratings >= 2) & (episodes.instrument == "ORS")]


# --- Building and writing ---------------------------------------------------------------------------------
def test_write_demo_satisfies_the_schema_and_counts_rows(demo_file, tables):
    path, counts = demo_file
    con = duckdb.connect(str(path), read_only=True)
    try:
        check_schema(con, path)  # an Alliance database of the current schema version
    finally:
        con.close()
    assert counts == {t: len(tables[t]) for t in demo.TABLES}
    assert counts["episode"] == 1500 and counts["rating_item"] > counts["rating"] > counts["session"]


def test_same_seed_gives_the_same_frames_and_another_seed_does_not():
    first, second = demo.generate(200, seed=5, as_of=AS_OF), demo.generate(200, seed=5, as_of=AS_OF)
    for table in demo.TABLES:
        pd.testing.assert_frame_equal(first[table], second[table])
    other = demo.generate(200, seed=6, as_of=AS_OF)
    assert not first["rating"].equals(other["rating"])
    assert set(first["client"].client_id) != set(other["client"].client_id)


def test_generated_frames_match_what_is_written(tables):
    frames = demo.generate(seed=SEED, as_of=AS_OF)
    for table in demo.TABLES:
        assert list(frames[table].columns) == list(tables[table].columns), table
        assert len(frames[table]) == len(tables[table]), table
    written = tables["rating"].sort_values(["episode_id", "session_number", "instrument"], ignore_index=True)
    made = frames["rating"].sort_values(["episode_id", "session_number", "instrument"], ignore_index=True)
    assert (written.score.to_numpy() == made.score.to_numpy()).all()


def test_as_of_only_shifts_the_dates():
    later = dt.date(2027, 3, 15)
    shift = pd.Timedelta(days=(later - AS_OF).days)
    base, moved = demo.generate(300, seed=2, as_of=AS_OF), demo.generate(300, seed=2, as_of=later)
    for table in demo.TABLES:
        a, b = base[table], moved[table]
        for column in a.columns:
            if column.endswith("_date"):
                same = (a[column] + shift == b[column]) | (a[column].isna() & b[column].isna())
                assert same.all(), (table, column)
            else:
                pd.testing.assert_series_equal(a[column], b[column])


def test_dates_respect_as_of(tables, episodes):
    today = pd.Timestamp(AS_OF)
    sessions = tables["session"].sort_values(["episode_id", "session_number"])
    assert sessions.session_date.max() <= today
    assert episodes.start_date.min() >= today - pd.Timedelta(days=demo.START_WINDOW_DAYS)
    assert episodes.end_date.dropna().max() <= today
    # Strictly increasing dates, numbered 1, 2, … without holes, starting at the episode's start date.
    assert (sessions.groupby("episode_id").session_date.diff().dropna() > pd.Timedelta(0)).all()
    assert (sessions.groupby("episode_id").session_number.diff().dropna() == 1).all()
    first = sessions.groupby("episode_id").session_date.first()
    assert (first == episodes.start_date.reindex(first.index)).all()
    recorded = episodes.end_date.notna()
    assert (episodes.end_date[recorded] >= episodes.last_session[recorded]).all()


def test_scores_lie_within_instrument_ranges(tables):
    ins = tables["instrument"].set_index("code")
    rating = tables["rating"].join(ins[["min_score", "max_score"]], on="instrument")
    assert rating.score.between(rating.min_score, rating.max_score).all()
    items = tables["rating_item"].join(ins[["item_min", "item_max", "n_items"]], on="instrument")
    assert items.score.between(items.item_min, items.item_max).all()
    assert items.item_no.between(1, items.n_items).all()
    # ORS and SRS are read to one decimal; PHQ-9, GAD-7 and WAI-SR are integers.
    tenths = rating.score * 10
    assert np.allclose(tenths, tenths.round())
    whole = rating[rating.instrument.isin(["PHQ-9", "GAD-7", "WAI-SR"])].score
    assert (whole == whole.round()).all()


def test_item_scores_sum_to_the_stored_total(tables):
    items = (
        tables["rating_item"]
        .groupby(["episode_id", "session_number", "instrument"])
        .score.agg(["sum", "size"])
    )
    rating = tables["rating"].set_index(["episode_id", "session_number", "instrument"])
    with_items = rating[rating.index.get_level_values("instrument").isin(["ORS", "SRS", "WAI-SR"])]
    assert len(with_items) == len(items)  # every ORS, SRS and WAI-SR rating has its items, and only those
    joined = with_items.join(items)
    assert np.allclose(joined["sum"], joined.score, atol=1e-9)
    expected_items = joined.index.get_level_values("instrument").map({"ORS": 4, "SRS": 4, "WAI-SR": 12})
    assert (joined["size"] == expected_items).all()


# --- The service ------------------------------------------------------------------------------------------
def test_about_thirty_clinicians_in_four_teams_led_by_members(tables):
    team, clinician = tables["team"], tables["clinician"]
    assert len(clinician) == 30 and len(team) == 4
    assert list(team.team_id) == ["T1", "T2", "T3", "T4"]
    assert clinician.clinician_id.str.fullmatch(r"CL\d{2}").all()
    member_of = clinician.set_index("clinician_id").team_id
    assert (member_of[team.supervisor_id].to_numpy() == team.team_id.to_numpy()).all()
    caseload = tables["episode"].clinician_id.value_counts()
    # A supervisor carries a few clients, fewer than a typical clinician.
    assert caseload.reindex(team.supervisor_id, fill_value=0).max() < caseload.median()


def test_clinicians_use_one_instrument_set_and_populations_fit(tables, episodes):
    rating = tables["rating"].merge(tables["episode"][["episode_id", "clinician_id"]], on="episode_id")
    sets = rating.groupby("clinician_id").instrument.agg(lambda s: tuple(sorted(set(s))))
    assert set(sets) == {("ORS", "SRS"), ("GAD-7", "PHQ-9", "WAI-SR")}
    assert 0.65 <= (sets == ("ORS", "SRS")).mean() <= 0.85  # about 75 % use ORS + SRS
    # PHQ-9 / GAD-7 clients are adults; ORS clients are mostly adults with some adolescents and children.
    assert (episodes[episodes.instrument == "PHQ-9"].population == "adult").all()
    ors_population = episodes[episodes.instrument == "ORS"].population.value_counts(normalize=True)
    assert 0.7 <= ors_population["adult"] <= 0.9 and ors_population[["adolescent", "child"]].min() > 0.03
    wai = tables["rating"][tables["rating"].instrument == "WAI-SR"]
    assert (wai.session_number % 2 == 1).all()  # every second session: 1, 3, 5, …


def test_clients_are_pseudonymous_and_some_return(tables):
    client, episode = tables["client"], tables["episode"]
    assert client.client_id.str.fullmatch(r"C-[0-9a-f]{6}").all() and client.client_id.is_unique
    assert set(episode.client_id) == set(client.client_id)
    assert episode.episode_id.str.fullmatch(r"E\d{6}").all()
    per_client = episode.groupby("client_id").size()
    assert 0.07 <= (per_client >= 2).mean() <= 0.13  # about 10 % of clients have a second episode
    # A second episode starts after the first one's last session.
    last = tables["session"].groupby("episode_id").session_date.max()
    returning = episode[episode.client_id.isin(per_client[per_client >= 2].index)].sort_values("start_date")
    returning = returning.assign(last_session=returning.episode_id.map(last))
    previous_last = returning.groupby("client_id").last_session.shift()
    assert (returning.start_date[previous_last.notna()] > previous_last.dropna()).all()


def test_there_are_open_closed_and_inactive_episodes(episodes):
    recent = episodes.last_session >= pd.Timestamp(AS_OF) - pd.Timedelta(days=60)
    is_open = episodes.end_date.isna() & recent
    inactive = episodes.end_date.isna() & ~recent  # closed by 60 days without a session (docs/methods.md §9)
    assert 0.05 <= is_open.mean() <= 0.25
    assert inactive.sum() >= 10
    assert episodes.end_reason[is_open | inactive].isna().all()
    assert set(episodes.end_reason.dropna()) == {"planned", "dropout", "transferred"}
    planned = episodes[episodes.end_reason == "planned"]
    assert (planned.end_date == planned.last_session).all()
    assert planned.n_sessions.between(*demo.PLANNED_SESSIONS_RANGE).all()
    assert 6 <= planned.n_sessions.median() <= 12


# --- Realism: docs/methods.md §12 --------------------------------------------------------------------------------
def test_ors_adult_intake(episodes):
    # docs/methods.md §12 / §3: ORS adult outpatient intake about 19 (SD about 7) — OpenFIT, Miller et al. 2003.
    intake = episodes[(episodes.instrument == "ORS") & (episodes.population == "adult")].intake
    assert 17 <= intake.mean() <= 21
    assert 5.5 <= intake.std() <= 8.5


def test_srs_is_mostly_high_with_a_ceiling(tables):
    # docs/methods.md §12: SRS mostly 34–40 with a ceiling at 40 and a long low tail (Duncan et al. 2003).
    srs = tables["rating"][tables["rating"].instrument == "SRS"]
    assert srs.score.median() >= 36
    assert (srs.score >= 39).mean() >= 0.25
    assert (srs.score < 30).mean() > 0.005  # the long low tail
    # docs/methods.md §7 ceiling: some clients give 39 or more at 80 % of their ratings.
    at_ceiling = srs.groupby("episode_id").score.apply(lambda s: (s >= 39).mean() >= 0.8)
    assert 0.05 <= at_ceiling.mean() <= 0.5
    wai = tables["rating"][tables["rating"].instrument == "WAI-SR"].score
    assert wai.between(40, 58).mean() >= 0.75  # WAI-SR totals mostly 40–58 (brief)


def test_dropout_share(episodes):
    # docs/methods.md §9 / §12: dropout about 20 % (Swift & Greenberg 2012); dropout = closed without a planned
    # ending before reliable improvement.
    closed = episodes[episodes.closed]
    improved = closed.improvement >= closed.reliable_change
    dropout = ~closed.end_reason.isin(["planned", "transferred"]) & ~improved
    assert 0.15 <= dropout.mean() <= 0.25


def test_reliable_deterioration_share(episodes):
    # docs/methods.md §12: about 5–10 % of clients reliably deteriorate (Lambert 2013); range 4–12 % here.
    rated = episodes[episodes.closed & (episodes.n_ratings >= 2)]
    deteriorated = rated.improvement <= -rated.reliable_change
    assert 0.04 <= deteriorated.mean() <= 0.12


def test_alliance_outcome_correlation(compared):
    # docs/methods.md §12: alliance–outcome r about .28 (Flückiger et al. 2018 meta-analysis); range .15–.45 here.
    r = compared.mean_alliance.corr(compared.improvement)
    assert 0.15 <= r <= 0.45


def test_therapist_effect_icc(compared):
    # docs/methods.md §10 / §12: therapist effects about 5 % of outcome variance (Baldwin & Imel 2013); one-way
    # ANOVA ICC(1) on ORS improvement between 1 % and 15 % (the planted clinicians add to the natural spread).
    icc = _one_way_icc(compared.improvement, compared.clinician_id)
    assert 0.01 <= icc <= 0.15


def test_planted_clinicians_fall_outside_funnel_limits(tables, compared):
    # docs/methods.md §10: funnel plot (Spiegelhalter 2005), 95 % limits around the service mean improvement.
    planted = tables["planted_events"]
    mean, sd = compared.improvement.mean(), compared.improvement.std()
    for event_type, sign in (("clinician_better", 1), ("clinician_worse", -1)):
        clinicians = planted[planted.event_type == event_type].clinician_id
        assert len(clinicians) == 2
        for clinician in clinicians:
            own = compared.improvement[compared.clinician_id == clinician]
            assert len(own) >= 20
            z = (own.mean() - mean) / (sd / np.sqrt(len(own)))
            assert sign * z > 1.96, (event_type, clinician, z)
    low = planted[planted.event_type == "clinician_low_alliance"].clinician_id
    srs = tables["rating"][tables["rating"].instrument == "SRS"].merge(
        tables["episode"][["episode_id", "clinician_id"]], on="episode_id"
    )
    is_low = srs.clinician_id.isin(low)
    assert 2.5 <= srs.score[~is_low].mean() - srs.score[is_low].mean() <= 5.0  # SRS about 3–4 points lower


def test_missing_ratings(tables, episodes):
    # Brief: about 4 % of ratings missing at random; a few sessions with one of two instruments missing.
    sessions = tables["session"].merge(episodes[["instrument"]], left_on="episode_id", right_index=True)
    ors_sessions = (sessions.instrument == "ORS").sum()
    phq = sessions[sessions.instrument == "PHQ-9"]
    expected = 2 * ors_sessions + 2 * len(phq) + (phq.session_number % 2 == 1).sum()
    missing = 1 - len(tables["rating"]) / expected
    assert 0.025 <= missing <= 0.055
    # At ORS + SRS sessions: some have neither rating, a few have only one of the two.
    per_session = tables["rating"].groupby(["episode_id", "session_number"]).size()
    is_ors_session = sessions.set_index(["episode_id", "session_number"]).instrument == "ORS"
    ratings_at_ors_sessions = per_session.reindex(is_ors_session[is_ors_session].index, fill_value=0)
    assert (ratings_at_ors_sessions == 1).sum() >= 5 and (ratings_at_ors_sessions == 0).sum() >= 50


# --- Planted events ---------------------------------------------------------------------------------------
def test_planted_events_cover_every_type_and_point_at_real_sessions(tables, episodes):
    planted = tables["planted_events"]
    assert list(planted.event_id) == list(range(1, len(planted) + 1))
    assert set(planted.event_type) == {
        "sudden_gain",
        "sudden_loss",
        "rupture_repaired",
        "rupture_unrepaired",
        "deterioration",
        "clinician_better",
        "clinician_worse",
        "clinician_low_alliance",
    }
    of_clinician = planted.event_type.str.startswith("clinician_")
    assert planted[of_clinician].episode_id.isna().all() and planted[of_clinician].session_number.isna().all()
    of_episode = planted[~of_clinician]
    assert (
        of_episode.clinician_id.to_numpy() == episodes.clinician_id[of_episode.episode_id].to_numpy()
    ).all()
    assert (
        of_episode.session_number.to_numpy() <= episodes.n_sessions[of_episode.episode_id].to_numpy()
    ).all()
    # Rates: sudden gains about 12 % of outcome episodes with 7 or more sessions, losses about 3 %,
    # deterioration about 5 % of episodes, ruptures about 8 % and 4 % of episodes with 6+ alliance ratings.
    long_episodes = (episodes.n_sessions >= 7).sum()
    per_episode = of_episode.drop_duplicates(["episode_id", "event_type"]).event_type.value_counts()
    assert 0.08 <= per_episode["sudden_gain"] / long_episodes <= 0.16
    assert 0.01 <= per_episode["sudden_loss"] / long_episodes <= 0.06
    assert 0.03 <= per_episode["deterioration"] / len(episodes) <= 0.08
    alliance_ratings = tables["rating"][tables["rating"].instrument.isin(["SRS", "WAI-SR"])]
    eligible = (alliance_ratings.groupby("episode_id").size() >= 6).sum()
    assert 0.05 <= per_episode["rupture_repaired"] / eligible <= 0.13
    assert 0.02 <= per_episode["rupture_unrepaired"] / eligible <= 0.08
    # Events in one episode are kept apart.
    apart = of_episode.drop_duplicates(["episode_id", "event_type"]).groupby("episode_id").session_number
    assert (apart.agg(lambda s: s.diff().abs().min() if len(s) > 1 else 99) >= demo.EVENT_SPACING).all()


def test_planted_events_are_never_at_missing_ratings(tables, episodes):
    planted = tables["planted_events"].dropna(subset=["episode_id"])
    present = set(
        zip(
            tables["rating"].episode_id,
            tables["rating"].session_number,
            tables["rating"].instrument,
            strict=True,
        )
    )
    for event in planted.itertuples():
        step = 1 if event.instrument in EVERY_SESSION else 2
        for offset in range(-3 * step, 3 * step + 1, step):
            session = event.session_number + offset
            if 1 <= session <= episodes.n_sessions[event.episode_id]:
                assert (event.episode_id, session, event.instrument) in present, (event, session)


def test_planted_sudden_shifts_meet_tang_and_derubeis(tables):
    # docs/methods.md §6: criteria 1–3 on the severity scale, with the instrument's reliable change as cut-off.
    scores = _scores_by_session(tables)
    planted = tables["planted_events"]
    for event in planted[planted.event_type.isin(["sudden_gain", "sudden_loss"])].itertuples():
        severity = _severity(event.instrument, scores[event.instrument].loc[event.episode_id])
        n = event.session_number
        sign = 1 if event.event_type == "sudden_gain" else -1
        change = sign * (severity[n] - severity[n + 1])
        assert change >= RELIABLE_CHANGE[event.instrument], event
        assert change >= 0.25 * severity[n], event
        pre, post = severity[[n - 2, n - 1, n]], severity[[n + 1, n + 2, n + 3]]
        pooled_sd = np.sqrt((2 * pre.var() + 2 * post.var()) / 4)
        assert sign * (pre.mean() - post.mean()) > 2.776 * pooled_sd, event
        assert sign * event.magnitude == pytest.approx(change, abs=0.051)


def test_planted_deterioration_ends_reliably_worse(tables):
    scores = _scores_by_session(tables)
    planted = tables["planted_events"]
    for event in planted[planted.event_type == "deterioration"].itertuples():
        series = scores[event.instrument].loc[event.episode_id].dropna()
        assert series.index[-1] == event.session_number  # the last rating
        direction = 1 if HIGHER_IS_BETTER[event.instrument] else -1
        worsening = -direction * (series.iloc[-1] - series.iloc[0])
        assert worsening >= RELIABLE_CHANGE[event.instrument], event


def test_planted_ruptures_drop_below_baseline_and_repair_as_labelled(tables):
    scores = _scores_by_session(tables)
    planted = tables["planted_events"]
    drop_range = {"SRS": (6.0, 12.0), "WAI-SR": (10.0, 18.0)}
    stable = 0
    ruptures = planted[planted.event_type.str.startswith("rupture")]
    for event in ruptures.itertuples():
        series = scores[event.instrument].loc[event.episode_id].dropna()
        t = event.session_number
        earlier = series[series.index < t]
        assert len(earlier) >= 3, event
        baseline = earlier.iloc[-5:].mean()  # docs/methods.md §7: at most the last five earlier ratings
        lo, hi = drop_range[event.instrument]
        drop = baseline - series[t]
        assert lo - 1e-9 <= drop <= hi + 1e-9, event
        assert drop == pytest.approx(event.magnitude, abs=0.051)
        later = series[series.index > t]
        if event.event_type == "rupture_repaired":
            assert (later.iloc[:2] >= baseline - 1.0).any(), event
        else:
            assert (later.iloc[:3] < baseline - 3.0).all(), event
        stable += "stable high baseline" in event.detail
    assert 0.45 <= stable / len(ruptures) <= 0.75  # about 60 % after a stable high baseline


# --- Writing safely ---------------------------------------------------------------------------------------
def test_write_demo_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "demo.duckdb"
    out.write_bytes(b"not a database")
    with pytest.raises(FileExistsError, match="force"):
        demo.write_demo(out, n_episodes=20, as_of=AS_OF)
    assert out.read_bytes() == b"not a database"
    counts = demo.write_demo(out, n_episodes=20, as_of=AS_OF, force=True)
    assert counts["episode"] == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.duckdb"]


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    real = demo_write._generate

    def broken(*args):
        frames = real(*args)
        frames["rating"].loc[len(frames["rating"]) // 2, "score"] = -1.0  # violates CHECK (score >= 0)
        return frames

    monkeypatch.setattr(demo_write, "_generate", broken)
    with pytest.raises(duckdb.ConstraintException):
        demo.write_demo(tmp_path / "demo.duckdb", n_episodes=50, as_of=AS_OF)
    assert list(tmp_path.iterdir()) == []


def test_tiny_service_still_builds(tmp_path):
    counts = demo.write_demo(tmp_path / "tiny.duckdb", n_episodes=5, seed=1, as_of=AS_OF)
    assert counts["clinician"] == demo.MIN_CLINICIANS and counts["episode"] == 5 and counts["team"] == 1


# --- Helpers ----------------------------------------------------------------------------------------------
def _one_way_icc(values: pd.Series, groups: pd.Series) -> float:
    """ICC(1) from a one-way ANOVA with unequal group sizes (n0 correction)."""
    by_group = values.groupby(groups)
    sizes, n, k = by_group.size(), len(values), by_group.ngroups
    between = (sizes * (by_group.mean() - values.mean()) ** 2).sum() / (k - 1)
    within = ((values - by_group.transform("mean")) ** 2).sum() / (n - k)
    n0 = (n - (sizes**2).sum() / n) / (k - 1)
    return (between - within) / (between + (n0 - 1) * within)


def _scores_by_session(tables) -> dict[str, pd.DataFrame]:
    """Per instrument, a wide frame: one row per episode, one column per session number."""
    return {
        code: group.pivot(index="episode_id", columns="session_number", values="score")
        for code, group in tables["rating"].groupby("instrument")
    }


def _severity(code: str, scores: pd.Series) -> pd.Series:
    """Distance from the healthy end (docs/methods.md §4)."""
    return 40 - scores if code == "ORS" else scores
