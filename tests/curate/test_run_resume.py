"""Kill, fail and resume ``curate run`` (issue 14, item 7): a rerun decides from what is finished.

Real ``curate run`` processes are killed with SIGKILL at varied points (while a file is being
written, right after a shard finished, after a delay); the rerun must end byte-identical to an
uninterrupted run and leave no temp file. A run that failed on bad data must resume once the file
is fixed, and a folder whose run never finished a shard never traps its user.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import yaml
from curate_rows import laion_table

from t2iscope.cli import main
from t2iscope.curate.recipe import recipe_from_dict
from t2iscope.curate.run import run_recipe
from t2iscope.errors import ConfigError, DataError
from t2iscope.locks import LOCK_NAME

# Every stage in DuckDB (parquet: verdicts then COPYs; shards side by side), and one with Python
# stages and dedup state carried from shard to shard (one shard at a time).
RECIPES = {
    "all_sql": {
        "name": "sql",
        "stages": [{"resolution": {"min_side": 300}}, {"watermark": {"max_score": 0.8}}, "unsafe"],
    },
    "mixed": {
        "name": "mixed",
        "stages": [{"resolution": {"min_side": 300}}, {"dedup": {"by": "url"}}, "domain", "caption"],
    },
}
SHARDS, ROWS = 4, 60_000
ROWS_SQL = """
SELECT 'https://img' || (i % 5) || '.site' || (i % 701) || '.com/p/' || (i % 40000) || '.jpg' AS URL,
       'a photo of a red dog number ' || i AS TEXT,
       (200 + i * 37 % 900)::BIGINT AS WIDTH, (200 + i * 53 % 900)::BIGINT AS HEIGHT,
       ['en', 'de', 'fr'][1 + i % 3] AS LANGUAGE,
       (i * 7 % 1000) / 1000.0 AS pwatermark, (i * 11 % 1000) / 1000.0 AS punsafe,
       (i * 13)::BIGINT AS hash
FROM range($start, $stop) t(i)
"""
WAIT_S = 120


@pytest.fixture(scope="module")
def big_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four parquet shards of 60k rows (URLs repeat across shards: dedup state matters)."""
    folder = tmp_path_factory.mktemp("big") / "input"
    folder.mkdir()
    con = duckdb.connect()
    for k in range(SHARDS):
        bounds = {"start": k * ROWS // 2, "stop": k * ROWS // 2 + ROWS}
        con.execute(
            f"COPY ({ROWS_SQL}) TO $path (FORMAT parquet)", {**bounds, "path": str(folder / f"{k}.parquet")}
        )
    return folder


def _cli(recipe: Path, src: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "t2iscope.cli", "curate", "run", str(recipe), "--input", str(src),
            "--out", str(out), "--threads", "2", *extra]  # fmt: skip


def _leftovers(out: Path) -> list[str]:
    """What no finished run may leave: hidden temp files, DuckDB's tmp_ files, spill folders."""
    return sorted(
        str(p.relative_to(out))
        for p in out.rglob("*")
        if (p.name.startswith((".", "tmp_")) and p.name != LOCK_NAME) or p.name == "spill"
    )


def _outputs(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes() for sub in ("kept", "dropped") for p in (out / sub).glob("*")
    }


def _tallies(out: Path) -> list[tuple]:
    stats = json.loads((out / "stats.json").read_text())
    return [(s["stage"], s["rows_in"], s["rows_out"], s["dropped"]) for s in stats["stages"]]


def _kill_when(cmd: list[str], ready: Callable[[], bool], log: Path) -> bool:
    """Start ``cmd``, SIGKILL it as soon as ``ready()``; False when it finished first."""
    with open(log, "a") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + WAIT_S
        while not ready():
            if proc.poll() is not None:
                return False
            assert time.monotonic() < deadline, "the run never reached the kill point"
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=WAIT_S)
        return True
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_kills_at_varied_points_resume_to_the_same_bytes(name: str, big_input: Path, tmp_path: Path) -> None:
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text(yaml.safe_dump(RECIPES[name]))
    reference, out, log = tmp_path / "reference", tmp_path / "killed", tmp_path / "stderr.txt"
    start = time.monotonic()
    subprocess.run(_cli(recipe, big_input, reference), check=True, capture_output=True)
    seconds = time.monotonic() - start

    def writing() -> bool:  # an atomic write (or DuckDB's COPY) is in flight under --out
        return out.exists() and any(
            p.name.startswith((".", "tmp_")) and p.name != LOCK_NAME for p in out.rglob("*")
        )

    def one_shard_done() -> bool:
        return len(list((out / "_state").glob("part-*.json"))) >= 1 if out.exists() else False

    def after(fraction: float) -> Callable[[], bool]:
        begin = time.monotonic()
        return lambda: time.monotonic() - begin > fraction * seconds

    kills = 0
    for ready in (writing, one_shard_done, writing, after(0.6), after(0.85)):
        kills += _kill_when(_cli(recipe, big_input, out), ready, log)
    assert kills >= 3, f"only {kills} of 5 runs were killed before they finished"
    assert subprocess.run(_cli(recipe, big_input, out), capture_output=True).returncode == 0, log.read_text()
    assert _leftovers(out) == []
    assert _outputs(out) == _outputs(reference)
    assert _tallies(out) == _tallies(reference)


def _corrupt_data_pages(path: Path) -> None:
    """Garble column data but keep the footer: the schema reads, the rows do not (found mid-run)."""
    data = bytearray(path.read_bytes())
    data[8:400] = b"\xff" * 392
    path.write_bytes(bytes(data))


