"""`generate suite --engine ray`: the local run's rows and image bytes, through a killed worker and a
killed driver, on the embedded model and one local Ray (2 CPUs) started for the session."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from t2iscope.cli import main
from t2iscope.errors import ConfigError
from t2iscope.generate.models import Model
from t2iscope.generate.output import OutputOptions
from t2iscope.generate.run_suite import MANIFEST, PARTS, read_parts, run_suite
from t2iscope.generate.suite_ray import (
    KILL_ONCE_ENV,
    ModelSource,
    Placement,
    SuiteWorker,
    cpus_per_worker,
    place,
    run_suite_ray,
    shard_batches,
)
from t2iscope.generate.suites import expand, load_suite
from t2iscope.locks import output_lock
from t2iscope.paths import REPO_ROOT

TIMING = ["elapsed_s"]  # the only column that differs between two runs: seconds measured per image
CPU = ModelSource(device="cpu")


@pytest.fixture(scope="module")
def suite_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The shipped `neutral` suite at 2 steps (the grid and prompts as shipped), so a test takes seconds."""
    data = yaml.safe_load((REPO_ROOT / "generate" / "suites" / "neutral.yaml").read_text(encoding="utf-8"))
    data["defaults"]["steps"] = 2
    path = tmp_path_factory.mktemp("suite") / "neutral.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    """torch's CPU threads for the block: float sums, hence pixels, follow the thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _local(suite_path: str, out: Path, model: Model, threads: int, **kw: Any) -> pa.Table:
    with _threads(threads):
        run_suite(load_suite(suite_path), out, model, **kw)
    return pq.read_table(out / MANIFEST)


def _assert_same_run(local: Path, ray: Path) -> None:
    """Same manifest rows in the same order (but timing), the same PNG bytes, nothing left over."""
    expected, got = pq.read_table(local / MANIFEST), pq.read_table(ray / MANIFEST)
    assert got.schema == expected.schema
    assert got.drop(TIMING).to_pylist() == expected.drop(TIMING).to_pylist()
    keys = got.column("key").to_pylist()
    assert len(set(keys)) == len(keys)  # every image exactly once
    for path in got.column("image_path").to_pylist():
        assert (ray / path).read_bytes() == (local / path).read_bytes(), path
    assert sorted(p.relative_to(ray) for p in ray.rglob("*.png")) == sorted(
        p.relative_to(local) for p in local.rglob("*.png")
    )
    assert not (ray / PARTS).exists() and not list(ray.glob("**/.*.tmp"))


