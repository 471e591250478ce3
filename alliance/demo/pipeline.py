"""The generator: the demo's stages in order, every random draw from one seeded generator."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from alliance.demo.alliance_ratings import _alliance_ratings
from alliance.demo.episodes import _assign_clients, _plan_episodes, _schedule_sessions
from alliance.demo.frames import _frames
from alliance.demo.missing import _missing_ratings
from alliance.demo.outcome import _choose_outcome_events, _outcome_ratings, _outcome_tracks
from alliance.demo.service import _build_service
from alliance.demo.settings import shipped_registry

STAGES = ("service", "episodes", "sessions", "clients", "outcome", "alliance", "missing ratings", "frames")


@contextmanager
def _stage(bar, name: str):
    """Show a generation or writing stage on the progress bar while it runs."""
    bar.set_description(f"demo: {name}")
    yield
    bar.update(1)


def _generate(n_episodes: int, seed: int, as_of: dt.date, bar) -> dict[str, pd.DataFrame]:
    """generate() reporting its stages on ``bar``; every random draw comes from one seeded generator."""
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be at least 1, got {n_episodes}")
    rng = np.random.default_rng(seed)
    registry = shipped_registry()

    with _stage(bar, "service"):
        service = _build_service(rng, n_episodes)
    with _stage(bar, "episodes"):
        plan = _plan_episodes(rng, service, n_episodes)
    with _stage(bar, "sessions"):
        sessions = _schedule_sessions(rng, plan)
    with _stage(bar, "clients"):
        client_of = _assign_clients(rng, plan, sessions)
    with _stage(bar, "outcome"):
        tracks, propensity = _outcome_tracks(rng, registry, service, plan)
        events = _choose_outcome_events(rng, plan, tracks)
        outcome = _outcome_ratings(rng, registry, plan, sessions, tracks, events)
    with _stage(bar, "alliance"):
        alliance, ruptures = _alliance_ratings(rng, registry, service, plan, sessions, propensity)
    with _stage(bar, "missing ratings"):
        missing = _missing_ratings(rng, plan, sessions, events, ruptures)
    with _stage(bar, "frames"):
        return _frames(
            as_of,
            rng,
            service,
            plan,
            sessions,
            client_of,
            tracks,
            outcome,
            alliance,
            missing,
            events,
            ruptures,
        )


def generate(
    n_episodes: int = 1500, seed: int = 7, as_of: dt.date | None = None, progress: bool = False
) -> dict[str, pd.DataFrame]:
    """Generate a demo service: one DataFrame per table (team, clinician, client, episode, session, rating,
    rating_item, planted_events), with the column names of data/schema.sql.

    Deterministic for (n_episodes, seed, as_of); ``as_of`` (default today) only shifts the dates, which are
    all on or before it. About 30 clinicians in 4 teams for the default 1,500 episodes, scaling with
    n_episodes (about 50 episodes per clinician, teams of about 8).
    """
    as_of = as_of or dt.date.today()
    with tqdm(total=len(STAGES), disable=not progress, unit="step") as bar:
        return _generate(n_episodes, seed, as_of, bar)
