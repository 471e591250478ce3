"""``alliance.chart_css`` makes Bokeh's lookup of CSS overrides for a chart's lines, fills and texts answer
"not set". That is only the same drawing if nothing defines such an override: these tests read every style
sheet and script the served pages load (Bokeh's, Panel's, Material UI's) and the project's own files."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from alliance.chart_css import DEFINITION, KEY, SCRIPT, URL, install

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "text",
    [
        ":host { --bk-line-color: red; }",
        "--bk-major-label-text-font-size:12px",
        "--bk-border-fill-alpha : 0.5",
    ],
)
def test_the_check_finds_a_definition(text):
    assert DEFINITION.search(text)


@pytest.mark.parametrize(
    "text",
    [
        "color: var(--bk-line-color)",  # a use, not a definition
        "--bk-tool-icon-color: #777;",  # a Bokeh style variable that is no visual's property
        "--bk-font-size: 12px;",
    ],
)
def test_the_check_leaves_uses_and_other_variables_alone(text):
    assert not DEFINITION.search(text)


def _files():
    for package, pattern in [
        ("bokeh", "server/static/**/*.js"),
        ("panel", "dist/**/*.css"),
        ("panel", "dist/**/*.js"),
        ("panel_material_ui", "dist/**/*.js"),
        ("panel_material_ui", "dist/**/*.css"),
    ]:
        base = Path(importlib.import_module(package).__file__).parent
        yield from base.glob(pattern)
    for folder in ("alliance", "dashboards"):
        yield from (ROOT / folder).rglob("*.py")
        yield from (ROOT / folder).rglob("*.css")
        yield from (ROOT / folder).rglob("*.ipynb")


def test_nothing_the_pages_load_overrides_a_charts_visuals_through_css():
    files = list(_files())
    assert len(files) > 50, "the installed packages' static files were not found"
    found = [
        f"{path}: {match.group(0)}"
        for path in files
        for match in DEFINITION.finditer(path.read_text(errors="replace"))
        if path.name != "chart_css.py"
    ]
    assert not found, f"a chart's visual is set through CSS; alliance.chart_css would hide it: {found[:5]}"


def test_the_script_is_added_once_to_the_served_pages():
    class Config:
        js_files: dict = {}

    config = Config()
    install(config)
    install(config)
    assert config.js_files == {KEY: URL}
    assert "core/visuals/visual" in SCRIPT and "_get_css_value" in SCRIPT
    assert "models/plots/plot_canvas" in SCRIPT and "base_font_size" in SCRIPT and "__" not in SCRIPT
