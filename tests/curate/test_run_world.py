"""The shipped recipes over the synthetic world, from the CLI, checked against the world's truth."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from t2iscope.cli import main
from t2iscope.curate.recipe import builtin_names


@pytest.mark.parametrize("recipe", builtin_names())
def test_builtin_recipe_on_world(recipe: str, world_dir: Path, tmp_path: Path) -> None:
    assert main(["curate", "run", recipe, "--input", str(world_dir), "--out", str(tmp_path / "r")]) == 0
    stats = json.loads((tmp_path / "r" / "stats.json").read_text())
    assert stats["rows_in"] == 400
    kept = pq.read_table(tmp_path / "r" / "kept")
    assert 0 < kept.num_rows == stats["rows_out"] < 400


def test_language_recipe_agrees_with_caption_truth(world_dir: Path, tmp_path: Path) -> None:
    assert main(["curate", "run", "laion2b-en", "--input", str(world_dir), "--out", str(tmp_path / "r")]) == 0
    stats = json.loads((tmp_path / "r" / "stats.json").read_text())
    lang = next(s for s in stats["stages"] if s["stage"] == "language")
    agreement = lang["agreement"]["en"]
    assert agreement["agree"] / agreement["n"] > 0.9
    truth = pq.read_table(world_dir / "truth", columns=["hash", "caption_lang"]).to_pylist()
    caption_lang = {r["hash"]: r["caption_lang"] for r in truth}
    kept = pq.read_table(tmp_path / "r" / "kept", columns=["hash"]).column("hash").to_pylist()
    english = sum(caption_lang[h] == "en" for h in kept)
    assert english / len(kept) > 0.95
