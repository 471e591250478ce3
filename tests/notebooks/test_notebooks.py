"""Every notebook in dashboards/ executes top to bottom in a real kernel (inline use in Jupyter)."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from alliance import config

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "dashboards").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, demo_db, monkeypatch):
    monkeypatch.setenv(config.DB_ENV, str(demo_db))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # The page object is displayed inline (a Panel/Bokeh bundle, not an error message).
    shown = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "execute_result"]
    assert shown, "the notebook shows its page inline"
    assert os.environ[config.DB_ENV] == str(demo_db)
