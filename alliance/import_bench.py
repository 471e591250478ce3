"""How fast `alliance import` is: ``python -m alliance.import_bench --rows 1000000`` writes a long CSV of that
many valid ratings (ORS and SRS, ten sessions an episode, a hundred clinicians) into a temporary folder,
imports it into a new database and into a copy holding it already (every rating unchanged), and prints the
seconds each took. The file is generated, never kept (docs/import.md gives the times on the reference
machine)."""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def ratings_csv(path: Path, rows: int, seed: int = 1) -> Path:
    """A long CSV of ``rows`` valid ratings (an even number: ORS and SRS at each session)."""
    rng = np.random.default_rng(seed)
    sessions = rows // 2
    episode = np.arange(sessions) // 10
    number = np.arange(sessions) % 10 + 1
    start = dt.date(2024, 1, 1)
    first = rng.integers(0, 600, size=episode.max() + 1)
    dates = pd.to_datetime(start) + pd.to_timedelta(first[episode] + 7 * (number - 1), unit="D")
    base = pd.DataFrame(
        {
            "client_id": [f"C-{e:07d}" for e in episode],
            "episode_id": [f"E-{e:07d}" for e in episode],
            "clinician_id": [f"CL{e % 100:03d}" for e in episode],
            "session_date": dates.strftime("%Y-%m-%d"),
            "session_number": number,
        }
    )
    ors = base.assign(instrument="ORS", score=np.round(rng.uniform(5, 38, sessions), 1))
    srs = base.assign(instrument="SRS", score=np.round(rng.uniform(25, 40, sessions), 1))
    frame = pd.concat([ors, srs]).sort_values(["episode_id", "session_number"], kind="stable")
    frame.to_csv(path, index=False)
    return path


def main(argv: list[str] | None = None) -> int:
    from alliance.importer import import_csv

    parser = argparse.ArgumentParser(prog="python -m alliance.import_bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--progress", action="store_true", help="show the import's progress bar")
    parser.add_argument("--no-store", action="store_true", help="do not refresh the metrics store")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        src = ratings_csv(folder / "ratings.csv", args.rows)
        took = time.perf_counter() - started
        print(f"generated {args.rows:,} rows ({src.stat().st_size / 1e6:.0f} MB) in {took:.1f} s")
        for what in ("into a new database", "again (every rating unchanged)"):
            started = time.perf_counter()
            report = import_csv(
                src,
                folder / "service.duckdb",
                refresh_store=not args.no_store,
                progress=True if args.progress else None,
            )
            assert report.ok, report.summary()
            print(f"import {what}: {time.perf_counter() - started:.1f} s — {report.lines()[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
