"""``curate run``'s engine options, refused up front (issue 14, items 13-14) and passed to DuckDB."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from curate_rows import laion_table

from t2iscope.cli import main
from t2iscope.curate.engine_local import LocalEngine
from t2iscope.curate.readers import check_memory_limit
from t2iscope.curate.recipe import recipe_from_dict
from t2iscope.curate.run import run_recipe
from t2iscope.errors import ConfigError

RECIPE = {"name": "sql", "stages": [{"resolution": {"min_side": 300}}, "unsafe"]}


@pytest.fixture
def src(write_shards: Callable[..., Path]) -> Path:
    return write_shards(laion_table(30), laion_table(30))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--threads", "-2"], "'--threads': -2 is not in the range 1<=x<=1024"),
        (["--threads", "0"], "'--threads': 0 is not in the range 1<=x<=1024"),
        (["--batch-rows", "0"], "'--batch-rows': 0 is not in the range 1<=x<=16777216"),
        (["--batch-rows", "9" * 21], f"'--batch-rows': {'9' * 21} is not in the range"),
        (["--threads", "100000"], "'--threads': 100000 is not in the range 1<=x<=1024"),
        (["--memory-limit", "lots"], "--memory-limit 'lots': expected a size such as 4GB"),
        (["--memory-limit", "1KB"], "--memory-limit '1KB': expected a size"),
        (["--memory-limit", "2048"], "--memory-limit '2048': expected a size"),
        (["--memory-limit", "150%"], "--memory-limit '150%': expected a size"),
        (["--memory-limit", "0%"], "--memory-limit '0%': expected a size"),
        (["--memory-limit", "9999TB"], "--memory-limit '9999TB': expected a size"),
        (["--memory-limit", "-1GB"], "--memory-limit '-1GB': expected a size"),
    ],
)
def test_bad_options_are_one_line_and_create_nothing(
    tmp_path: Path, src: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    out = tmp_path / "out"
    assert main(["curate", "run", str(recipe), "--input", str(src), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("t2iscope: error:") and needle in err and "\n" not in err
    assert not out.exists()


def test_a_file_as_temp_directory_is_refused(
    tmp_path: Path, src: Path, capsys: pytest.CaptureFixture
) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    args = ["curate", "run", str(recipe), "--input", str(src), "--out", str(tmp_path / "out")]
    assert main([*args, "--temp-directory", str(recipe)]) == 2
    assert "t2iscope: error:" in capsys.readouterr().err and not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        run_recipe(recipe_from_dict(RECIPE, "r.yaml"), str(src), tmp_path / "out", temp_directory=recipe)
    assert not (tmp_path / "out").exists()


API_BAD = [{"threads": 0}, {"threads": -2}, {"threads": 1.5}, {"threads": True}, {"batch_rows": 0}]
API_BAD += [{"batch_rows": -5}, {"batch_rows": 2**24 + 1}, {"threads": 1025}]
API_BAD += [{"memory_limit": "lots"}, {"memory_limit": "1KB"}]


@pytest.mark.parametrize("kwargs", API_BAD)
def test_the_api_refuses_what_the_cli_refuses(tmp_path: Path, src: Path, kwargs: dict) -> None:
    with pytest.raises(ConfigError, match=r"^--(threads|batch-rows|memory-limit) "):
        run_recipe(recipe_from_dict(RECIPE, "r.yaml"), str(src), tmp_path / "out", progress=False, **kwargs)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text", ["4GB", "512MiB", "1.5gb", " 2 GiB ", "50%", "12.5%"])
def test_sizes_duckdb_takes_are_accepted(text: str) -> None:
    engine = LocalEngine(threads=1, memory_limit=check_memory_limit(text))
    try:
        assert engine.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    finally:
        engine.close()


def test_memory_limit_and_temp_directory_reach_duckdb(tmp_path: Path) -> None:
    engine = LocalEngine(threads=1, memory_limit="1GB", temp_directory=tmp_path / "spill")
    try:
        setting = dict(engine.con.execute("SELECT name, value FROM duckdb_settings()").fetchall())
    finally:
        engine.close()
    assert setting["memory_limit"] == "953.6 MiB" and setting["temp_directory"] == str(tmp_path / "spill")


def test_spill_folder_lives_in_the_run_state_and_goes_with_it(tmp_path: Path, src: Path) -> None:
    recipe = recipe_from_dict(RECIPE, "r.yaml")
    run_recipe(recipe, str(src), tmp_path / "a", progress=False, memory_limit="128MiB")
    assert not (tmp_path / "a" / "_state" / "spill").exists()
    mine = tmp_path / "deep" / "spill"  # the user's: created when missing, left in place
    run_recipe(recipe, str(src), tmp_path / "b", progress=False, temp_directory=mine)
    assert mine.is_dir() and not (tmp_path / "b" / "_state" / "spill").exists()


def test_an_input_glob_that_reaches_into_out_is_refused(
    tmp_path: Path, write_shards: Callable[..., Path]
) -> None:
    """``--input 'data/**/*.parquet' --out data/run``: a rerun would curate the run's own files."""
    data = write_shards(laion_table(10), name="data")
    recipe = recipe_from_dict(RECIPE, "r.yaml")
    run_recipe(recipe, str(data / "**" / "*.parquet"), data / "run", progress=False)
    with pytest.raises(
        ConfigError, match=r"^--input .*: includes .*run/(kept|dropped)/part-00000\.parquet, inside"
    ):
        run_recipe(recipe, str(data / "**" / "*.parquet"), data / "run", progress=False)


def test_a_temp_directory_inside_out_is_refused(tmp_path: Path, src: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"--temp-directory .*: inside --out"):
        run_recipe(recipe_from_dict(RECIPE, "r.yaml"), str(src), out, temp_directory=out / "kept" / "spill")
    assert not out.exists()
