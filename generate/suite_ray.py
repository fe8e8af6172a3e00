"""Prompt suites on Ray (``generate suite --engine ray``): the local run's batches, spread over actors.

The driver plans exactly as the local run does (``run_suite.plan_run``: same jobs, same rows kept,
the pending jobs cut into the same batches), then hands whole batches, grouped into shards, to
Ray actors that each load the model once (one GPU each when the cluster has GPUs, else a share of
a node's CPUs) and call the local run's own ``generate_batch``. Because every image is made in
the batch the local run would make it in, from the same seed, the images and manifest rows are
the local run's (on CPU, float sums depend on the thread count: a worker with N CPUs runs N torch
threads and matches a local run with N threads bit for bit).

A worker writes each batch's images atomically, then its shard's manifest part
(``OUT/.parts/<run>-<shard>.parquet``) with the batch's rows, so a part names only complete images.
A worker killed mid-shard is restarted by Ray (``max_restarts``) and the shard retried
(``max_task_retries``): it skips the batches already in its part and redoes the rest. The driver
merges the kept rows and every part into ``manifest.parquet`` in grid order at the end; a driver
killed before that leaves the parts, which the next run of either engine folds in first. The
driver holds OUT's lock throughout, as the local run does. This is img2dataset's scheme
(distributor.py: shards handed to Ray workers, per-shard outputs, ``incremental_mode`` resume)
with Ray's actor restarts in place of its retry loop.

OUT and the model must be on a file system that every node sees: each worker checks that the lock
file it reads in OUT is the driver's before it writes anything.
"""

from __future__ import annotations

import collections
import itertools
import os
import signal
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from t2iscope.errors import ConfigError, DataError, T2IError
from t2iscope.generate.output import OutputOptions
from t2iscope.generate.run_suite import (
    MANIFEST,
    PARTS,
    RunSummary,
    check_run,
    generate_batch,
    plan_run,
    read_parts,
    read_rows,
    remove_parts,
    start_generation,
    write_manifest,
    write_part,
)
from t2iscope.generate.suites import Job, Suite
from t2iscope.locks import LOCK_NAME, output_lock
from t2iscope.ray_runtime import connect

DEVICES = ("auto", "cpu", "cuda")
# Ray restarts a dead worker and retries its shard this many times before the run stops (a rerun
# resumes); a worker that dies every time (out of memory on each batch) must not loop forever.
MAX_RESTARTS = 3
SHARDS_PER_WORKER = 4  # more shards than workers: a slow worker holds up at most a quarter of its share
# Fault injection for the tests: a path. The first worker to have made the images of its second
# batch while no file is there creates it and kills itself (SIGKILL) before recording that batch.
KILL_ONCE_ENV = "T2ISCOPE_SUITE_RAY_KILL_ONCE"


@dataclass(frozen=True)
class ModelSource:
    """How every worker loads the model: ``load_model``'s arguments, paths absolute (workers' cwd differs)."""

    path: str | None = None
    device: str = "auto"
    config: str | None = None
    compile_unet: bool = False
    lora_dir: str | None = None
    embeddings_dir: str | None = None

    @classmethod
    def of(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        device: str = "auto",
        config: str | os.PathLike[str] | None = None,
        compile_unet: bool = False,
        lora_dir: str | os.PathLike[str] | None = None,
        embeddings_dir: str | os.PathLike[str] | None = None,
    ) -> ModelSource:
        """The source with its paths made absolute (``config`` too when it names a folder, not a family)."""

        def absolute(value: str | os.PathLike[str] | None) -> str | None:
            return None if value is None else os.path.abspath(value)

        folder = config is not None and Path(config).exists()
        family = None if config is None else str(config)
        return cls(
            absolute(path),
            device,
            absolute(config) if folder else family,
            compile_unet,
            absolute(lora_dir),
            absolute(embeddings_dir),
        )


@dataclass(frozen=True)
class Shard:
    """Consecutive batches of the plan, run by one worker; ``id`` names its manifest part."""

    id: str
    batches: list[list[Job]]


@dataclass(frozen=True)
class Placement:
    """``workers`` actors on ``device`` ("cpu" or "cuda"), each with ``cpus`` CPUs (its torch threads)."""

    workers: int
    device: str
    cpus: int

    @property
    def options(self) -> dict[str, Any]:
        gpus = 1 if self.device == "cuda" else 0
        return {"num_cpus": self.cpus, "num_gpus": gpus}


