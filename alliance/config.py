"""Named settings with documented defaults. Environment variables override them.

Every threshold a page or metric uses is either in the instrument registry or here, never a literal in a view.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
QUERIES_DIR = REPO_ROOT / "queries"
SCHEMA_SQL = DATA_DIR / "schema.sql"
#: The demo generator's planted truth: created only in demo databases, kept out of the production schema.
DEMO_TRUTH_SQL = DATA_DIR / "demo_truth.sql"
DEFAULT_REGISTRY = DATA_DIR / "instruments.toml"
DEFAULT_DB = DATA_DIR / "demo.duckdb"

#: Version of data/schema.sql, written into every database file (alliance_meta.schema_version).
SCHEMA_VERSION = "1"

#: Environment variable naming the DuckDB file the dashboards read.
DB_ENV = "ALLIANCE_DB"
#: Extra instrument registry files (TOML, same shape as data/instruments.toml), separated by ":".
REGISTRY_ENV = "ALLIANCE_INSTRUMENTS"


def database_path() -> Path:
    """The database the dashboards read: $ALLIANCE_DB, else data/demo.duckdb."""
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB)


def registry_paths() -> list[Path]:
    """The shipped registry followed by any user files named in $ALLIANCE_INSTRUMENTS."""
    extra = [Path(p) for p in os.environ.get(REGISTRY_ENV, "").split(os.pathsep) if p.strip()]
    return [DEFAULT_REGISTRY, *extra]
