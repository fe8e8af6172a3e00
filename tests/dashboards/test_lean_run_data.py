"""Dashboard tables of a curation run written with ``dropped: none``: everything comes from stats.json."""

from __future__ import annotations

import json
from pathlib import Path

from t2iscope.curate.recipe import recipe_from_dict
from t2iscope.curate.run import run_recipe
from t2iscope.dashboards import data


def test_funnel_and_reasons_without_dropped_files(world_dir: Path, tmp_path: Path) -> None:
    recipe = recipe_from_dict(
        {"dropped": "none", "stages": [{"resolution": {"min_side": 300}}, "watermark"]}, "lean.yaml"
    )
    stats = run_recipe(recipe, str(world_dir / "metadata"), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "dropped").exists() and stats["rows_out"] < stats["rows_in"]
    assert json.loads((tmp_path / "run" / "stats.json").read_text())["dropped"] == "none"
    funnel = data.funnel(str(tmp_path / "run"))
    assert funnel["dropped"].sum() == stats["rows_in"] - stats["rows_out"]
    reasons = data.drop_reasons(str(tmp_path / "run"))
    want = {(s["stage"], r): n for s in stats["stages"] for r, n in s["dropped"].items()}
    got = zip(reasons["stage"], reasons["reason"], reasons["rows"], strict=True)
    assert {(s, r): n for s, r, n in got} == want
