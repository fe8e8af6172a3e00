"""``--engine ray`` gives the local engine's outputs: every shipped recipe, a model-scored download,
a killed worker, a killed driver, a silent cluster address. One local Ray (2 CPUs) per session."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from curate_rows import MIXED_RECIPE

from t2iscope.curate.download import DownloadOptions, download_run
from t2iscope.curate.operators import OPERATORS
from t2iscope.curate.recipe import builtin_names, load_recipe, recipe_from_dict
from t2iscope.curate.run import run_recipe
from t2iscope.errors import DataError
from t2iscope.ray_runtime import JOIN_SECONDS

HERE = Path(__file__).parent


@pytest.fixture
def faults() -> Iterator[None]:
    """The misbehaving stages of ray_faults, registered for one test only."""
    import ray_faults

    if not all(name in OPERATORS for name in ray_faults.NAMES):  # removed by an earlier test
        importlib.reload(ray_faults)
    yield
    for name in ray_faults.NAMES:
        OPERATORS._items.pop(name, None)


@pytest.fixture(scope="module")
def world_input(world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session world's two metadata shards and shard 0 again: dedup must look across shards."""
    folder = tmp_path_factory.mktemp("ray-input")
    parts = sorted((world_dir / "metadata").glob("*.parquet"))
    for i, part in enumerate([*parts, parts[0]]):
        shutil.copy(part, folder / f"part-{i}.parquet")
    return folder


def _counts(stats: dict) -> list[tuple]:
    return [
        (s["stage"], s["rows_in"], s["rows_out"], s["dropped"], s.get("top_fraction"))
        for s in stats["stages"]
    ]


def _same_files(a: Path, b: Path, sub: str, scores: tuple[str, ...] = ()) -> None:
    """The same part files with the same rows; ``scores`` (model outputs) equal within 1e-5:
    torch sums in another order on another thread count (a Ray worker runs 1 thread)."""
    names = sorted(p.name for p in (a / sub).glob("*.parquet"))
    assert names == sorted(p.name for p in (b / sub).glob("*.parquet")) and names
    for name in names:
        left, right = pq.read_table(a / sub / name), pq.read_table(b / sub / name)
        assert left.drop_columns(list(scores)).equals(right.drop_columns(list(scores))), f"{sub}/{name}"
        for column in scores:
            x, y = (t.column(column).to_numpy(zero_copy_only=False) for t in (left, right))
            np.testing.assert_allclose(x, y, atol=1e-5, err_msg=f"{sub}/{name}: {column}")


@pytest.mark.parametrize("name", builtin_names())
def test_every_shipped_recipe_gives_the_same_run(
    ray_cluster: Any, world_input: Path, tmp_path: Path, name: str
) -> None:
    recipe = load_recipe(name)
    local = run_recipe(recipe, str(world_input), tmp_path / "local", progress=False)
    on_ray = run_recipe(recipe, str(world_input), tmp_path / "ray", progress=False, engine="ray")
    assert on_ray["engine"] == "ray" and local["engine"] == "local"
    assert _counts(on_ray) == _counts(local) and on_ray["languages"] == local["languages"]
    assert (on_ray["rows_in"], on_ray["rows_out"]) == (local["rows_in"], local["rows_out"])
    for sub in ("kept", "dropped"):
        _same_files(tmp_path / "local", tmp_path / "ray", sub)
    if any(s.name == "dedup" for s in recipe.stages):  # shard 2 repeats shard 0
        dedup = next(s for s in on_ray["stages"] if s["stage"] == "dedup")
        assert sum(dedup["dropped"].values()) > 0
    state = tmp_path / "ray" / "_state"
    left = {p.relative_to(state).as_posix() for p in state.rglob("*")}
    assert left == {"run.json", *(f"part-{i:05d}.json" for i in range(3))} | (
        {"cutoffs.json"} if any(s.get("top_fraction") for s in on_ray["stages"]) else set()
    )


def test_a_killed_worker_loses_and_duplicates_nothing(
    ray_cluster: Any, world_input: Path, tmp_path: Path, faults: None
) -> None:
    flag = tmp_path / "died"
    dying = recipe_from_dict(
        {
            **MIXED_RECIPE.to_dict(),
            "stages": [*MIXED_RECIPE.to_dict()["stages"], {"die_once": {"flag": str(flag)}}],
        },
        "dying.yaml",
    )
    reference = run_recipe(MIXED_RECIPE, str(world_input), tmp_path / "local", progress=False)
    stats = run_recipe(dying, str(world_input), tmp_path / "ray", progress=False, engine="ray")
    assert flag.exists()  # a worker did die, and its shard ran again
    assert _counts(stats)[:-1] == _counts(reference)
    for sub in ("kept", "dropped"):
        _same_files(tmp_path / "local", tmp_path / "ray", sub)
    kept, dropped = pq.read_table(tmp_path / "ray" / "kept"), pq.read_table(tmp_path / "ray" / "dropped")
    assert kept.num_rows + dropped.num_rows == stats["rows_in"] == 600
    assert not [p for p in (tmp_path / "ray").rglob("*") if p.name.endswith(".tmp")]


