"""Run discovery by marker files."""

from __future__ import annotations

from pathlib import Path

from t2iscope.dashboards.discover import audit_tables, discover


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


def test_audit_tables_need_metric_value_n(runs_dir: Path, tmp_path: Path):
    assert [p.stem for p in audit_tables(runs_dir / "audit")] == [
        "culture",
        "language_bias",
        "limbs",
        "watermark",
    ]
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    assert audit_tables(tmp_path) == []
    assert discover(tmp_path).empty
