"""Fixtures: the hand-made runs folder of fixture_runs.py, the same folder with a world and a
curation run made by the real CLIs, and pointing the app at a folder."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from fixture_runs import make_audit, make_curation, make_generation, make_hostile, make_world

from t2iscope.cli import main

RECIPE = """\
name: dashboard-tests
description: Adds lang and domain, then drops by size and aesthetic score.
stages:
  - language: {min_score: 0.0}
  - domain: {}
  - resolution: {min_side: 256}
  - aesthetic: {min_score: 4.5}
"""


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    meta = make_world(root / "world")
    make_curation(root / "curated", meta)
    make_generation(root / "gen")
    make_audit(root / "audit")
    return root


@pytest.fixture(scope="session")
def real_runs(runs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A world and a curation run made by `t2iscope world make` / `curate run`, beside the
    hand-made generation and audit (those need trained models and audits to be made for real)."""
    root = tmp_path_factory.mktemp("real")
    assert main(["world", "make", "--out", str(root / "world"), "--rows", "400", "--seed", "0"]) == 0
    (root / "recipe.yaml").write_text(RECIPE)
    args = ["curate", "run", str(root / "recipe.yaml"), "--input", str(root / "world"), "--out"]
    assert main([*args, str(root / "curated")]) == 0
    (root / "recipe.yaml").unlink()
    shutil.copytree(runs_dir / "gen", root / "gen")
    shutil.copytree(runs_dir / "audit", root / "audit")
    return root


@pytest.fixture(scope="session")
def hostile_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A runs folder with Markdown/HTML in every shown text, and the image outside it that its
    manifest points at (fixture_runs.make_hostile)."""
    root = tmp_path_factory.mktemp("hostile") / "runs"
    return root, make_hostile(root)


@pytest.fixture
def use_runs(monkeypatch: pytest.MonkeyPatch):
    """Point the app at a runs folder the way `t2iscope dashboard` does (``-- --runs DIR``)."""

    def point(path: Path) -> Path:
        monkeypatch.setattr(sys, "argv", ["app.py", "--runs", str(path)])
        return path

    return point


@pytest.fixture
def stats(runs_dir: Path) -> dict:
    return json.loads((runs_dir / "curated" / "stats.json").read_text())
