"""Run folders: layout, every row accounted for, same output twice, resume after a kill."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from curate_rows import MIXED_RECIPE as RECIPE
from curate_rows import laion_table

from t2iscope.curate.recipe import load_recipe, recipe_from_dict
from t2iscope.curate.run import run_recipe
from t2iscope.errors import ConfigError


@pytest.fixture
def three_shards(write_shards: Callable[..., Path]) -> Path:
    a = laion_table(40)
    b = laion_table(
        40, TEXT=[f"ein roter Hund Nummer {i}" if i % 3 == 0 else f"a cup {i}" for i in range(40)]
    )
    # shard 2 repeats shard 0's URLs: dedup must see across shards (and across a resume)
    return write_shards(a, b, a)


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.parquet"))}


def test_layout_and_accounting(tmp_path: Path, three_shards: Path) -> None:
    stats = run_recipe(RECIPE, str(three_shards), tmp_path / "r", progress=False)
    out = tmp_path / "r"
    kept, dropped = pq.read_table(out / "kept"), pq.read_table(out / "dropped")
    assert stats["rows_in"] == 120 == kept.num_rows + dropped.num_rows
    assert stats["rows_out"] == kept.num_rows
    by_stage = {s["stage"]: s for s in stats["stages"]}
    for s in stats["stages"]:
        assert s["rows_in"] - s["rows_out"] == sum(s["dropped"].values())
        assert dropped.column("stage").to_pylist().count(s["stage"]) == sum(s["dropped"].values())
    assert by_stage["dedup"]["dropped"]["duplicate_url"] >= 1
    assert by_stage["resolution"]["pushed_down"] and not by_stage["language"]["pushed_down"]
    assert stats["languages"]["out"] == {"en": kept.num_rows}
    assert {"lang", "lang_score", "host", "domain"} <= set(kept.column_names)
    assert (out / "recipe.resolved.yaml").read_text().startswith("name: mix")
    assert json.loads((out / "stats.json").read_text())["input"]["files"] == 3


def test_same_recipe_same_rows(tmp_path: Path, three_shards: Path) -> None:
    run_recipe(RECIPE, str(three_shards), tmp_path / "a", progress=False)
    run_recipe(RECIPE, str(three_shards), tmp_path / "b", progress=False)
    for sub in ("kept", "dropped"):
        assert pq.read_table(tmp_path / "a" / sub).equals(pq.read_table(tmp_path / "b" / sub))


def test_resume_after_kill_gives_same_output(tmp_path: Path, three_shards: Path) -> None:
    full = tmp_path / "full"
    run_recipe(RECIPE, str(three_shards), full, progress=False)
    killed = tmp_path / "killed"
    shutil.copytree(full, killed)
    # What a kill during shard 2 leaves: shards 0-1 finished, nothing of shard 2 or the summary.
    for path in (
        "kept/part-00002.parquet",
        "dropped/part-00002.parquet",
        "_state/part-00002.json",
        "stats.json",
    ):
        (killed / path).unlink()
    (killed / "_state" / "keys-3-part-00002.npy").unlink()
    stats = run_recipe(RECIPE, str(three_shards), killed, progress=False)
    for sub in ("kept", "dropped"):
        assert _bytes(killed / sub) == _bytes(full / sub)

    def tallies(stages: list[dict]) -> list[tuple]:
        return [(s["stage"], s["rows_in"], s["rows_out"], s["dropped"]) for s in stages]

    assert tallies(stats["stages"]) == tallies(json.loads((full / "stats.json").read_text())["stages"])


def test_refuses_to_mix_runs(tmp_path: Path, three_shards: Path) -> None:
    run_recipe(RECIPE, str(three_shards), tmp_path / "r", progress=False)
    other = recipe_from_dict({"name": "other", "stages": ["unsafe"]}, "o.yaml")
    with pytest.raises(ConfigError, match=r"holds a different run \(3 shard\(s\) finished .*--overwrite"):
        run_recipe(other, str(three_shards), tmp_path / "r", progress=False)
    stats = run_recipe(other, str(three_shards), tmp_path / "r", progress=False, overwrite=True)
    assert stats["recipe"] == "other"
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a curation run folder"):
        run_recipe(other, str(three_shards), tmp_path / "precious", progress=False, overwrite=True)


def test_small_batches_give_the_same_rows(tmp_path: Path, three_shards: Path) -> None:
    run_recipe(RECIPE, str(three_shards), tmp_path / "big", progress=False)
    run_recipe(RECIPE, str(three_shards), tmp_path / "small", progress=False, batch_rows=7)
    assert pq.read_table(tmp_path / "big" / "kept").equals(pq.read_table(tmp_path / "small" / "kept"))
    # dropped rows interleave by batch, so compare them as a multiset
    big, small = (pq.read_table(tmp_path / r / "dropped").to_pylist() for r in ("big", "small"))
    assert sorted(map(repr, big)) == sorted(map(repr, small))


@pytest.mark.parametrize("batch_rows", [1, 2, 7])
def test_batch_size_never_changes_the_result(tmp_path: Path, world_dir: Path, batch_rows: int) -> None:
    """A batch whose every row a pushed-down rule drops must be dropped too (it was kept whole)."""
    recipe = load_recipe("sd-improved-aesthetics")  # pushed rules, then dedup in Python
    ref = run_recipe(recipe, str(world_dir), tmp_path / "ref", progress=False)
    got = run_recipe(recipe, str(world_dir), tmp_path / "small", progress=False, batch_rows=batch_rows)
    assert pq.read_table(tmp_path / "ref" / "kept").equals(pq.read_table(tmp_path / "small" / "kept"))
    tallies = [[{k: v for k, v in s.items() if k != "seconds"} for s in r["stages"]] for r in (ref, got)]
    assert tallies[0] == tallies[1]
    assert ref["rows_out"] < ref["rows_in"] // 2  # the recipe drops most rows: all-dropped batches occur


def test_all_sql_recipe_tallies_match_its_files(tmp_path: Path, write_shards: Callable[..., Path]) -> None:
    """Every stage pushed down: one GROUP BY gives the stats; they must agree with the files."""
    langs = ["en", "de", None, "fr"]
    table = laion_table(60, LANGUAGE=[langs[i % 4] for i in range(60)])
    recipe = recipe_from_dict(
        {"name": "sql", "stages": [{"resolution": {"min_side": 300}}, "watermark", "unsafe"]}, "sql.yaml"
    )
    stats = run_recipe(recipe, str(write_shards(table, table.slice(0, 9))), tmp_path / "r", progress=False)
    kept, dropped = pq.read_table(tmp_path / "r" / "kept"), pq.read_table(tmp_path / "r" / "dropped")
    assert all(s["pushed_down"] for s in stats["stages"])
    assert stats["rows_in"] == 69 and stats["rows_out"] == kept.num_rows > 0
    rows_in = 69
    for s in stats["stages"]:
        mine = [r for r in dropped.to_pylist() if r["stage"] == s["stage"]]
        assert s["rows_in"] == rows_in
        assert s["dropped"] == dict(Counter(r["reason"] for r in mine))
        rows_in -= len(mine)
        assert s["rows_out"] == rows_in
    every = table.column("LANGUAGE").to_pylist() + table.column("LANGUAGE").to_pylist()[:9]

    def code(language: str | None) -> str:  # a row without a language counts as LAION's "nolang"
        return "nolang" if language is None else language

    assert stats["languages"]["in"] == dict(Counter(map(code, every)))
    assert stats["languages"]["out"] == dict(Counter(map(code, kept.column("LANGUAGE").to_pylist())))
