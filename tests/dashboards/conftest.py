"""Fixtures: the small runs folder of fixture_runs.py, and pointing the app at a folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from fixture_runs import make_audit, make_curation, make_generation, make_world


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    meta = make_world(root / "world")
    make_curation(root / "curated", meta)
    make_generation(root / "gen")
    make_audit(root / "audit")
    return root


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