def test_a_rerun_after_the_driver_is_killed_resumes(
    ray_cluster: Any, world_input: Path, tmp_path: Path, faults: None
) -> None:
    slow = {
        **MIXED_RECIPE.to_dict(),
        "stages": [*MIXED_RECIPE.to_dict()["stages"], {"pause": {"seconds": 3.0}}],
    }
    recipe_file = tmp_path / "slow.yaml"
    recipe_file.write_text(json.dumps(slow))
    out = tmp_path / "ray"
    address = ray_cluster.get_runtime_context().gcs_address
    driver = (
        "import sys; sys.path.insert(0, sys.argv[1]); import ray_faults\n"
        "from t2iscope.curate.recipe import load_recipe\nfrom t2iscope.curate.run import run_recipe\n"
        "run_recipe(load_recipe(sys.argv[2]), sys.argv[3], sys.argv[4], progress=False, engine='ray', "
        "address=sys.argv[5], workers=1)\n"
    )
    args = [sys.executable, "-c", driver, str(HERE), str(recipe_file), str(world_input), str(out), address]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not list((out / "_state").glob("part-*.json")):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            assert time.monotonic() < deadline, "no shard finished in 90 s"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # the kill left the run unfinished: some shards done, not all, no stats.json
    markers = {p: p.stat().st_mtime_ns for p in (out / "_state").glob("part-*.json")}
    assert len(markers) < len(list(world_input.glob("*.parquet"))) and not (out / "stats.json").exists()
    stats = run_recipe(load_recipe(str(recipe_file)), str(world_input), out, progress=False, engine="ray")
    # the rerun resumed: the finished shards' markers were kept, not rewritten by a redo
    assert {p: p.stat().st_mtime_ns for p in markers} == markers
    reference = run_recipe(MIXED_RECIPE, str(world_input), tmp_path / "local", progress=False)
    assert _counts(stats)[:-1] == _counts(reference)
    for sub in ("kept", "dropped"):
        _same_files(tmp_path / "local", out, sub)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "t2iscope.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_a_silent_address_is_one_line_within_15_seconds(world_input: Path, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    done = _cli(
        "curate", "run", "laion2b-en", "--input", str(world_input), "--out", str(tmp_path / "r"),
        "--engine", "ray", "--address", f"127.0.0.1:{port}",
    )  # fmt: skip
    assert time.monotonic() - start < 15
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"t2iscope: error: --address 127.0.0.1:{port}: no Ray cluster answers at 127.0.0.1:{port} "
        "(Connection refused)"
    ]
    assert not (tmp_path / "r").exists()


