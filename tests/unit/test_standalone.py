"""The repository stands alone: a copy of it with nothing beside it passes the reference tests, and no file
points at material outside the repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "tests" / "reference"
# Built from parts so that this file does not match its own search.
OUTSIDE = re.compile(
    "|".join([r"\.\./" + "shared", "shared/" + "oracles", "domain" + r"\.md", "ALLIANCE_" + "ORACLES"])
)
SKIP_DIRS = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "test-artifacts", "build"}


def repository_files() -> list[Path]:
    """The files a clone would hold: git's tracked and untracked-not-ignored files, else a walk of the tree."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout.decode()
        files = [REPO / f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = [p for p in REPO.rglob("*") if p.is_file() and not SKIP_DIRS & set(p.parts)]
    return [f for f in files if f.is_file() and not f.name.endswith(".duckdb")]


def test_no_file_points_outside_the_repository():
    offenders = []
    for path in repository_files():
        if path.suffix in {".png", ".pdf"} or path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [
            f"{path.relative_to(REPO)}:{n}"
            for n, line in enumerate(text.splitlines(), 1)
            if OUTSIDE.search(line)
        ]
    assert not offenders, "these lines point outside the repository:\n" + "\n".join(offenders)


def test_every_reference_file_is_described_in_its_readme():
    readme = (REFERENCE / "README.md").read_text(encoding="utf-8")
    csvs = sorted(p.name for p in REFERENCE.glob("*.csv"))
    assert len(csvs) == 11
    assert [name for name in csvs if f"`{name}`" not in readme] == []


def test_reference_tests_pass_in_a_copy_with_nothing_beside_it(tmp_path):
    """Copy the repository into an empty folder and run the reference tests there, with a clean environment."""
    copy = tmp_path / "alone" / "alliance-repo"
    for path in repository_files():
        target = copy / path.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    assert sorted(p.name for p in (tmp_path / "alone").iterdir()) == ["alliance-repo"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALLIANCE_", "PYTEST_"))}
    env["PYTHONPATH"] = str(copy)  # the copy's own package, not the installed checkout
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "tests/unit/test_metrics_reference.py",
            "tests/unit/test_clinical_reference.py",
        ],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    tail = result.stdout[-3000:] + result.stderr[-2000:]
    assert result.returncode == 0, tail
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) >= 45, tail
    assert "skipped" not in result.stdout.splitlines()[-1], tail
    # The copy's package was the one imported.
    check = subprocess.run(
        [sys.executable, "-c", "import alliance, sys; sys.stdout.write(alliance.__file__)"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(check.stdout).resolve().is_relative_to(copy.resolve())
