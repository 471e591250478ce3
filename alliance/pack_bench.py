"""``make bench-pack``: how long a supervisor waits for a meeting pack of 25 clients (the target is 15 s).

Builds the pack as the meeting page's button does (``alliance.pack.build_pack``) for an agenda of
``--clients`` agenda clients — the teams' agendas one after the other, the largest first, so the pack mixes
instruments and episode lengths — and prints the seconds on the clock and of CPU, per client, and the
file's size. Speed is measured here, never by timed unit tests. The run is recorded in the audit trail like
any pack.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 15.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="alliance-pack-bench", description=__doc__)
    parser.add_argument("--db", type=Path, default=Path(os.environ.get("ALLIANCE_DB", "data/demo.duckdb")))
    parser.add_argument("--clients", type=int, default=25, help="agenda clients in the pack (default 25)")
    parser.add_argument("--repeats", type=int, default=1, help="builds to time (default 1)")
    args = parser.parse_args(argv)

    import pandas as pd

    from alliance.agenda import meeting_agenda, supervisors
    from alliance.marks import MarkStore
    from alliance.pack import build_pack
    from alliance.service import Service
    from alliance.state import service_metrics

    if not args.db.is_file():
        print(f"no database at {args.db} (make demo, or --db PATH)", file=sys.stderr)
        return 2
    service = Service.open(args.db)
    metrics = service_metrics(service).for_scope(service)
    agendas = sorted(
        (meeting_agenda(metrics, s, metrics.as_of) for s in supervisors(service)), key=len, reverse=True
    )
    agenda = pd.concat(agendas, ignore_index=True).head(args.clients)
    print(
        f"meeting pack of {len(agenda)} clients ({agenda['instrument'].nunique()} outcome instruments) "
        f"from {args.db}",
        flush=True,
    )
    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pack.html"
        for _ in range(args.repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            build_pack(
                service,
                supervisors(service)[0],
                metrics.as_of,
                out,
                MarkStore(Path(tmp) / "marks.sqlite"),
                progress=False,
                agenda=agenda,
            )
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        size = out.stat().st_size
    if len(walls) > 1:
        print("each build (clock s):", " ".join(f"{w:.1f}" for w in walls), flush=True)
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    verdict = "ok" if wall <= TARGET_SECONDS else "OVER"
    print(
        f"build {wall:6.1f} s on the clock, {cpu:6.1f} s CPU "
        f"({wall / max(len(agenda), 1):.2f} s per client), "
        f"file {size / 2**20:.1f} MB · target {TARGET_SECONDS:.0f} s {verdict} · load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
