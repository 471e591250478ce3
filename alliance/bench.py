"""``make bench``: time and memory of the heavy paths on a large generated service.

Speed and memory are measured here, not by timed unit tests. Prints one line per step (seconds and peak
resident memory so far); ``--episodes`` sets the size (default 200,000 episodes ≈ 1.5 million sessions).
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import tempfile
import time
from pathlib import Path

from alliance.caseload import alliance_sessions, caseload_table
from alliance.clinical import ClinicalMetrics, MetricSettings
from alliance.comparison import ComparisonFilter, comparison_frames
from alliance.db import Database
from alliance.demo import write_demo
from alliance.scope import Scope
from alliance.service import Service


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="alliance-bench", description=__doc__)
    parser.add_argument("--episodes", type=int, default=200_000)
    parser.add_argument("--db", type=Path, default=None, help="reuse an existing database instead")
    args = parser.parse_args(argv)
    as_of = dt.date(2026, 11, 1)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.duckdb"

        def step(name, fn):
            start = time.perf_counter()
            result = fn()
            print(f"{name:<48} {time.perf_counter() - start:8.2f} s   peak {_peak_mb():8.0f} MB", flush=True)
            return result

        if args.db is None:
            step(
                f"generate and write {args.episodes:,} episodes",
                lambda: write_demo(db, args.episodes, as_of=as_of),
            )
        database = Database(db)
        service = Service(database, Scope.full_access())
        metrics = ClinicalMetrics(service, MetricSettings(as_of=as_of))
        step("episode change (whole service)", lambda: metrics.episode_change)
        step("sudden gains and losses", lambda: metrics.sudden_events)
        step("alliance events", lambda: metrics.alliance_events)
        step("expected-response bands", lambda: metrics.etr_bands)
        step("episode status", lambda: metrics.episode_status)
        step("episode end", lambda: metrics.episode_end)
        biggest = metrics.episodes["clinician_id"].value_counts().index[0]
        scoped = metrics.for_scope(Service(database, Scope.full_access().restrict(biggest)))
        step(f"caseload table ({biggest}, a full caseload)", lambda: caseload_table(scoped))
        sessions = step("alliance sessions (whole service)", lambda: alliance_sessions(metrics))
        step(
            f"comparison of {metrics.episodes['clinician_id'].nunique():,} clinicians",
            lambda: comparison_frames(
                metrics.episode_change,
                metrics.episode_end,
                metrics.alliance_events,
                sessions,
                ComparisonFilter("ORS"),
            ),
        )
        database.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
