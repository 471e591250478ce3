"""Writing a demo database file: schema, demo truth table, the generated frames and the stored metrics."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import duckdb
import pandas as pd
from tqdm.auto import tqdm

from alliance import config
from alliance.db import connect_writer
from alliance.demo.pipeline import STAGES, _generate, _stage
from alliance.demo.settings import PROGRESS_THRESHOLD, TABLES
from alliance.schema import create_schema
from alliance.store import write_store


# ---------------------------------------------------------------------------------------------------------
# Writing a database file
# ---------------------------------------------------------------------------------------------------------
def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Bulk-insert a frame through DuckDB's scan of the registered DataFrame, cast to the table's types."""
    columns = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $t "
        "ORDER BY ordinal_position",
        {"t": table},
    ).fetchall()
    select = ", ".join(f'CAST("{name}" AS {kind})' for name, kind in columns)
    con.register("demo_frame", frame)
    try:
        con.execute(f"INSERT INTO {table} SELECT {select} FROM demo_frame")
    finally:
        con.unregister("demo_frame")


def write_demo(
    out: Path | str,
    n_episodes: int = 1500,
    seed: int = 7,
    as_of: dt.date | None = None,
    force: bool = False,
    progress: bool | None = None,
) -> dict[str, int]:
    """Write a demo database to ``out`` and return the row count of each demo table.

    Refuses to replace an existing file unless ``force``. The database is built in a temporary file next to
    ``out`` and renamed at the end, so a failure leaves nothing half-written. ``progress=None`` shows a
    progress bar for large runs only (20,000 episodes or more).
    """
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists; pass force=True (alliance demo --force) to replace it.")
    if progress is None:
        progress = n_episodes >= PROGRESS_THRESHOLD
    as_of = as_of or dt.date.today()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # DuckDB creates its own file; an empty one is not a database
    try:
        with tqdm(total=len(STAGES) + len(TABLES) + 1, disable=not progress, unit="step") as bar:
            frames = _generate(n_episodes, seed, as_of, bar)
            con = connect_writer(tmp)
            try:
                con.execute("SET enable_progress_bar = false")  # the demo's own bar reports progress
                create_schema(con)
                con.execute(config.DEMO_TRUTH_SQL.read_text(encoding="utf-8"))
                # The metrics judge 'no session for 60 days' against the date the data describe.
                con.execute(
                    "INSERT INTO alliance_meta VALUES ('data_as_of', $d), ('demo_seed', $s)",
                    {"d": as_of.isoformat(), "s": str(seed)},
                )
                for table in TABLES:
                    with _stage(bar, f"writing {table}"):
                        _insert(con, table, frames[table])
                counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
                with _stage(bar, "storing metrics"):
                    write_store(con, out)
            finally:
                con.close()
        if out.exists() and not force:
            raise FileExistsError(f"{out} appeared while the demo was being written; not replacing it.")
        # A stale write-ahead log next to the old file would be replayed into the new one.
        out.with_name(out.name + ".wal").unlink(missing_ok=True)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
        raise
    return counts
