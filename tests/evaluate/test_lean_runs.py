"""Audits of runs written with ``dropped: keys`` or ``none``: exact where possible, else a counted skip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from t2iscope.curate.recipe import recipe_from_dict
from t2iscope.curate.run import run_recipe
from t2iscope.errors import DataError
from t2iscope.evaluate.audits import AUDITS
from t2iscope.evaluate.context import AuditContext, Inputs
from t2iscope.evaluate.parquet_inputs import CurationRun
from t2iscope.evaluate.shift import UNRECORDED, stage_counts

MODES = ("full", "keys", "none")


@pytest.fixture(scope="module")
def runs(world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The session world curated once per mode (language in Arrow, aesthetic in SQL, domain)."""
    root = tmp_path_factory.mktemp("lean")
    out = {}
    for mode in MODES:
        recipe = recipe_from_dict(
            {
                "name": "lean",
                "dropped": mode,
                "stages": [{"aesthetic": {"min_score": 5.0}}, {"language": {"keep": ["en"]}}, "domain"],
            },
            "lean.yaml",
        )
        out[mode] = root / mode / "run"  # same folder name: audits label rows with it
        run_recipe(recipe, str(world_dir / "metadata"), out[mode], progress=False)
    return out


def _dropped_rows(run: Path) -> int:
    stats = json.loads((run / "stats.json").read_text())
    return stats["rows_in"] - stats["rows_out"]


def _audit(name: str, run: Path, world: Path | None = None) -> pd.DataFrame:
    return AUDITS.get(name).fn(AuditContext(Inputs(curation=(run,), world=world)))


def test_language_mix_with_keys_equals_full(runs: dict[str, Path], world_dir: Path) -> None:
    full = _audit("language_mix", runs["full"], world_dir)
    assert {"pass_rate", "share_in"} <= set(full["metric"]) and "skipped" not in set(full["metric"])
    pd.testing.assert_frame_equal(_audit("language_mix", runs["keys"], world_dir), full)


def test_language_mix_without_dropped_rows_is_output_shares_and_a_counted_skip(
    runs: dict[str, Path], world_dir: Path
) -> None:
    full = _audit("language_mix", runs["full"], world_dir)
    lean = _audit("language_mix", runs["none"], world_dir)
    assert set(lean["metric"]) == {"share_out", "skipped"}
    for column in ("lang", "culture"):
        skip = lean[(lean["metric"] == "skipped") & (lean["column"] == column)]
        assert skip["value"].tolist() == [_dropped_rows(runs["none"])]
        assert "dropped: keys or none" in skip["note"].iloc[0]
    cols = ["column", "key", "value", "n"]
    got = lean[lean["metric"] == "share_out"][cols].set_index(["column", "key"])
    want = full[full["metric"] == "share_out"][cols].set_index(["column", "key"]).loc[got.index]
    assert len(got) > 0
    pd.testing.assert_frame_equal(got, want)


def test_domains_on_keys_run_counts_the_urlless_dropped_rows(runs: dict[str, Path]) -> None:
    t = _audit("domains", runs["keys"])
    skip = t[(t["metric"] == "skipped") & (t["key"] == UNRECORDED)]
    assert sorted(skip["level"]) == ["domain", "host"]
    assert skip["value"].tolist() == [_dropped_rows(runs["keys"])] * 2
    assert not (t["metric"] == "pass_rate").any()
    described = t[t["metric"] != "skipped"]
    assert not (described["key"] == UNRECORDED).any()  # never listed as if it were a host
    assert not described["dataset"].str.endswith(":input").any()
    assert described["dataset"].str.endswith(":output").any()


def test_run_reads_mode_and_stage_drops_from_stats(runs: dict[str, Path]) -> None:
    for mode in MODES:
        run = CurationRun.open(runs[mode])
        assert run.dropped_mode == mode
        assert sum(run.stage_drops.values()) == _dropped_rows(runs[mode])
        assert (run.dropped == []) == (mode == "none")
    counts = stage_counts(CurationRun.open(runs["none"]), "CAST(d.LANGUAGE AS VARCHAR)")
    unrecorded = counts[counts["key"] == UNRECORDED]
    assert dict(zip(unrecorded["stage"], unrecorded["rows"], strict=True)) == {
        s: n for s, n in CurationRun.open(runs["none"]).stage_drops.items() if n
    }


def test_lean_dropped_rows_without_stats_are_a_data_error(runs: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(runs["keys"], run)
    (run / "stats.json").unlink()
    with pytest.raises(DataError, match="lack a column this audit groups by"):
        stage_counts(CurationRun.open(run), "d.URL")
