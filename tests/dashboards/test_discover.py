"""Run discovery by marker files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from fixture_runs import write_audit_run

from t2iscope.dashboards.discover import discover
from t2iscope.evaluate.folder import STAGING


def test_finds_each_kind_by_its_marker(runs_dir: Path):
    found = discover(runs_dir)
    assert found.worlds == (runs_dir / "world",)
    assert found.curations == (runs_dir / "curated",)
    assert found.generations == (runs_dir / "gen",)
    assert found.audits == (runs_dir / "audit",)
    assert found.label(runs_dir / "gen") == "gen"
    assert not found.empty


def test_empty_and_missing_folders(tmp_path: Path):
    assert discover(tmp_path).empty
    assert discover(tmp_path / "nope").empty


def test_nested_runs_and_a_run_given_directly(runs_dir: Path, tmp_path: Path):
    assert discover(runs_dir / "gen").generations == (runs_dir / "gen",)
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "stats.json").write_text("{}")
    assert discover(tmp_path).curations == (nested,)


def test_an_audit_run_is_a_folder_with_run_json(runs_dir: Path, tmp_path: Path):
    """As `evaluate report` reads it: run.json marks a finished run; a folder holding an audit
    run's files without it is unfinished, shown apart and never read as a run."""
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "junk.parquet").write_bytes(b"not parquet")
    assert discover(tmp_path).empty
    write_audit_run(tmp_path / "done", {"limbs": pd.read_parquet(runs_dir / "audit" / "limbs.parquet")})
    (tmp_path / "killed" / STAGING).mkdir(parents=True)  # killed before its first table was moved in
    (tmp_path / "old").mkdir()
    for table in (runs_dir / "audit").glob("*.parquet"):  # tables of a run whose run.json is gone
        (tmp_path / "old" / table.name).write_bytes(table.read_bytes())
    found = discover(tmp_path)
    assert found.audits == (tmp_path / "done",)
    assert found.unfinished == (tmp_path / "killed", tmp_path / "old")