def _wait(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_ray_run_equals_the_local_run_with_a_worker_killed_mid_run(
    ray_cluster, suite_path, tmp_path, embedded_model, monkeypatch
):
    # 2 workers on 2 CPUs: one torch thread each, so the local run runs on one thread too
    assert place(ray_cluster, 2, "cpu") == Placement(2, "cpu", 1)
    # Tree-Ring: the workers write the key into each image's starting noise as the local run does
    # (the driver-kill test below keeps the default pixel watermark)
    output = OutputOptions(watermark="treering")
    _local(suite_path, tmp_path / "local", embedded_model, 1, limit=12, batch_size=4, output=output)
    # 3 batches over 2 workers: one runs two, and is killed after its second batch's images,
    # before their rows; Ray restarts it and the shard's retry redoes that batch
    marker = tmp_path / "killed"
    monkeypatch.setenv(KILL_ONCE_ENV, str(marker))
    summary = run_suite_ray(
        load_suite(suite_path), tmp_path / "ray", CPU, workers=2, limit=12, batch_size=4, output=output
    )
    assert marker.exists(), "no worker was killed"
    assert (summary.total, summary.generated, summary.skipped) == (12, 12, 0)
    _assert_same_run(tmp_path / "local", tmp_path / "ray")
    assert set(pq.read_table(tmp_path / "ray" / MANIFEST).column("watermark_method").to_pylist()) == {
        "treering"
    }


def test_rerun_after_the_driver_is_killed_resumes_from_its_parts(
    ray_cluster, suite_path, tmp_path, embedded_model
):
    out = tmp_path / "ray"
    cmd = [sys.executable, "-m", "t2iscope.cli", "generate", "suite", suite_path, "--out", str(out)]
    cmd += ["--engine", "ray", "--address", ray_cluster.get_runtime_context().gcs_address]
    cmd += ["--workers", "1", "--limit", "12", "--batch-size", "1", "--device", "cpu"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: ((out / PARTS).is_dir() and read_parts(out)) or proc.poll() is not None, 240, "a part")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before its driver could be killed"
    # the dead driver's worker goes with it: its 2 CPUs come back
    _wait(lambda: ray_cluster.available_resources().get("CPU", 0) == 2, 60, "the worker to end")
    assert not (out / MANIFEST).exists()  # the driver merges at the end: only its parts hold rows
    parts = read_parts(out)
    assert parts and all((out / row["image_path"]).is_file() for row in parts.values())
    # 1 worker with both CPUs: 2 threads, as the local run; batches of 1 do not depend on the resume
    summary = run_suite_ray(load_suite(suite_path), out, CPU, workers=1, limit=12, batch_size=1)
    assert summary.skipped >= len(parts) and summary.skipped + summary.generated == 12
    _local(suite_path, tmp_path / "local", embedded_model, 2, limit=12, batch_size=1)
    _assert_same_run(tmp_path / "local", out)
    # and a local rerun finds it done
    with _threads(2):
        again = run_suite(load_suite(suite_path), out, lambda: pytest.fail("model loaded"), limit=12)
    assert (again.generated, again.skipped) == (0, 12)


def test_folder_in_use_and_bad_worker_counts_are_refused_before_any_worker(ray_cluster, suite_path, tmp_path):
    suite = load_suite(suite_path)
    with output_lock(tmp_path / "busy"), pytest.raises(ConfigError, match="in use by pid"):
        run_suite_ray(suite, tmp_path / "busy", CPU, limit=1)
    with pytest.raises(ConfigError, match="--workers 3: the Ray cluster has only 2 CPUs"):
        run_suite_ray(suite, tmp_path / "o", CPU, workers=3, limit=1)
    with pytest.raises(ConfigError, match="--device cuda: the Ray cluster has no GPUs"):
        run_suite_ray(suite, tmp_path / "o", ModelSource(device="cuda"), limit=1)
    assert not (tmp_path / "o").exists()


def test_placement_and_shards():
    assert cpus_per_worker([2], 1) == 2 and cpus_per_worker([2], 2) == 1
    assert cpus_per_worker([8, 2], 2) == 4  # 4 + 4 fit on the 8-CPU node; 5 would not fit twice
    assert cpus_per_worker([8, 4], 3) == 4
    with pytest.raises(ConfigError, match="only 10 CPUs"):
        cpus_per_worker([8, 2], 11)
    jobs = list(expand(load_suite("neutral")))[:10]
    batches = [jobs[i : i + 3] for i in range(0, 10, 3)]  # 4 batches
    shards = shard_batches(batches, 1, "r")
    assert [s.id for s in shards] == ["r-00000", "r-00001", "r-00002", "r-00003"]
    assert [b for s in shards for b in s.batches] == batches  # every batch once, in order
    many = shard_batches(batches * 10, 2, "r")
    assert len(many) == 8 and sorted(len(s.batches) for s in many) == [5] * 8


def test_cli_without_ray_prints_the_install_command(capsys, tmp_path, monkeypatch, suite_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code = main(["generate", "suite", suite_path, "--out", str(tmp_path / "o"), "--engine", "ray"])
    err = capsys.readouterr().err
    assert (code, err.count("\n")) == (2, 1) and "pip install 't2iscope[ray]'" in err, err
    assert not (tmp_path / "o").exists()
    code = main(["generate", "suite", suite_path, "--out", str(tmp_path / "o"), "--workers", "2"])
    assert code == 2 and "--workers goes with --engine ray" in capsys.readouterr().err


def test_cli_silent_address_is_one_line_within_15_seconds(tmp_path, suite_path):
    # a fresh process: this one has Ray running already, which connect() would reuse
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free, and nothing listens on it once closed
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "t2iscope.cli", "generate", "suite", suite_path, "--out", str(out)]
    cmd += ["--engine", "ray", "--address", f"127.0.0.1:{port}"]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert time.monotonic() - start < 25  # 15 s (issue 18) + up to 10 s to import torch on a busy machine
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"no Ray cluster answers at 127.0.0.1:{port}" in proc.stderr
    assert not out.exists()


def test_a_worker_that_does_not_see_the_drivers_folder_refuses_before_loading(tmp_path):
    # a node whose --out is its own local disk: the lock file there is not the driver's
    with output_lock(tmp_path / "o") as out:
        worker = SuiteWorker(CPU, Placement(1, "cpu", 1), str(out), OutputOptions(), "pid 1 (elsewhere)\n")
    error, model_id, _ = worker.info()
    assert model_id is None and worker.model is None
    assert error is not None and "--out must be on a file system every node sees" in error
