"""One writer per output folder (issue 14, item 8) for ``curate run`` and ``world make``.

A second writer gets one line naming the owner and changes nothing, ``--overwrite`` included;
``--overwrite`` keeps the lock file it holds; a ``world make`` killed midway is made again by a
plain rerun, byte for byte.
"""

from __future__ import annotations

import hashlib
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from curate_rows import laion_table

from t2iscope.cli import main
from t2iscope.curate.recipe import recipe_from_dict
from t2iscope.curate.run import run_recipe
from t2iscope.curate.world.make import make_world
from t2iscope.errors import ConfigError
from t2iscope.locks import LOCK_NAME, output_lock

RECIPE = {"name": "sql", "stages": [{"resolution": {"min_side": 300}}, "unsafe"]}
WAIT_S = 120


def _files(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` but the lock, with its digest."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != LOCK_NAME
    }


def test_curate_run_into_a_held_folder_is_refused_and_changes_nothing(write_shards, tmp_path: Path) -> None:
    src = write_shards(laion_table(20))
    recipe = recipe_from_dict(RECIPE, "r.yaml")
    out = tmp_path / "out"
    run_recipe(recipe, str(src), out, progress=False)
    with output_lock(out):  # another writer (this process, through another open file)
        (out / "_state" / "spill").mkdir()  # the owner's DuckDB spills here: a refused run keeps off
        (out / "_state" / "spill" / "duckdb_temp_block-1.block").write_bytes(b"spilled")
        before = _files(out)
        for overwrite in (False, True):
            with pytest.raises(ConfigError, match=rf"^{re.escape(str(out))}: in use by pid \d+"):
                run_recipe(recipe, str(src), out, progress=False, overwrite=overwrite)
        assert _files(out) == before
    run_recipe(recipe, str(src), out, progress=False, overwrite=True)
    assert (out / LOCK_NAME).exists()  # --overwrite kept the lock, and the run removed its spill folder
    assert _files(out).keys() == before.keys() - {"_state/spill/duckdb_temp_block-1.block"}


def test_world_make_into_a_held_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "w"
    make_world(out, 10, images=False, progress=False)
    before = _files(out)
    with output_lock(out):
        with pytest.raises(ConfigError, match="in use by pid"):
            make_world(out, 10, images=False, overwrite=True, progress=False)
        assert _files(out) == before


def _wait_for_lock(out: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + WAIT_S
    while not ((out / LOCK_NAME).exists() and f"pid {proc.pid}" in (out / LOCK_NAME).read_text()):
        assert proc.poll() is None, f"the first writer ended ({proc.returncode}) before it held the lock"
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.parametrize("command", ["curate", "world"])
def test_two_writers_at_once_the_second_gets_one_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    if command == "curate":
        src = tmp_path / "in"
        src.mkdir()
        for i in range(6):  # enough shards that the first run is still working
            laion_table(3000).to_pandas().to_csv(src / f"{i}.csv", index=False)
        recipe = tmp_path / "r.yaml"
        recipe.write_text(yaml.safe_dump({**RECIPE, "stages": [*RECIPE["stages"], "domain"]}))
        args = ["curate", "run", str(recipe), "--input", str(src), "--out", str(out), "--threads", "1"]
    else:
        args = ["world", "make", "--out", str(out), "--rows", "200000", "--no-images", "--shard-size", "5000"]
    first = subprocess.Popen([sys.executable, "-m", "t2iscope.cli", *args], stderr=subprocess.DEVNULL)
    try:
        _wait_for_lock(out, first)
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert re.fullmatch(
            rf"t2iscope: error: {re.escape(str(out))}: in use by pid {first.pid} \(.*\).*", err
        )
        assert first.poll() is None, "the first writer finished before the second tried"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=WAIT_S)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert main(args) == 0  # the lock died with its owner; the rerun resumes or starts over


def test_a_killed_world_make_is_made_again_without_overwrite(tmp_path: Path) -> None:
    reference, out = tmp_path / "ref", tmp_path / "w"
    args = ["--rows", "60000", "--no-images", "--shard-size", "5000", "--seed", "4"]
    make_world(reference, 60000, seed=4, images=False, shard_size=5000, progress=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "t2iscope.cli", "world", "make", "--out", str(out), *args],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + WAIT_S
        while not list((out / "truth").glob("part-00002.parquet")) if out.exists() else True:
            assert proc.poll() is None and time.monotonic() < deadline, "world make ended before the kill"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not (out / "world.json").exists()
    assert main(["world", "make", "--out", str(out), *args]) == 0
    assert _files(out) == _files(reference)
    assert not [p for p in out.rglob("*") if p.name.startswith(".") and p.name != LOCK_NAME]
