"""Demo stage 'frames': one DataFrame per table, with identifiers, dates and the column names of
data/schema.sql.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from alliance.demo.alliance_ratings import Ruptures
from alliance.demo.episodes import EpisodePlan, Sessions
from alliance.demo.items import InstrumentRatings
from alliance.demo.outcome import OutcomeEvents
from alliance.demo.planted import _planted_events
from alliance.demo.service import Service
from alliance.demo.settings import INSTRUMENT_ORDER, POPULATIONS, TEAM_NAMES


# ---------------------------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------------------------
def _codes(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """Identifiers such as 'E000001' for an array of numbers."""
    return np.char.add(prefix, np.char.zfill(np.asarray(numbers).astype(str), width)).astype(object)


def _client_codes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unique pseudonymous client codes: 'C-' and six random hex digits (e.g. 'C-3fa2b1')."""
    values = rng.choice(16**6, n, replace=False)
    hex_digits = np.frombuffer(b"0123456789abcdef", np.uint8)
    chars = np.empty((n, 8), np.uint8)
    chars[:, 0], chars[:, 1] = ord("C"), ord("-")
    chars[:, 2:] = hex_digits[(values[:, None] >> (4 * np.arange(5, -1, -1))) & 0xF]
    return chars.view("S8").ravel().astype(str).astype(object)


def _dates(as_of: dt.date, days: np.ndarray) -> np.ndarray:
    """Calendar dates for day offsets from as_of."""
    return np.datetime64(as_of, "D") + np.asarray(days).astype("timedelta64[D]")


def _team_names(n_teams: int) -> np.ndarray:
    """North, South, East, West, … and then 'Team 9', 'Team 10', … for large services."""
    numbered = np.char.add("Team ", np.arange(1, n_teams + 1).astype(str)).astype(object)
    named = np.array(TEAM_NAMES, dtype=object)[: min(n_teams, len(TEAM_NAMES))]
    return np.concatenate([named, numbered[len(named) :]])


def _rating_frames(
    sessions: Sessions,
    ratings: dict[str, InstrumentRatings],
    missing: dict[str, np.ndarray],
    episode_ids: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """rating and rating_item rows for the ratings that are not missing, in session order."""
    rows, instrument, score = [], [], []
    item_rows, item_instrument, item_no, item_score = [], [], [], []
    for code in INSTRUMENT_ORDER:
        r = ratings[code]
        keep = ~missing[code][r.rows]
        rank = INSTRUMENT_ORDER.index(code)
        rows.append(r.rows[keep])
        instrument.append(np.full(keep.sum(), rank, np.int8))
        score.append(r.total[keep])
        if r.items is not None:
            n_items = r.items.shape[1]
            item_rows.append(np.repeat(r.rows[keep], n_items))
            item_instrument.append(np.full(keep.sum() * n_items, rank, np.int8))
            item_no.append(np.tile(np.arange(1, n_items + 1, dtype=np.int32), keep.sum()))
            item_score.append(r.items[keep].ravel())
    codes = np.array(INSTRUMENT_ORDER, dtype=object)

    rows, instrument = np.concatenate(rows), np.concatenate(instrument)
    order = np.argsort(rows * len(codes) + instrument, kind="stable")
    rows, instrument = rows[order], instrument[order]
    rating = pd.DataFrame(
        {
            "episode_id": episode_ids[sessions.episode[rows]],
            "session_number": sessions.number[rows].astype(np.int32),
            "instrument": codes[instrument],
            "score": np.concatenate(score)[order],
        }
    )

    item_rows, item_instrument = np.concatenate(item_rows), np.concatenate(item_instrument)
    item_no = np.concatenate(item_no)
    order = np.argsort((item_rows * len(codes) + item_instrument) * 16 + item_no, kind="stable")
    item_rows, item_instrument = item_rows[order], item_instrument[order]
    rating_item = pd.DataFrame(
        {
            "episode_id": episode_ids[sessions.episode[item_rows]],
            "session_number": sessions.number[item_rows].astype(np.int32),
            "instrument": codes[item_instrument],
            "item_no": item_no[order],
            "score": np.concatenate(item_score)[order],
        }
    )
    return rating, rating_item


def _frames(
    as_of,
    rng,
    service: Service,
    plan: EpisodePlan,
    sessions: Sessions,
    client_of: np.ndarray,
    tracks,
    outcome,
    alliance,
    missing,
    events: OutcomeEvents,
    ruptures: Ruptures,
) -> dict[str, pd.DataFrame]:
    """One DataFrame per table, with identifiers, dates and the column names of data/schema.sql."""
    n_episodes = len(plan.course)
    n_clin = service.n_clinicians
    n_teams = len(service.supervisor)
    team_ids = _codes("T", np.arange(1, n_teams + 1), 1)
    clinician_ids = _codes("CL", np.arange(1, n_clin + 1), max(2, len(str(n_clin))))
    episode_ids = _codes("E", np.arange(1, n_episodes + 1), max(6, len(str(n_episodes))))
    client_ids = _client_codes(rng, client_of.max() + 1)

    closed_with_record = ~plan.is_open & plan.recorded
    end_reason = np.array(["planned", "dropout", "transferred"], dtype=object)[plan.end_kind]
    episode = pd.DataFrame(
        {
            "episode_id": episode_ids,
            "client_id": client_ids[client_of],
            "clinician_id": clinician_ids[plan.clinician],
            "population": np.array(POPULATIONS, dtype=object)[plan.population],
            "start_date": _dates(as_of, plan.start_day),
            "end_date": np.where(
                closed_with_record,
                _dates(as_of, np.where(closed_with_record, plan.end_day, 0)),
                np.datetime64("NaT"),
            ),
            "end_reason": pd.Series(np.where(closed_with_record, end_reason, None), dtype=object),
        }
    )
    session = pd.DataFrame(
        {
            "episode_id": episode_ids[sessions.episode],
            "session_number": sessions.number.astype(np.int32),
            "session_date": _dates(as_of, sessions.day),
        }
    )
    rating, rating_item = _rating_frames(sessions, {**outcome, **alliance}, missing, episode_ids)

    planted = _planted_events(service, plan, tracks, outcome, len(sessions.episode), events, ruptures)
    has_episode = planted["episode"].to_numpy() >= 0
    has_session = planted["session"].to_numpy() > 0
    planted_events = pd.DataFrame(
        {
            "event_id": np.arange(1, len(planted) + 1, dtype=np.int32),
            "event_type": planted["event_type"].to_numpy(object),
            "clinician_id": clinician_ids[planted["clinician"].to_numpy()],
            "episode_id": pd.Series(
                np.where(has_episode, episode_ids[np.maximum(planted["episode"], 0)], None), dtype=object
            ),
            "session_number": pd.Series(planted["session"].to_numpy(), dtype="Int32").where(
                has_session, pd.NA
            ),
            "instrument": planted["instrument"].to_numpy(object),
            "magnitude": planted["magnitude"].to_numpy(float),
            "detail": planted["detail"].to_numpy(object),
        }
    )
    frames = {
        "team": pd.DataFrame(
            {
                "team_id": team_ids,
                "name": _team_names(n_teams),
                "supervisor_id": clinician_ids[service.supervisor],
            }
        ),
        "clinician": pd.DataFrame({"clinician_id": clinician_ids, "team_id": team_ids[service.team_of]}),
        "client": pd.DataFrame({"client_id": client_ids}),
        "episode": episode,
        "session": session,
        "rating": rating,
        "rating_item": rating_item,
        "planted_events": planted_events,
    }
    return frames