def cpus_per_worker(node_cpus: list[int], workers: int) -> int:
    """The most CPUs each of ``workers`` actors can have so that all of them fit on the nodes.

    ``node_cpus``: the CPU count of each live node. Raises ConfigError when the cluster has fewer
    CPUs than workers.
    """
    best = max(node_cpus, default=0)
    while best >= 1 and sum(n // best for n in node_cpus) < workers:
        best -= 1
    if best < 1:
        raise ConfigError(f"--workers {workers}: the Ray cluster has only {sum(node_cpus)} CPUs")
    return best


def place(ray: Any, workers: int | None, device: str) -> Placement:
    """Where the actors go: one GPU each when the cluster has GPUs (or ``device`` is cuda), else CPUs.

    ``workers`` None: one per GPU, or on a CPU-only cluster one per node with all its CPUs (on one
    machine that is the local run's thread count, hence its images bit for bit). Raises
    ConfigError for a bad device or worker count, or cuda on a cluster without GPUs.
    """
    if device not in DEVICES:
        raise ConfigError(f"--device must be one of {', '.join(DEVICES)} with --engine ray, got {device!r}")
    if workers is not None and not (isinstance(workers, int) and workers >= 1):
        raise ConfigError(f"--workers must be an integer >= 1, got {workers!r}")
    gpus = int(ray.cluster_resources().get("GPU", 0))
    if device == "cuda" or (device == "auto" and gpus):
        if not gpus:
            raise ConfigError("--device cuda: the Ray cluster has no GPUs")
        if (workers or gpus) > gpus:
            raise ConfigError(f"--workers {workers}: the Ray cluster has {gpus} GPUs (one per worker)")
        return Placement(workers or gpus, "cuda", 1)
    node_cpus = [int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n["Alive"]]
    count = workers or len(node_cpus)
    return Placement(count, "cpu", cpus_per_worker(node_cpus, count))


def shard_batches(batches: list[list[Job]], workers: int, run_id: str) -> list[Shard]:
    """Cut the plan's batches, in order, into about ``SHARDS_PER_WORKER`` shards per worker."""
    count = min(len(batches), workers * SHARDS_PER_WORKER)
    bounds = [round(i * len(batches) / count) for i in range(count + 1)]
    return [Shard(f"{run_id}-{i:05d}", batches[a:b]) for i, (a, b) in enumerate(itertools.pairwise(bounds))]


class SuiteWorker:
    """A Ray actor: loads the model once, then runs shards into OUT (``ray.remote(SuiteWorker)``)."""

    def __init__(
        self, source: ModelSource, placement: Placement, out: str, output: OutputOptions, lock_text: str
    ) -> None:
        self.out, self.output, self.error = Path(out), output, None
        self.model: Any = None
        self.batches_done = 0
        lock = self.out / LOCK_NAME
        try:
            seen = lock.read_text(encoding="utf-8") if lock.is_file() else ""
        except OSError:
            seen = ""
        if seen != lock_text:  # not the driver's folder: another machine's disk, not a shared one
            self.error = (
                f"{out}: not the driver's folder on Ray node {socket.gethostname()}; "
                "--out must be on a file system every node sees"
            )
            return
        import torch

        from t2iscope.generate.models import load_model

        if placement.device == "cpu":
            torch.set_num_threads(placement.cpus)  # float sums follow the thread count (module docstring)
        try:
            self.model = load_model(
                source.path,
                device=placement.device,
                config=source.config,
                compile_unet=source.compile_unet,
                lora_dir=source.lora_dir,
                embeddings_dir=source.embeddings_dir,
            )
        except T2IError as exc:  # reported by info(): one line at the driver
            self.error = str(exc)

    def info(self) -> tuple[str | None, str | None, int | None]:
        """(error or None, model id, native image side in pixels)."""
        if self.model is None:
            return self.error, None, None
        return None, self.model.model_id, self.model.native_size

    def run(self, shard: Shard) -> int:
        """Generate the shard's batches not yet in its part; returns the number of images made."""
        part = self.out / PARTS / f"{shard.id}.parquet"
        rows = read_rows(part) if part.is_file() else {}  # a retry after this worker was killed
        made = 0
        for batch in shard.batches:
            if all(job.key in rows and (self.out / job.image_path).is_file() for job in batch):
                continue
            for row in generate_batch(self.model, batch, self.out, self.output):
                rows[row["key"]] = row
            self._kill_once()
            write_part(part, list(rows.values()))
            made += len(batch)
            self.batches_done += 1
        return made

    def _kill_once(self) -> None:
        marker = os.environ.get(KILL_ONCE_ENV)
        if not marker or self.batches_done < 1:
            return
        try:
            Path(marker).open("x").close()
        except FileExistsError:
            return
        os.kill(os.getpid(), signal.SIGKILL)


def _one_line(exc: BaseException, out: Path, shard: Shard | None = None) -> T2IError:
    """A Ray error as the project's one-line error: the worker's own T2IError when it raised one."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, T2IError):
        return type(cause)(str(cause))
    where = f" on shard {shard.id}" if shard else ""
    reason = (str(cause or exc).strip().splitlines() or [type(exc).__name__])[-1]
    return DataError(f"{out}: a Ray worker failed{where} ({reason}); rerun the same command to resume")


def run_suite_ray(
    suite: Suite,
    out: str | Path,
    source: ModelSource | None = None,
    *,
    address: str | None = None,
    workers: int | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    output: OutputOptions | None = None,
    cli: bool = False,
) -> RunSummary:
    """``run_suite`` on Ray: the same rows and images in ``out``, made by ``workers`` actors.

    ``address``: None starts a local Ray, else the cluster to join (``ray_runtime.connect``).
    ``workers``: actors, default one per GPU or one per CPU node (:func:`place`). ``limit``,
    ``batch_size`` and ``output`` as in ``run_suite``. Raises ConfigError for bad options, a
    missing Ray, an address that does not answer, a folder in use or of another suite/model, and a
    worker that cannot load the model or see OUT; DataError when a worker still fails after
    ``MAX_RESTARTS`` restarts (the finished batches stay; a rerun resumes).
    """
    from t2iscope.generate.models import model_id_for

    # 1. Check options, then Ray and where the actors go, all before the folder is touched
    source = source or ModelSource()
    out, count, output = check_run(suite, out, limit, batch_size, output, cli)
    out = Path(os.path.abspath(out))
    ray = connect(address)
    placement = place(ray, workers, source.device)
    model_id = model_id_for(source.path)
    with output_lock(out):
        # 2. Plan as the local run does (parts of an interrupted run folded in first)
        plan = plan_run(suite, out, count, batch_size, output, model_id)
        total = len(plan.jobs)
        if not plan.batches:
            return RunSummary(total, total, 0, out / MANIFEST)
        # 3. Start the workers; each loads the model once and checks it sees this folder
        lock_text = (out / LOCK_NAME).read_text(encoding="utf-8")
        retries = {"max_restarts": MAX_RESTARTS, "max_task_retries": MAX_RESTARTS}
        env = {KILL_ONCE_ENV: os.environ[KILL_ONCE_ENV]} if KILL_ONCE_ENV in os.environ else {}
        actor = ray.remote(SuiteWorker).options(
            **placement.options, **retries, **({"runtime_env": {"env_vars": env}} if env else {})
        )
        actors = [
            actor.remote(source, placement, str(out), output, lock_text) for _ in range(placement.workers)
        ]
        try:
            try:
                infos = ray.get([a.info.remote() for a in actors])
            except ray.exceptions.RayError as exc:
                raise _one_line(exc, out) from None
            for error, _, _ in infos:
                if error:
                    raise ConfigError(error)
            (_, loaded_id, native_size), *_ = infos
            start_generation(suite, out, plan.rows, loaded_id or model_id, native_size or 0, output, cli)
            # 4. Shards to free workers until none is left
            shards = collections.deque(shard_batches(plan.batches, len(actors), uuid.uuid4().hex[:8]))
            running: dict[Any, tuple[Any, Shard]] = {}

            def submit(worker: Any) -> None:
                if shards:
                    shard = shards.popleft()
                    running[worker.run.remote(shard)] = (worker, shard)

            for worker in actors:
                submit(worker)
            with tqdm(total=plan.pending, desc=f"suite {suite.name} (ray)", unit="img") as bar:
                while running:
                    (ref,), _ = ray.wait(list(running), num_returns=1)
                    worker, shard = running.pop(ref)
                    try:
                        ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        raise _one_line(exc, out, shard) from None
                    bar.update(sum(map(len, shard.batches)))
                    submit(worker)
        finally:
            for a in actors:
                ray.kill(a)
        # 5. Merge: the kept rows and every part, in grid order, then the parts go
        rows = {**plan.rows, **read_parts(out)}
        missing = [job.key for batch in plan.batches for job in batch if job.key not in rows]
        if missing:  # every shard returned, so this is a bug, not a fault to resume from
            raise DataError(f"{out}: the Ray workers left {len(missing)} images unrecorded ({missing[0]})")
        write_manifest(out, rows, plan.order)
        remove_parts(out)
    return RunSummary(total, total - plan.pending, plan.pending, out / MANIFEST)
