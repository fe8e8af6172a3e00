"""The ``ray`` engine: ``curate run`` over a Ray cluster through Ray Data, with the local engine's outputs.

Each input shard stays the unit of work, output and resume, as on one machine. Ray Data runs
the same plan (``plan.ShardPlan``) with the same code (``LocalEngine.execute``) inside its
tasks: a dataset with one row per shard goes through ``map_batches`` (one shard per call, a
one-thread DuckDB per task; Ray Data runs a task again when its worker dies), and each task writes the shard's
``kept/`` and ``dropped/`` parts atomically, then its marker ``_state/part-NNNNN.json`` (its
``Tally``). So the files, rows, reasons and ``stats.json`` counts are those of ``--engine
local``, and a rerun after the driver was killed resumes from the finished shards (run.py's
resume rules). Workers read the inputs and write the run folder themselves: on a cluster both
must be on storage every node mounts at the same path (or fsspec URLs for the input).

Stateful stages (``dedup``) must judge every row as an uninterrupted one-machine run does: a
row is a duplicate when a row before it (shard order, then row order) reaching the stage had
its key. Per-worker sets would miss duplicates in other workers' shards, so a two-phase key
pass runs first (the design of Data-Juicer's and NeMo Curator's Ray dedup: compute keys, shuffle
by key, mark all but the first): 1. each shard's rows that reach the stage (``LocalEngine.probe``)
give ``(key, shard, position)``; 2. a shuffle by key bucket (``groupby(bucket).map_groups``, each
bucket sorted with numpy) marks every occurrence after the first; 3. a shuffle by shard writes
each shard's duplicate positions (``_state/ray/dups-<stage>-part-NNNNN.npy``), which the shard's
task hands to the stage (``dedup.KnownDuplicates``). Every later stateful stage repeats the pass
with the earlier ones' verdicts known. Top-fraction cutoffs are computed before, on the driver
(one DuckDB quantile over the score column of every input, as run.py does for the local engine).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from t2iscope.curate.engine_local import LocalEngine, metadata_contexts
from t2iscope.curate.operators import CUTOFF, OPERATORS, PIXELS, StageContext, load_all
from t2iscope.curate.operators.dedup import STATE, KnownDuplicates
from t2iscope.curate.operators.model_score import DEVICE_ENV, resolve_source
from t2iscope.curate.readers import InputShard
from t2iscope.curate.recipe import Recipe, Stage
from t2iscope.errors import ConfigError, T2IError
from t2iscope.fileio import write_bytes, write_json

RAY_STATE = "ray"  # _state/ray: the key pass's duplicate positions, rebuilt by every run
# Ray Data's sort-based shuffle for the key pass: its default hash shuffle starts aggregator
# actors, ~12 s of a 13 s key pass on 2 cores (bench/bench_engine.py), where the sort-based one
# takes ~1 s. Past this many shards the hash shuffle's scaling wins; Ray's default is kept.
SORT_SHUFFLE_SHARDS = 1000
# Rows per key bucket of the shuffle (at most): one bucket is sorted in one worker's memory,
# 16 bytes a row (key, shard, position), so 32 M rows is ~0.5 GB.
BUCKET_ROWS = 32_000_000
_KEYS = pa.schema([("key", pa.int64()), ("shard", pa.int32()), ("pos", pa.int64()), ("bucket", pa.int32())])


@dataclass(frozen=True)
class ShardJob:
    """What every Ray task needs to curate shards of one run: pickled once per task.

    ``cutoffs`` maps a top-fraction stage's index to its cutoff over the whole input;
    ``modules`` are the modules that registered the recipe's operators (a user's own operator
    module too), imported by each worker before it looks the stages up.
    """

    recipe: Recipe
    shards: tuple[InputShard, ...]
    out: str
    input_spec: str
    batch_rows: int
    memory_limit: str
    spill: str
    cutoffs: tuple[tuple[int, float | None], ...]
    modules: tuple[str, ...]

    def engine(self, index: int) -> LocalEngine:
        """A one-thread local engine for shard ``index``, spilling to its own folder."""
        for module in self.modules:
            importlib.import_module(module)
        load_all()
        spill = Path(self.spill) / f"shard-{index:05d}"
        spill.mkdir(parents=True, exist_ok=True)
        return LocalEngine(self.batch_rows, 1, self.input_spec, self.recipe.dropped, self.memory_limit, spill)

    def contexts(self, index: int, before: int | None = None) -> list[StageContext]:
        """Stage contexts for shard ``index``: the cutoffs, and each stateful stage (before
        recipe index ``before``) knowing its duplicate positions in this shard."""
        contexts = metadata_contexts(self.recipe.stages)
        for i, cutoff in self.cutoffs:
            contexts[i].state[CUTOFF] = cutoff
        for i, stage in enumerate(self.recipe.stages):
            if stage.op.stateful and (before is None or i < before):
                path = _dups_path(Path(self.out), i, index)
                positions = np.load(path) if path.exists() else np.zeros(0, np.int64)
                contexts[i].state[STATE] = KnownDuplicates(contexts[i], positions)
        return contexts


def _dups_path(out: Path, stage: int, index: int) -> Path:
    return out / "_state" / RAY_STATE / f"dups-{stage}-part-{index:05d}.npy"


def check_recipe(recipe: Recipe) -> None:
    """ConfigError naming a stateful stage without ``Operator.keys``: it cannot be judged across workers."""
    for stage in recipe.stages:
        if stage.op.stateful and stage.op.keys is None:
            raise ConfigError(
                f"{recipe.source}: stage '{stage.name}' keeps state across rows and has no key pass "
                "for --engine ray; use --engine local"
            )


def run_shards(
    ray: ModuleType,
    job: ShardJob,
    finished: frozenset[int],
    workers: int | None,
    progress: bool,
) -> list[dict[str, Any]]:
    """Curate every shard of ``job`` not in ``finished`` on the Ray cluster ``ray`` is joined to,
    ``workers`` tasks at a time (None: as many as the cluster has CPUs); returns every shard's
    tally (``Tally.to_dict``) in shard order, finished ones read from their markers.

    Raises the DataError or ConfigError a shard raised (its one line; Ray's wrapping removed).
    """
    _configure(ray, len(job.shards))
    out = Path(job.out)
    state = out / "_state"
    concurrency = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    stateful = [i for i, s in enumerate(job.recipe.stages) if s.op.stateful]
    for stage in stateful:  # every run: the pass is cheap next to the shards and depends on all of them
        _key_pass(ray, job, stage, concurrency)
    todo = [s.index for s in job.shards if s.index not in finished]
    bar = tqdm(
        total=len(job.shards),
        initial=len(job.shards) - len(todo),
        desc=f"curate {job.recipe.name} (ray)",
        unit="shard",
        disable=not progress,
    )
    try:
        if todo:
            shards = ray.data.from_items([{"shard": i} for i in todo], override_num_blocks=len(todo))
            done = shards.map_batches(
                _curate,
                fn_kwargs={"job": job},
                batch_size=1,
                batch_format="pyarrow",
                compute=ray.data.TaskPoolStrategy(size=min(concurrency, len(todo))),
            )
            with task_errors():
                for batch in done.iter_batches(batch_size=1, batch_format="pyarrow"):
                    bar.update(batch.num_rows)
    finally:
        bar.close()
    return [json.loads((state / f"part-{s.index:05d}.json").read_text()) for s in job.shards]


def _curate(batch: pa.Table, job: ShardJob) -> pa.Table:
    """Ray task: curate the shards of ``batch`` (their indices) into the run folder, each
    finished by its marker; a shard a killed attempt finished is not run again."""
    out = Path(job.out)
    for index in batch.column("shard").to_pylist():
        marker = out / "_state" / f"part-{index:05d}.json"
        if marker.exists():
            continue
        shard = next(s for s in job.shards if s.index == index)
        engine = job.engine(index)
        try:
            part = f"part-{index:05d}.parquet"
            result = engine.run_shard(
                shard, job.recipe.stages, job.contexts(index), out / "kept" / part, out / "dropped" / part
            )
        finally:
            engine.close()
        write_json(marker, result)
    return batch


def _key_pass(ray: ModuleType, job: ShardJob, stage: int, concurrency: int) -> None:
    """Write ``_state/ray/dups-<stage>-part-NNNNN.npy`` for every shard: the positions of its rows
    that reach ``stage`` with a key an earlier row (shard order, then row order) had."""
    folder = Path(job.out) / "_state" / RAY_STATE
    for old in folder.glob(f"dups-{stage}-*.npy"):
        old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    shards = ray.data.from_items(
        [{"shard": s.index} for s in job.shards], override_num_blocks=len(job.shards)
    )
    rows = sum(s.size for s in job.shards) // 64  # a rough count from the bytes: buckets only need to fit
    buckets = max(concurrency, math.ceil(rows / BUCKET_ROWS))
    keys = shards.map_batches(
        _shard_keys,
        fn_kwargs={"job": job, "stage": stage, "buckets": buckets},
        batch_size=1,
        batch_format="pyarrow",
        compute=ray.data.TaskPoolStrategy(size=min(concurrency, len(job.shards))),
    )
    later = keys.groupby("bucket").map_groups(_later_occurrences, batch_format="pyarrow")
    written = later.groupby("shard").map_groups(
        _write_dups, fn_kwargs={"folder": str(folder), "stage": stage}, batch_format="pyarrow"
    )
    with task_errors():
        written.materialize()


def _shard_keys(batch: pa.Table, job: ShardJob, stage: int, buckets: int) -> pa.Table:
    """Ray task: (key, shard, position, bucket) of each row of the batch's shards that reaches
    ``stage``, positions counted as ``StageContext.position`` counts them."""
    parts = [_KEYS.empty_table()]
    spec = job.recipe.stages[stage]
    for index in batch.column("shard").to_pylist():
        shard = next(s for s in job.shards if s.index == index)
        engine = job.engine(index)
        try:
            contexts = job.contexts(index, before=stage)
            plan = engine.plan(shard, job.recipe.stages, contexts)
            pos = 0
            for alive in engine.probe(plan, stage):
                keys = np.asarray(spec.op.keys(alive, contexts[stage], **spec.params), dtype=np.int64)
                n = len(keys)
                parts.append(
                    pa.table(
                        [
                            pa.array(keys),
                            pa.array(np.full(n, index, np.int32)),
                            pa.array(np.arange(pos, pos + n, dtype=np.int64)),
                            pa.array((keys % buckets).astype(np.int32)),
                        ],
                        schema=_KEYS,
                    )
                )
                pos += n
        finally:
            engine.close()
    return pa.concat_tables(parts)


def _later_occurrences(group: pa.Table) -> pa.Table:
    """One key bucket, whole: (shard, position) of every row whose key occurred before it."""
    key = group.column("key").to_numpy()
    shard = group.column("shard").to_numpy()
    pos = group.column("pos").to_numpy()
    order = np.lexsort((pos, shard, key))  # by key, then shard, then position
    key, shard, pos = key[order], shard[order], pos[order]
    later = np.r_[False, key[1:] == key[:-1]]
    return pa.table({"shard": pa.array(shard[later], pa.int32()), "pos": pa.array(pos[later], pa.int64())})


def _write_dups(group: pa.Table, folder: str, stage: int) -> pa.Table:
    """One shard's duplicate positions, sorted, to its ``dups`` file; returns their count."""
    index = int(group.column("shard")[0].as_py())
    positions = np.sort(group.column("pos").to_numpy())
    buf = io.BytesIO()
    np.save(buf, positions)
    write_bytes(_dups_path(Path(folder).parent.parent, stage, index), buf.getvalue())
    return pa.table({"shard": [index], "duplicates": [len(positions)]})


def operator_modules(recipe: Recipe) -> tuple[str, ...]:
    """The modules that registered ``recipe``'s operators (a user's own module too), for workers."""
    return operator_modules_of((*recipe.stages, *recipe.post_download))


def _configure(ray: ModuleType, shards: int) -> None:
    """Ray Data's own progress bars and per-dataset log lines off (ours is the one bar); the
    shuffle strategy for ``shards`` input shards (``SORT_SHUFFLE_SHARDS``)."""
    context = ray.data.DataContext.get_current()  # imports ray.data, which sets its loggers' levels
    # Then CRITICAL, before turning the bars off (that warns): a failed task is raised to us, and
    # Ray Data's own ERROR lines and traceback about it would precede the CLI's one line.
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    # A UDF's exception travels as itself (inside RayTaskError), not as a UserCodeException whose
    # cause is lost in pickling; task_errors() then finds our DataError/ConfigError.
    context.raise_original_map_exception = True
    if shards < SORT_SHUFFLE_SHARDS:
        context.shuffle_strategy = ray.data.context.ShuffleStrategy.SORT_SHUFFLE_PULL_BASED


@contextlib.contextmanager
def task_errors() -> Iterator[None]:
    """A t2iscope error raised inside a Ray task comes out as itself (its one line), not Ray's
    wrapping (``RayTaskError``, Ray Data's ``UserCodeException``) with the worker's traceback."""
    try:
        yield
    except Exception as exc:
        from ray.exceptions import RayError  # only ever on Ray: run.py imports this module without it

        cause: BaseException | None = exc
        for _ in range(16):  # RayTaskError(DataError) is a DataError too: its .cause is the original
            if cause is None or (isinstance(cause, T2IError) and not isinstance(cause, RayError)):
                break
            cause = getattr(cause, "cause", None) or cause.__cause__
        if isinstance(cause, T2IError) and not isinstance(cause, RayError):
            # Ray Data appends its retry advice on further lines of the message: ours is the first.
            raise type(cause)(str(cause).splitlines()[0]) from None
        raise


# -- post-download: model-scored stages as actor pools ------------------------------------------


def model_stages(stages: Sequence[Stage]) -> dict[int, str]:
    """Post-download stages that score images with a model: stage index -> the score column."""
    found: dict[int, str] = {}
    for i, stage in enumerate(stages):
        if stage.op.prepare is not None and stage.op.preload is not None:
            source = resolve_source(stage.params.get("source", "auto"), PIXELS, stage.name)
            if source == "model":
                found[i] = next(iter(stage.op.outputs))
    return found


class _UnitScorer:
    """Ray actor: loads the post-download models once, then scores whole units (img2dataset
    shards), each written to ``_state/post/scores-<stage>-<unit>.parquet`` as the pool pass does."""

    def __init__(self, runner: Any, units: Sequence[Any], batch_rows: int, device: str) -> None:
        os.environ[DEVICE_ENV] = device  # read by the scorers' loaders in this worker process
        self.runner = runner
        self.units, self.batch_rows = units, batch_rows
        for module in operator_modules_of(self.runner.stages):
            importlib.import_module(module)
        for stage in self.runner.stages:  # the model loads once per actor, before the first unit
            if stage.op.preload is not None:
                stage.op.preload(stage.params, PIXELS)

    def __call__(self, batch: pa.Table) -> pa.Table:
        for stage, unit, column in zip(
            batch.column("stage").to_pylist(),
            batch.column("unit").to_pylist(),
            batch.column("column").to_pylist(),
            strict=True,
        ):
            self.runner._scores(stage, column, self.units[unit], self.batch_rows)
        return batch


def score_units(
    ray: ModuleType, runner: Any, units: Sequence[Any], batch_rows: int, progress: bool
) -> dict[int, str]:
    """Score every image of ``units`` with each model stage of ``runner`` (download._Post) in a
    Ray actor pool: one actor per CPU (or GPU, one each, when the cluster has GPUs), each loading
    its models once; a unit is one call, read in batches of ``batch_rows`` images and scored in
    the model's own batches. Units already scored (a resumed download) are skipped. Returns the
    stages scored (index -> column), for the filtering pass to read back (``_Post.ahead``).
    """
    _configure(ray, len(units))
    ahead = model_stages(runner.stages)
    state = runner.state
    todo = [
        {"stage": i, "unit": u, "column": column}
        for i, column in ahead.items()
        for u, unit in enumerate(units)
        if not (state / f"scores-{i:03d}-{unit.name}.parquet").exists()
    ]
    if not todo:
        return ahead
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    size = max(1, min(len(todo), gpus or int(resources.get("CPU", 1))))
    work = ray.data.from_items(todo, override_num_blocks=len(todo)).map_batches(
        _UnitScorer,
        fn_constructor_kwargs={
            "runner": runner,
            "units": list(units),
            "batch_rows": batch_rows,
            "device": "cuda" if gpus else "cpu",
        },
        batch_size=1,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=size),
        num_gpus=1 if gpus else None,
    )
    bar = tqdm(total=len(todo), desc="post-download: model scores (ray)", unit="shard", disable=not progress)
    try:
        with task_errors():
            for batch in work.iter_batches(batch_size=1, batch_format="pyarrow"):
                bar.update(batch.num_rows)
    finally:
        bar.close()
    return ahead


def operator_modules_of(stages: Sequence[Stage]) -> tuple[str, ...]:
    """The modules that registered ``stages``' operators."""
    load_all()
    return tuple(sorted({OPERATORS.get(s.name).fn.__module__ for s in stages}))
