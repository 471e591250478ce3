"""Create an Alliance database file and check that a file is one."""

from __future__ import annotations

from pathlib import Path

import duckdb

from alliance import config
from alliance.registry import Registry, load_registry

TABLES = (
    "alliance_meta",
    "instrument",
    "instrument_item",
    "instrument_norm",
    "team",
    "clinician",
    "client",
    "episode",
    "session",
    "rating",
    "rating_item",
)


def create_schema(con: duckdb.DuckDBPyConnection, registry: Registry | None = None) -> None:
    """Create every table in an empty database, record the schema version and load the registry."""
    con.execute(config.SCHEMA_SQL.read_text(encoding="utf-8"))
    con.execute(
        "INSERT INTO alliance_meta VALUES ('schema_version', $v), ('created_by', 'alliance')",
        {"v": config.SCHEMA_VERSION},
    )
    write_registry(con, registry or load_registry())


def write_registry(con: duckdb.DuckDBPyConnection, registry: Registry) -> None:
    """Replace the registry tables with the given registry (ratings keep referring to codes)."""
    # Missing numbers must reach DuckDB as NULL, not NaN (NaN is a value there and fails range checks).
    frames = {name: df.astype(object).where(df.notna(), None) for name, df in registry.frames().items()}
    for table in ("instrument_norm", "instrument_item"):
        con.execute(f"DELETE FROM {table}")
    existing = {r[0] for r in con.execute("SELECT code FROM instrument").fetchall()}
    ins = frames["instrument"]
    # Instruments already referenced by ratings are updated in place; new ones inserted.
    for row in ins.itertuples(index=False):
        if row.code in existing:
            con.execute(
                "UPDATE instrument SET name=$name, construct=$construct, min_score=$min_score, "
                "max_score=$max_score, higher_is_better=$higher_is_better, n_items=$n_items, "
                "item_min=$item_min, item_max=$item_max, source=$source, position=$position WHERE code=$code",
                row._asdict(),
            )
        else:
            con.execute(
                "INSERT INTO instrument VALUES ($code, $name, $construct, $min_score, $max_score, "
                "$higher_is_better, $n_items, $item_min, $item_max, $source, $position)",
                row._asdict(),
            )
    for table in ("instrument_item", "instrument_norm"):
        df = frames[table]  # noqa: F841 — read by DuckDB's replacement scan below
        cols = ", ".join(frames[table].columns)
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM df")


class SchemaError(RuntimeError):
    """The file is not an Alliance database, or was written by another schema version."""


def check_schema(con: duckdb.DuckDBPyConnection, path: Path | str) -> None:
    """Raise SchemaError with a clear message unless ``con`` holds a current Alliance database."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    missing = [t for t in TABLES if t not in tables]
    if "alliance_meta" not in tables:
        raise SchemaError(
            f"{path} is not an Alliance database (no alliance_meta table). Build one with "
            "`alliance demo --out PATH` or `alliance import FILE --db PATH`."
        )
    row = con.execute("SELECT value FROM alliance_meta WHERE key = 'schema_version'").fetchone()
    version = row[0] if row else None
    if version != config.SCHEMA_VERSION:
        raise SchemaError(
            f"{path} has schema version {version!r}; this Alliance expects {config.SCHEMA_VERSION!r}. "
            "Rebuild the database with the current version."
        )
    if missing:
        raise SchemaError(f"{path} lacks tables {', '.join(missing)}; rebuild it.")
