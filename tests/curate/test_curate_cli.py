"""`t2iscope curate ...` from the command line: results printed, errors one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from curate_rows import laion_table

from t2iscope.cli import main


def test_run_builtin_recipe(
    tmp_path: Path, write_shards: Callable[..., Path], capsys: pytest.CaptureFixture
) -> None:
    folder = write_shards(laion_table(30))
    code = main(
        ["curate", "run", "sd-improved-aesthetics", "--input", str(folder), "--out", str(tmp_path / "r")]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "sd-improved-aesthetics: 30 rows in" in out and "watermark" in out
    assert (tmp_path / "r" / "stats.json").exists()


def test_bad_recipe_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("stages:\n  - resolution: {min_sid: 3}\n")
    code = main(["curate", "run", str(recipe), "--input", str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "min_sid" in err and "r.yaml" in err


def test_stages_lists_every_operator(capsys: pytest.CaptureFixture) -> None:
    assert main(["curate", "stages"]) == 0
    out = capsys.readouterr().out
    for name in ("language", "resolution", "watermark", "aesthetic", "unsafe", "caption", "dedup", "domain"):
        assert name in out
