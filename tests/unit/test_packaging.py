"""Project layout promises: environment.yml and pyproject.toml agree, notebooks are thin."""

import json
import re
import tomllib
from pathlib import Path

import yaml  # PyYAML comes with bokeh

REPO = Path(__file__).resolve().parents[2]


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_the_same_runtime_dependencies_as_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = {_name(d) for d in project["dependencies"]}
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)} - {"python", "pip"}
    assert runtime == conda
    assert "nbconvert" in runtime  # panel serve needs it to serve notebooks


# Runtime dependencies that no module imports, and why they are needed all the same.
USED_WITHOUT_IMPORT = {
    "ipykernel": "executes the notebooks inline in Jupyter and in the notebook tests",
    "nbconvert": "panel serve needs it to serve .ipynb pages",
}
IMPORT_NAME = {"panel-material-ui": "panel_material_ui"}


def test_every_runtime_dependency_is_used():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = {_name(d) for d in project["dependencies"]}
    sources = [p.read_text() for p in (REPO / "alliance").rglob("*.py")]
    sources += [p.read_text() for p in (REPO / "dashboards").glob("*.ipynb")]
    unused = set()
    for dep in runtime - set(USED_WITHOUT_IMPORT):
        module = IMPORT_NAME.get(dep, dep.replace("-", "_"))
        pattern = re.compile(rf"^\s*(import|from) {module}\b|\"(import|from) {module}\b", re.M)
        if not any(pattern.search(s) for s in sources):
            unused.add(dep)
    assert not unused, f"declared but never imported: {sorted(unused)}"


def test_console_script_and_test_extra():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["alliance"] == "alliance.cli:main"
    assert {"pytest", "playwright", "pytest-playwright", "nbclient"} <= {
        _name(d) for d in project["optional-dependencies"]["test"]
    }


def test_notebooks_are_thin_and_end_by_serving_the_page():
    notebooks = sorted((REPO / "dashboards").glob("*.ipynb"))
    assert notebooks
    for nb_path in notebooks:
        cells = [c for c in json.loads(nb_path.read_text())["cells"] if c["cell_type"] == "code"]
        source = ["".join(c["source"]) for c in cells]
        assert all("%" not in line.lstrip()[:1] for s in source for line in s.splitlines()), nb_path
        # alliance.pages.serve: .servable() under panel serve, with Panel's style sheets from this server
        assert source[-1] == "serve(page)" and "from alliance.pages import" in source[0], nb_path
        assert all(not c.get("outputs") for c in cells), f"{nb_path} is committed with outputs"
        # Thin: no function or class definitions, no SQL.
        assert not any(re.search(r"^\s*(def|class) |SELECT ", s, re.M) for s in source), nb_path


def test_every_query_has_a_documented_header():
    from alliance.db import load_query, query_names

    for name in query_names():
        q = load_query(name)
        assert q.columns and q.description, name
