"""The recipe's ``dropped`` mode: full, keys or no dropped files, with the same kept rows and stats."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from curate_rows import MIXED_RECIPE, laion_table

from t2iscope.cli import main
from t2iscope.curate.recipe import Recipe, recipe_from_dict
from t2iscope.curate.run import run_recipe
from t2iscope.errors import ConfigError

MODES = ("full", "keys", "none")
# language, dedup and domain run in Arrow after the pushed-down stages
MIXED = MIXED_RECIPE
ALL_SQL = recipe_from_dict(
    {"name": "sql", "stages": [{"resolution": {"min_side": 300}}, "watermark", "unsafe"]}, "sql.yaml"
)
RECIPES = {"mixed": MIXED, "all_sql": ALL_SQL}


def _input_tables() -> list[pa.Table]:
    langs = ["en", "de", None, "fr"]
    a = laion_table(40, LANGUAGE=[langs[i % 4] for i in range(40)])
    b = laion_table(
        40,
        TEXT=[f"ein roter Hund Nummer {i}" if i % 3 == 0 else f"a cup {i}" for i in range(40)],
        LANGUAGE=["de" if i % 3 == 0 else "en" for i in range(40)],
    )
    return [a, b, a]  # shard 2 repeats shard 0: dedup drops across shards


@pytest.fixture
def shards(write_shards: Callable[..., Path]) -> Path:
    return write_shards(*_input_tables())


def _run(recipe: Recipe, mode: str, src: Path, out: Path, **kw: Any) -> dict[str, Any]:
    return run_recipe(dataclasses.replace(recipe, dropped=mode), str(src), out, progress=False, **kw)


def _comparable(stats: dict[str, Any]) -> dict[str, Any]:
    """stats.json without what legitimately differs between two runs (time, mode, commit)."""
    out = {k: v for k, v in stats.items() if k not in ("timings", "dropped", "git_commit")}
    out["stages"] = [{k: v for k, v in s.items() if k != "seconds"} for s in stats["stages"]]
    return out


@pytest.fixture(scope="module", params=sorted(RECIPES))
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same recipe over the same input once per mode."""
    root = tmp_path_factory.mktemp(request.param)
    src = root / "input"
    src.mkdir()
    for i, table in enumerate(_input_tables()):
        pq.write_table(table, src / f"part-{i}.parquet")
    for mode in MODES:
        _run(RECIPES[request.param], mode, src, root / mode)
    return {mode: root / mode for mode in MODES}


def test_kept_rows_and_stats_are_the_same_in_every_mode(runs: dict[str, Path]) -> None:
    full = json.loads((runs["full"] / "stats.json").read_text())
    assert full["rows_out"] < full["rows_in"]  # something was dropped, so the modes differ
    for mode in MODES:
        stats = json.loads((runs[mode] / "stats.json").read_text())
        assert stats["dropped"] == mode
        assert _comparable(stats) == _comparable(full)
        assert yaml.safe_load((runs[mode] / "recipe.resolved.yaml").read_text())["dropped"] == mode
        assert pq.read_table(runs[mode] / "kept").equals(pq.read_table(runs["full"] / "kept"))


def test_keys_mode_writes_the_key_columns_of_the_same_rows(runs: dict[str, Path]) -> None:
    full = pq.read_table(runs["full"] / "dropped")
    keys = pq.read_table(runs["keys"] / "dropped")
    kept = pq.read_table(runs["full"] / "kept")
    expected = [c for c in ("hash", "LANGUAGE", "lang", "domain") if c in kept.column_names]
    assert keys.column_names == [*expected, "stage", "reason"]
    assert "URL" not in keys.column_names and "TEXT" not in keys.column_names
    assert keys.equals(full.select(keys.column_names))
    stats = json.loads((runs["keys"] / "stats.json").read_text())
    for s in stats["stages"]:
        mine = [
            r
            for r, st in zip(keys["reason"].to_pylist(), keys["stage"].to_pylist(), strict=True)
            if st == s["stage"]
        ]
        assert dict(Counter(mine)) == s["dropped"]


def test_none_mode_writes_no_dropped_files(runs: dict[str, Path]) -> None:
    assert not (runs["none"] / "dropped").exists()
    assert (runs["full"] / "dropped").is_dir()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_resume_after_kill_in_each_mode(tmp_path: Path, shards: Path, mode: str, recipe: str) -> None:
    full = tmp_path / "full"
    _run(RECIPES[recipe], mode, shards, full)
    killed = tmp_path / "killed"
    shutil.copytree(full, killed)
    for path in ("kept/part-00002.parquet", "_state/part-00002.json", "stats.json"):
        (killed / path).unlink()
    if mode != "none":
        (killed / "dropped" / "part-00002.parquet").unlink()
    for keys in (killed / "_state").glob("keys-*-part-00002.npy"):
        keys.unlink()
    stats = _run(RECIPES[recipe], mode, shards, killed)
    for sub in ("kept", "dropped"):
        assert sorted(p.name for p in (killed / sub).glob("*")) == sorted(
            p.name for p in (full / sub).glob("*")
        )
        for part in (full / sub).glob("*.parquet"):
            assert (killed / sub / part.name).read_bytes() == part.read_bytes()
    assert _comparable(stats) == _comparable(json.loads((full / "stats.json").read_text()))