ALL_SQL = recipe_from_dict(RECIPES["all_sql"], "sql.yaml")
MIXED = recipe_from_dict(RECIPES["mixed"], "mixed.yaml")


@pytest.mark.parametrize("recipe", [ALL_SQL, MIXED], ids=["all_sql", "mixed"])
def test_a_failed_run_resumes_once_its_input_is_fixed(recipe, write_shards, tmp_path: Path) -> None:
    tables = [laion_table(30), laion_table(40), laion_table(50)]
    src = write_shards(*tables)
    reference = tmp_path / "reference"
    run_recipe(recipe, str(src), reference, progress=False, threads=1)
    pq.write_table(laion_table(55), src / "part-2.parquet")  # a broken download, say
    _corrupt_data_pages(src / "part-2.parquet")
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"part-2\.parquet: cannot read as parquet"):
        run_recipe(recipe, str(src), out, progress=False, threads=1)
    assert sorted(p.name for p in (out / "_state").glob("part-*.json")) == [
        "part-00000.json",
        "part-00001.json",
    ]
    pq.write_table(tables[2], src / "part-2.parquet")  # fixed: the run's identity (sizes) changed
    run_recipe(recipe, str(src), out, progress=False, threads=1)
    assert _outputs(out) == _outputs(reference) and _tallies(out) == _tallies(reference)
    assert _leftovers(out) == []


def test_a_run_that_never_finished_a_shard_is_started_over(write_shards, tmp_path: Path) -> None:
    """Failed in its first shard, with a recipe the user then changes: nothing there to protect."""
    src = write_shards(laion_table(20))
    _corrupt_data_pages(src / "part-0.parquet")
    out = tmp_path / "out"
    with pytest.raises(DataError):
        run_recipe(ALL_SQL, str(src), out, progress=False)
    assert (out / "_state" / "run.json").exists()
    pq.write_table(laion_table(20), src / "part-0.parquet")
    other = recipe_from_dict({"name": "other", "stages": ["unsafe"]}, "other.yaml")
    stats = run_recipe(other, str(src), out, progress=False)
    assert stats["recipe"] == "other" and stats["rows_in"] == 20
    assert json.loads((out / "_state" / "run.json").read_text())["recipe"]["name"] == "other"


def test_a_changed_input_of_a_finished_shard_is_refused_with_what_changed(
    write_shards, tmp_path: Path
) -> None:
    src = write_shards(laion_table(20), laion_table(20))
    out = tmp_path / "out"
    run_recipe(ALL_SQL, str(src), out, progress=False)
    before = _outputs(out)
    pq.write_table(laion_table(25), src / "part-1.parquet")
    with pytest.raises(ConfigError) as info:
        run_recipe(ALL_SQL, str(src), out, progress=False)
    message = str(info.value)
    assert "part-1.parquet changed" in message and "shard 1" in message and "--overwrite" in message
    assert "\n" not in message and _outputs(out) == before
    assert run_recipe(ALL_SQL, str(src), out, progress=False, overwrite=True)["rows_in"] == 45


def test_resume_removes_what_killed_work_left(write_shards, tmp_path: Path) -> None:
    """Temp files of every writer, DuckDB's tmp_ files, spill files, unfinished shards' parts."""
    src = write_shards(laion_table(20), laion_table(20))
    out = tmp_path / "out"
    run_recipe(MIXED, str(src), out, progress=False)
    reference = _outputs(out)
    for name in ("_state/part-00001.json", "stats.json"):
        (out / name).unlink()
    junk = [
        "kept/.part-00001.parquet.k3j2.tmp",
        "kept/tmp_.part-00001.parquet.x1.tmp",
        "kept/.part-00001.verdicts.tmp",
        "dropped/.part-00001.parquet.a8.tmp",
        "kept/part-00007.parquet",  # a shard of a longer input, killed before its marker
        "_state/.part-00001.json.z9.tmp",
        "_state/.keys-1-part-00001.npy.q.tmp",
        "_state/spill/duckdb_temp_storage-0.tmp",
        ".stats.json.r5.tmp",
    ]
    for name in junk:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"junk")
    (out / "kept" / ".part-00001.parts" / "__t2i_v=0").mkdir(parents=True)
    run_recipe(MIXED, str(src), out, progress=False)
    assert _leftovers(out) == [] and _outputs(out) == reference
    assert not (out / "kept" / "part-00007.parquet").exists()


def test_cli_says_what_to_do_with_a_different_run(write_shards, tmp_path: Path, capsys) -> None:
    src = write_shards(laion_table(20))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(RECIPES["all_sql"]))
    out = tmp_path / "out"
    args = ["curate", "run", str(recipe), "--input", str(src), "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--dropped", "keys"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"t2iscope: error: {out}: holds a different run") and "--overwrite" in err
    assert "\n" not in err


def test_a_finished_shard_s_file_rewritten_at_the_same_size_is_noticed(write_shards, tmp_path: Path) -> None:
    """Path and size alone would resume over a file rewritten in place: its mtime tells."""
    src = write_shards(laion_table(20), laion_table(21))
    recipe, out = recipe_from_dict(RECIPES["all_sql"], "r.yaml"), tmp_path / "out"
    run_recipe(recipe, str(src), out, progress=False)
    for path in (out / "stats.json", out / "_state" / "part-00001.json"):  # killed in shard 1
        path.unlink()
    first = src / "part-0.parquet"
    data, stat = first.read_bytes(), first.stat()
    first.write_bytes(data)  # rewritten in place: same size, a later mtime
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(ConfigError, match=rf"{first} was rewritten after shard 0 was curated from it"):
        run_recipe(recipe, str(src), out, progress=False)