def test_a_port_that_is_not_ray_is_refused_quietly_within_15_seconds(
    world_input: Path, tmp_path: Path
) -> None:
    """A port that accepts connections but is not Ray: Ray's retries, cut at JOIN_SECONDS, and its
    own warnings kept off (QA saw 14 lines of them and 16 s); the C++ core's one line about the
    GCS connection comes before Ray reads its log level, so at most that one precedes ours."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        start = time.monotonic()
        done = _cli(
            "curate", "run", "laion2b-en", "--input", str(world_input), "--out", str(tmp_path / "r"),
            "--engine", "ray", "--address", f"127.0.0.1:{port}",
        )  # fmt: skip
        seconds = time.monotonic() - start
    lines = done.stderr.strip().splitlines()
    assert seconds < 15 and done.returncode == 2 and len(lines) <= 2, (seconds, lines)
    assert lines[-1] == (
        f"t2iscope: error: --address 127.0.0.1:{port}: no Ray cluster answered within {JOIN_SECONDS:.0f} s"
    )
    assert not (tmp_path / "r").exists()


def test_without_ray_the_engine_names_the_install(world_input: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "noray"
    blocker.mkdir()
    (blocker / "ray.py").write_text("raise ImportError('ray is not installed here')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    done = _cli(
        "curate", "run", "laion2b-en", "--input", str(world_input), "--out", str(tmp_path / "r"),
        "--engine", "ray", env=env,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "t2iscope: error: --engine ray needs Ray, which is not installed: pip install 't2iscope[ray]'"
    )


MODEL_RECIPE = recipe_from_dict(
    {
        "name": "scored-download",
        "stages": [{"unsafe": {"max_score": 0.5}}],
        "post_download": [
            {"aesthetic": {"source": "model", "min_score": 4.0}},
            {"watermark": {"source": "model", "max_score": 0.5}},
            {"resolution": {"min_side": 200}},
            {"dedup": {"by": "image"}},
        ],
    },
    "scored-download.yaml",
)


def test_a_model_scored_download_is_the_same_on_ray(
    ray_cluster: Any, world_dir: Path, world_server: Any, tmp_path: Path
) -> None:
    """img2dataset's Ray distributor fetches; the model stages score in actor pools; then the same
    images through the local engine (a rerun after status.parquet redoes only the post-download
    stages) give the same files. Two downloads could differ: timeouts depend on the load."""
    run_recipe(MODEL_RECIPE, str(world_dir), tmp_path / "run", progress=False)
    options = DownloadOptions(timeout=2, threads=8, via=world_server.url, rows_per_shard=100)
    on_ray = download_run(tmp_path / "run", tmp_path / "ray", options, progress=False, engine="ray")
    status = pq.read_table(tmp_path / "ray" / "status.parquet")
    assert status.num_rows == on_ray["rows"] and on_ray["success"] > 0
    assert len(list((tmp_path / "ray" / "images" / "attempt-1").glob("[0-9]*.tar"))) == 4
    local = tmp_path / "local"
    shutil.copytree(tmp_path / "ray", local)
    for sub in ("kept", "dropped", "_state/post"):
        shutil.rmtree(local / sub)
    (local / "stats.json").unlink()
    again = download_run(tmp_path / "run", local, options, progress=False)
    assert _counts(on_ray["post_download"]) == _counts(again["post_download"])
    for sub in ("kept", "dropped"):
        _same_files(local, tmp_path / "ray", sub, scores=("aesthetic_score", "watermark_score"))
    dropped = pq.read_table(tmp_path / "ray" / "dropped")
    assert {"aesthetic", "watermark"} <= set(dropped.column("stage").to_pylist())
    scored = list((tmp_path / "ray" / "_state" / "post").glob("scores-*.parquet"))
    assert len(scored) == 2 * 4  # each model stage scored each img2dataset shard once, in an actor


def _corrupt_copy(world_input: Path, folder: Path) -> Path:
    """``world_input`` with part-1's first TEXT data page overwritten: the footer still reads, the
    rows do not (a file cut short on upload, the kind QA found)."""
    shutil.copytree(world_input, folder)
    part = folder / "part-1.parquet"
    column = pq.ParquetFile(part).schema_arrow.get_field_index("TEXT")
    chunk = pq.ParquetFile(part).metadata.row_group(0).column(column)
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    data = bytearray(part.read_bytes())
    data[start : start + 64] = b"\xff" * 64
    part.write_bytes(bytes(data))
    return folder


PLAIN_RECIPE = recipe_from_dict(
    {"name": "plain", "stages": [{"resolution": {"min_side": 300}}]}, "plain.yaml"
)


@pytest.mark.parametrize("recipe", [PLAIN_RECIPE, MIXED_RECIPE], ids=["shard-pass", "key-pass"])
def test_a_corrupt_page_is_the_local_one_line(
    ray_cluster: Any, world_input: Path, tmp_path: Path, recipe: Any
) -> None:
    """Read in a Ray task (the shard pass; the dedup key pass first when there is one), the bad
    page is the local engine's DataError, not Ray's wrapping of it."""
    bad = _corrupt_copy(world_input, tmp_path / "in")
    with pytest.raises(DataError) as local:
        run_recipe(recipe, str(bad), tmp_path / "local", progress=False)
    with pytest.raises(DataError) as on_ray:
        run_recipe(recipe, str(bad), tmp_path / "ray", progress=False, engine="ray")
    assert type(on_ray.value) is DataError and "part-1.parquet: cannot read as parquet" in str(local.value)
    assert str(on_ray.value) == str(local.value)


def test_a_run_resumes_under_the_other_engine(ray_cluster: Any, world_input: Path, tmp_path: Path) -> None:
    """Shard 1 unfinished (its marker and stats.json gone, as a kill leaves it): the other engine
    finishes it, either way round, with the outputs of an uninterrupted run."""
    recipe = load_recipe("laion2b-en")
    run_recipe(recipe, str(world_input), tmp_path / "whole", progress=False)
    for first, then in (("ray", "local"), ("local", "ray")):
        out = tmp_path / first
        run_recipe(recipe, str(world_input), out, progress=False, engine=first)
        (out / "_state" / "part-00001.json").unlink()
        (out / "stats.json").unlink()
        stats = run_recipe(recipe, str(world_input), out, progress=False, engine=then)
        assert stats["engine"] == then
        for sub in ("kept", "dropped"):
            _same_files(tmp_path / "whole", out, sub)


def test_download_of_an_unfinished_run_says_so(world_input: Path, tmp_path: Path) -> None:
    run_recipe(MIXED_RECIPE, str(world_input), tmp_path / "run", progress=False)
    (tmp_path / "run" / "stats.json").unlink()  # killed before its last write
    (tmp_path / "run" / "recipe.resolved.yaml").unlink()
    with pytest.raises(DataError) as error:
        download_run(tmp_path / "run", tmp_path / "images", DownloadOptions(), progress=False)
    assert str(error.value) == (
        f"{tmp_path / 'run'}: the curation run is not finished (no stats.json); rerun curate run"
    )