def test_resuming_with_another_mode_is_refused(tmp_path: Path, shards: Path) -> None:
    _run(ALL_SQL, "keys", shards, tmp_path / "r")
    with pytest.raises(ConfigError, match="holds a different run"):
        _run(ALL_SQL, "full", shards, tmp_path / "r")


def test_bad_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"r.yaml: dropped 'urls'; valid: full, keys, none"):
        recipe_from_dict({"dropped": "urls", "stages": ["unsafe"]}, "r.yaml")
    assert recipe_from_dict({"dropped": "none", "stages": ["unsafe"]}, "r.yaml").dropped == "none"
    assert recipe_from_dict({"stages": ["unsafe"]}, "r.yaml").dropped == "full"


def test_cli_flag_overrides_the_recipe(
    tmp_path: Path, write_shards: Callable[..., Path], capsys: pytest.CaptureFixture
) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("dropped: keys\nstages:\n  - resolution: {min_side: 400}\n")
    src = write_shards(laion_table(30))
    args = ["curate", "run", str(recipe), "--input", str(src)]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert pq.read_table(tmp_path / "a" / "dropped").column_names == ["hash", "stage", "reason"]
    assert main([*args, "--out", str(tmp_path / "b"), "--dropped", "none"]) == 0
    out = capsys.readouterr().out
    assert "/b/dropped" not in out and "/a/dropped (keys)" in out
    assert not (tmp_path / "b" / "dropped").exists()
    assert json.loads((tmp_path / "b" / "stats.json").read_text())["dropped"] == "none"
    assert main([*args, "--out", str(tmp_path / "c"), "--dropped", "all"]) == 2


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_lean_modes_keep_the_same_rows_on_many_row_groups(tmp_path: Path, fmt: str) -> None:
    """keys/none re-read the kept rows by position: row groups and csv must not shuffle them."""
    src = tmp_path / "input"
    src.mkdir()
    table = laion_table(500, LANGUAGE=[["en", "de", "fr"][i % 3] for i in range(500)])
    if fmt == "parquet":
        pq.write_table(table, src / "part-0.parquet", row_group_size=7)
    else:
        table.to_pandas().to_csv(src / "part-0.csv", index=False)
    kept = {}
    for mode in MODES:
        _run(ALL_SQL, mode, src, tmp_path / mode, batch_rows=64)
        kept[mode] = pq.read_table(tmp_path / mode / "kept")
    assert 0 < kept["full"].num_rows < 500
    assert kept["keys"].equals(kept["full"]) and kept["none"].equals(kept["full"])


@pytest.mark.parametrize("survivors", [True, False])
def test_none_mode_counts_late_validity_drops_like_full_mode(tmp_path: Path, survivors: bool) -> None:
    """``none`` on parquet tests URLs and captions only on rows that pass the numeric stages."""
    n = 300
    urls = [f"https://a{i % 5}.example.com/{i}.jpg" if i % 7 else "not a url" for i in range(n)]
    texts = [None if i % 11 == 0 else "x" * (5000 if i % 13 == 0 else 10) for i in range(n)]
    width = [1024 if survivors else 10] * n
    table = laion_table(n, URL=urls, TEXT=texts, WIDTH=width, HEIGHT=width)
    src = tmp_path / "input"
    src.mkdir()
    pq.write_table(table, src / "part-0.parquet", row_group_size=16)
    stats = {mode: _run(ALL_SQL, mode, src, tmp_path / mode) for mode in ("full", "none")}
    assert _comparable(stats["none"]) == _comparable(stats["full"])
    validity = next(s for s in stats["none"]["stages"] if s["stage"] == "validity")
    assert (sum(validity["dropped"].values()) > 0) == survivors
    kept = {mode: pq.read_table(tmp_path / mode / "kept") for mode in ("full", "none")}
    assert kept["none"].equals(kept["full"]) and (kept["none"].num_rows > 0) == survivors
    assert not list((tmp_path / "none" / "kept").glob(".*"))  # no partition folders left behind


@pytest.mark.parametrize("mode", MODES)
def test_shards_side_by_side_write_what_one_at_a_time_writes(shards: Path, tmp_path: Path, mode: str) -> None:
    """All-SQL, stateless recipes run shards in parallel threads: same files, same stats."""
    one = _run(ALL_SQL, mode, shards, tmp_path / "one", threads=1)
    two = _run(ALL_SQL, mode, shards, tmp_path / "two", threads=2)
    assert _comparable(one) == _comparable(two)
    for sub in ("kept", "dropped") if mode != "none" else ("kept",):
        names = sorted(p.name for p in (tmp_path / "one" / sub).iterdir())
        assert names == sorted(p.name for p in (tmp_path / "two" / sub).iterdir()) and len(names) == 3
        for name in names:
            a, b = (pq.read_table(tmp_path / run / sub / name) for run in ("one", "two"))
            assert a.equals(b)
