"""A server process caps the memory of its DuckDB readers (``alliance.db.limit_server_memory``, set by the
warm-up of every ``panel serve`` process): DuckDB would otherwise keep every block of the file it has read
until 80 % of the machine's memory. The command line keeps DuckDB's own limit."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from alliance import db as dbmod

MIB = 2**20


def _limit_bytes(database: dbmod.Database) -> float:
    """DuckDB's memory limit of a reader, in bytes (DuckDB reports it as e.g. '95.3 MiB')."""
    value = database._con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    number, unit = value.split()
    return float(number) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[unit]


@pytest.fixture
def no_limit_after():
    yield
    dbmod.limit_reader_memory(None)


def test_a_limit_applies_to_readers_opened_after_it(demo_db, no_limit_after):
    dbmod.limit_reader_memory("100MB")
    limited, beside = dbmod.Database(demo_db), dbmod.Database(demo_db)
    assert _limit_bytes(limited) == pytest.approx(100e6, rel=0.01)
    folders = [
        r._con.execute("SELECT current_setting('temp_directory')").fetchone()[0] for r in (limited, beside)
    ]
    # Spills go to a private folder of the process, one sub-folder per reader.
    assert all(os.path.isdir(f) and "alliance-duckdb-" in f for f in folders) and folders[0] != folders[1]
    assert limited.query("scope_has_ratings", scope_all=True, scope_clinicians=[])["has_ratings"].iloc[0]
    dbmod.limit_reader_memory(None)
    unlimited = dbmod.Database(demo_db)
    assert _limit_bytes(unlimited) != pytest.approx(100e6, rel=0.01)  # DuckDB's own (80 % of the memory)
    for reader in (limited, beside, unlimited):
        reader.close()


@pytest.mark.parametrize("bad", ["lots", "128", "-5MB", "1e9B", "128MB; PRAGMA x", "0MB", "1KB", "31MB"])
def test_a_limit_that_is_not_a_size_is_refused_by_name(bad, no_limit_after):
    with pytest.raises(ValueError, match="ALLIANCE_DUCKDB_MEMORY"):
        dbmod.limit_reader_memory(bad)


def test_the_warm_up_of_a_server_process_sets_the_limit_from_the_environment(demo_db):
    code = (
        "import sys; from alliance.warmup import warm; from alliance.db import open_database; warm(sys.argv[1]);"
        "print(open_database(sys.argv[1])._con.execute(\"SELECT current_setting('memory_limit')\").fetchone()[0])"
    )
    for env, expected in (({}, 128e6), ({"ALLIANCE_DUCKDB_MEMORY": "200MB"}, 200e6)):
        environ = {k: v for k, v in os.environ.items() if k != "ALLIANCE_DUCKDB_MEMORY"} | env
        out = subprocess.run(
            [sys.executable, "-c", code, str(demo_db)],
            capture_output=True,
            text=True,
            env=environ,
            check=True,
        )
        number, unit = out.stdout.split()[-2:]
        assert unit == "MiB" and float(number) * MIB == pytest.approx(expected, rel=0.01), out.stdout


def test_the_warm_up_sets_what_the_process_holds_aside_from_the_garbage_collector(demo_db):
    """A full garbage collection (Panel runs one on the server's main thread after sessions close) walks
    only what was made after the warm-up, not the libraries, the pages' code and the shared caches; and the
    warm-up's own leftovers were collected before, not kept for the process's life."""
    code = (
        "import gc, sys; from alliance.warmup import warm; warm(sys.argv[1]); "
        "print(gc.get_freeze_count(), len(gc.get_objects()), gc.collect())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(demo_db)], capture_output=True, text=True, check=True
    )
    frozen, walked, collected = map(int, out.stdout.split()[-3:])
    assert frozen > 100_000, out.stdout  # pandas, Bokeh, Panel and the pages alone hold this many
    assert walked < frozen / 10, out.stdout
    assert collected == 0, out.stdout


def test_after_the_warm_up_a_page_build_rarely_starts_the_garbage_collector(demo_db):
    """Python's default young generation (700 objects) made the collector run about twenty times per page
    build, and a collection of the older generations every few pages; the warm-up raises it to 50,000."""
    code = (
        "import gc, sys; from alliance.warmup import warm; warm(sys.argv[1]); "
        "from alliance.pages import caseload_page; from alliance.bench import _models; "
        "runs = []; gc.callbacks.append(lambda phase, info: runs.append(info['generation']) "
        "if phase == 'start' else None); "
        "[_models(caseload_page(sys.argv[1])) for _ in range(3)]; "
        "print(*gc.get_threshold(), len(runs), sum(g > 0 for g in runs))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(demo_db)], capture_output=True, text=True, check=True
    )
    young, middle, old, runs, older = map(int, out.stdout.split()[-5:])
    assert (young, middle, old) == (50_000, 10, 10), out.stdout
    assert runs <= 3, out.stdout  # three page builds; Python's default ran the collector dozens of times
    assert older == 0, out.stdout


def test_a_warmed_server_process_skips_bokehs_callback_signature_checks_but_validates_documents(demo_db):
    code = (
        "import sys; from bokeh.settings import settings; print(settings.perform_error_diagnostics()); "
        "from alliance.warmup import warm; warm(sys.argv[1]); "
        "print(settings.perform_error_diagnostics(), settings.perform_document_validation())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(demo_db)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split()[-3:] == ["True", "False", "True"], out.stdout


def test_a_warmed_server_process_sends_models_without_working_out_their_defaults(demo_db):
    code = (
        "import sys; from bokeh.core.has_props import HasProps; from alliance import model_values; "
        "print(HasProps.query_properties_with_values is model_values.BOKEH_QUERY); "
        "from alliance.warmup import warm; warm(sys.argv[1]); "
        "print(HasProps.query_properties_with_values is model_values.query_properties_with_values)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(demo_db)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split()[-2:] == ["True", "True"], out.stdout
