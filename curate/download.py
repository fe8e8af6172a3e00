"""``curate download``: fetch a run's kept rows with img2dataset, then run post-download stages.

1. Rows: the run's ``kept/`` shards, each with a stable ``row_id`` (input order) and a
   ``fetch_url``: the URL normalised to ASCII (curate.urls), pointing at a local mirror when
   ``--via`` is given (``https://h/p`` -> ``VIA/h/p``), while ``URL`` keeps the original.
2. img2dataset downloads them into ``OUT/images/attempt-N/`` (webdataset or parquet), honouring
   X-Robots-Tag (noai, noimageai, noindex, noimageindex). It runs as a guarded child process
   (``t2iscope.children``): however this command ends, ``kill -9`` included, img2dataset and its
   workers end with it.
3. ``OUT/status.parquet``: one row per input row, its latest ``status``, ``error_message``,
   ``attempt`` and where its image is. ``--retry-failed`` fetches only failed rows again as a
   new attempt and merges.
4. Post-download stages (recipe ``post_download``: pixel resolution, image dedup, model scores)
   run on the downloaded images one img2dataset shard at a time, in batches of ``batch_rows``
   images in row order, so memory does not grow with the download. Each shard of each attempt
   writes ``OUT/kept/part-AAA-SSSSS.parquet`` and ``OUT/dropped/part-AAA-SSSSS.parquet`` (attempt,
   shard); ``OUT/stats.json`` holds the exact totals. Stateful stages (dedup) see every row in
   download order: attempts in order, then row order, so a retry never changes the verdict on a
   row downloaded before. The models they score with are loaded before step 2, so a broken model
   folder stops the command before anything is fetched or written.

Resume rule: a download is complete when ``OUT/stats.json`` exists (written last). Rerunning the
command on an incomplete folder finishes it, with or without ``--retry-failed``, and gives the
outputs an uninterrupted run gives: an attempt killed inside img2dataset resumes its finished
shards (``OUT/_state/attempt-N.json`` records the attempt's options, which must match), a kill
after ``status.parquet`` re-runs only the post-download stages, and those resume from their
finished shards (``OUT/_state/post/``: per-shard tallies and dedup keys, valid while the recipe's
``post_download`` is unchanged). A plain rerun of a complete download is refused; so is a second
command writing the same ``--out`` (``t2iscope.locks``) and an ``--out`` that holds something
other than a download of this run.

Limits (``DownloadOptions``, checked before any work by ``t2iscope.config``, for the CLI and the
Python API alike): ``--via`` an http(s) base URL with a host; ``--threads`` 1..1024 per
process; ``--processes`` 1..256; ``--timeout`` seconds in (0, 600]; ``--image-size`` 1..4096 px
(img2dataset's target side; larger is not training data, and a decoded 4096 px image is already
48 MB); ``--resize-mode`` one of img2dataset's ``ResizeMode``; ``--output-format`` webdataset or
parquet (what post-download reads); ``--rows-per-shard`` 1..1,000,000; ``--batch-rows`` 1..65,536;
an ``--out`` without ``::`` (img2dataset's fsspec would read it as a chain of file systems).
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import functools
import json
import math
import tarfile
import time
import typing
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yarl
from pydantic import AfterValidator
from tqdm import tqdm

from t2iscope.children import run_python
from t2iscope.config import Ge, Gt, Le, parse
from t2iscope.curate.engine_local import LocalEngine, conform
from t2iscope.curate.operators import CUTOFF, PIXELS, SCORES, StageContext, pool_cutoff
from t2iscope.curate.operators.dedup import laion_hash, restore_keys, save_keys
from t2iscope.curate.plan import StageCounts
from t2iscope.curate.recipe import Recipe, Stage, load_recipe
from t2iscope.curate.schema import REASON_COL, STAGE_COL
from t2iscope.curate.urls import normalized_urls
from t2iscope.errors import ConfigError, DataError
from t2iscope.fileio import atomic_path, write_json, write_parquet, write_text
from t2iscope.locks import is_empty, output_lock
from t2iscope.sql import Params, open_duckdb

ROBOTS_DIRECTIVES = ["noai", "noimageai", "noindex", "noimageindex"]
STATUS_COLUMNS = ("row_id", "URL", "hash", "status", "error_message", "attempt", "images_dir", "key")
IMAGE_EXTENSIONS = ("jpg", "png", "webp")

OutputFormat = Literal["webdataset", "parquet"]
# img2dataset's resizer.ResizeMode, by name (tests/curate/test_download_reliability.py compares).
ResizeMode = Literal["no", "keep_ratio", "center_crop", "border", "keep_ratio_largest"]
Engine = Literal["local", "ray"]  # recipe.Engine: where img2dataset and the model stages run
MAX_IMAGE_SIZE = 4096
MAX_THREADS = 1024
MAX_PROCESSES = 256
MAX_TIMEOUT_S = 600.0
MAX_ROWS_PER_SHARD = 1_000_000
MAX_BATCH_ROWS = 65_536
# What an interrupted attempt must be resumed with: they decide which files img2dataset writes.
SHAPING_OPTIONS = ("output_format", "image_size", "resize_mode", "via", "rows_per_shard")


def _http_base(via: str) -> str:
    """``--via``'s check: an http(s) URL with a host, no query or fragment (it becomes a prefix)."""
    try:
        url = yarl.URL(via)
        host, port = url.host, url.port  # yarl parses lazily: a bad port raises here
    except ValueError as exc:
        raise ValueError(f"expected an http(s) URL with a host, got {via!r} ({exc})") from None
    if url.scheme not in ("http", "https") or not host or port == 0:
        raise ValueError(f"expected an http(s) URL with a host, got {via!r}")
    if url.raw_query_string or url.raw_fragment:
        raise ValueError(f"expected a base URL without query or fragment, got {via!r}")
    return via


@dataclass(frozen=True)
class DownloadOptions:
    """img2dataset settings we expose (the rest are fixed to what curation needs) and the
    post-download batch size. Limits: the module docstring; ``check_options`` enforces them."""

    output_format: OutputFormat = "webdataset"
    image_size: Annotated[int, Ge(1), Le(MAX_IMAGE_SIZE)] = 256  # px, img2dataset's target side
    resize_mode: ResizeMode = "keep_ratio"
    processes: Annotated[int, Ge(1), Le(MAX_PROCESSES)] = 1
    threads: Annotated[int, Ge(1), Le(MAX_THREADS)] = 16  # per process
    timeout: Annotated[float, Gt(0), Le(MAX_TIMEOUT_S)] = 5.0  # seconds per request
    via: Annotated[str, AfterValidator(_http_base)] | None = None
    rows_per_shard: Annotated[int, Ge(1), Le(MAX_ROWS_PER_SHARD)] = 10_000
    batch_rows: Annotated[int, Ge(1), Le(MAX_BATCH_ROWS)] = 512  # images per post-download batch


def check_options(options: DownloadOptions, *, flags: bool = False) -> DownloadOptions:
    """Check every field of ``options`` against its annotation; returns ``options``.

    Raises ConfigError (one line) for the first bad field, named as a CLI flag (``--image-size``)
    when ``flags``, else as ``DownloadOptions.image_size``.
    """
    hints = typing.get_type_hints(DownloadOptions, include_extras=True)
    for f in dataclasses.fields(DownloadOptions):
        name = f"--{f.name.replace('_', '-')}" if flags else f"DownloadOptions.{f.name}"
        parse(hints[f.name], getattr(options, f.name), name)
    return options


def load_rows(run_dir: Path) -> pa.Table:
    """The run's kept rows, with ``row_id`` = position (0..n-1) and ``hash`` when missing."""
    kept = sorted((run_dir / "kept").glob("part-*.parquet"))
    if not kept:
        raise DataError(f"{run_dir}: no kept/part-*.parquet (is it a `t2iscope curate run` folder?)")
    table = pa.concat_tables([pq.read_table(p) for p in kept], promote_options="permissive")
    if "hash" not in table.column_names:
        table = table.append_column(
            "hash", pa.array(laion_hash(table.column("URL").to_pylist(), table.column("TEXT").to_pylist()))
        )
    return table.append_column("row_id", pa.array(np.arange(table.num_rows, dtype=np.int64)))


def fetch_urls(urls: pa.ChunkedArray, via: str | None) -> pa.Array:
    """What img2dataset fetches: each URL as curate.urls normalises it (ASCII: ``café.jpg`` ->
    ``caf%C3%A9.jpg``, IDNA hosts), under ``via`` when given. A URL it cannot normalise (one
    validity refuses) goes as written, for img2dataset to record the row's failure."""
    fetch = pc.coalesce(normalized_urls(urls), urls.combine_chunks())
    if via is None:
        return fetch
    base = via.rstrip("/") + "/"
    return pc.binary_join_element_wise(
        base, pc.replace_substring_regex(fetch, r"^[A-Za-z][A-Za-z0-9+.-]*://", ""), ""
    )


def run_img2dataset(
    rows: pa.Table, folder: Path, options: DownloadOptions, ray_address: str | None = None
) -> None:
    """One img2dataset pass over ``rows`` into ``folder``; resumes the finished shards of an
    interrupted pass over the same rows. Raises DataError unless every shard finished.

    With ``ray_address`` (a running Ray cluster's GCS address) img2dataset distributes its
    shards as Ray tasks (its own ``distributor="ray"``, one task per shard, ``--threads`` each)
    instead of ``--processes`` local processes."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    url_list = folder.parent / f".{folder.name}-urls.parquet"
    table = pa.table(
        {
            "fetch_url": fetch_urls(rows.column("URL"), options.via),
            "TEXT": rows.column("TEXT"),
            "row_id": rows.column("row_id"),
        }
    )
    write_parquet(url_list, table)
    kwargs = dict(
        url_list=str(url_list),
        input_format="parquet",
        url_col="fetch_url",
        caption_col="TEXT",
        save_additional_columns=["row_id"],
        output_folder=str(folder),
        output_format=options.output_format,
        image_size=options.image_size,
        resize_mode=options.resize_mode,
        processes_count=options.processes,
        thread_count=options.threads,
        timeout=options.timeout,
        retries=0,
        number_sample_per_shard=options.rows_per_shard,
        disallowed_header_directives=ROBOTS_DIRECTIVES,
        enable_wandb=False,
        distributor="multiprocessing" if ray_address is None else "ray",
        # "incremental": a killed attempt resumes its finished shards (those with a _stats.json).
        # ("overwrite" deletes the _tmp folder img2dataset 1.47 has just created, and then fails.)
        incremental_mode="incremental",
        compute_hash="sha256",
    )
    if ray_address is not None:
        kwargs["ray_address"] = ray_address  # taken out again by the child before img2dataset
    _spawn_img2dataset(kwargs, folder)
    expected = math.ceil(rows.num_rows / options.rows_per_shard)
    finished = len(list(folder.glob("[0-9]*_stats.json")))
    if finished < expected:
        raise DataError(
            f"{folder}: img2dataset finished {finished} of {expected} shards; rerun to resume the rest"
        )
    url_list.unlink(missing_ok=True)


_IMG2DATASET = "import json, sys\nfrom img2dataset import download\ndownload(**json.load(sys.stdin))\n"
# The same, as a driver of the Ray cluster at kwargs' ray_address (img2dataset's ray distributor
# submits to whatever Ray its process has joined).
_IMG2DATASET_RAY = (
    "import json, sys\nimport ray\nkwargs = json.load(sys.stdin)\n"
    "ray.init(address=kwargs.pop('ray_address'), include_dashboard=False, log_to_driver=False)\n"
    "from img2dataset import download\ndownload(**kwargs)\n"
)


def _spawn_img2dataset(kwargs: dict[str, Any], folder: Path) -> None:
    """Run img2dataset in a fresh interpreter: it forks workers, and forking a process that has
    DuckDB or torch threads running can deadlock; it also installs its own signal handlers. The
    child is guarded (t2iscope.children): it and its workers never outlive this process, and they
    run with t2iscope.offline's environment (albumentations' PyPI update check off)."""
    code = run_python(
        ["-c", _IMG2DATASET_RAY if "ray_address" in kwargs else _IMG2DATASET], input=json.dumps(kwargs)
    )
    if code < 0:
        raise DataError(f"{folder}: img2dataset was killed by signal {-code}; rerun to resume")
    if code != 0:
        raise DataError(f"{folder}: img2dataset exited with status {code}; rerun to resume")


def read_attempt(folder: Path, attempt: int) -> pa.Table:
    """img2dataset's per-shard metadata parquets -> row_id, status, error, key, original size."""
    parts = sorted(folder.glob("[0-9]*.parquet"))
    if not parts:
        raise DataError(f"{folder}: img2dataset wrote no shard metadata")
    meta = pa.concat_tables(
        [pq.read_table(p, columns=_meta_columns(p)) for p in parts], promote_options="permissive"
    )
    n = meta.num_rows
    return pa.table(
        {
            "row_id": meta.column("row_id").cast(pa.int64()),
            "status": meta.column("status"),
            "error_message": meta.column("error_message").cast(pa.string()),
            "attempt": pa.array(np.full(n, attempt, dtype=np.int32)),
            "images_dir": pa.array([folder.name] * n, pa.string()),
            "key": meta.column("key").cast(pa.string()),
            "pixel_width": meta.column("original_width").cast(pa.int64()),
            "pixel_height": meta.column("original_height").cast(pa.int64()),
        }
    )


def _meta_columns(path: Path) -> list[str]:
    names = pq.read_schema(path).names
    wanted = ["row_id", "status", "error_message", "key", "original_width", "original_height"]
    return [c for c in wanted if c in names]


def merge_status(rows: pa.Table, previous: pa.Table | None, attempt: pa.Table) -> pa.Table:
    """Latest status per row: a new attempt replaces the old one for the rows it covered."""
    base = rows.select(["row_id", "URL", "hash"])
    if previous is not None:
        keep = pc.invert(pc.is_in(previous.column("row_id"), attempt.column("row_id")))
        attempt = pa.concat_tables([previous.drop_columns(["URL", "hash"]).filter(keep), attempt])
    return base.join(attempt, "row_id", join_type="left outer").sort_by("row_id")


def preload_models(recipe: Recipe) -> None:
    """Load every model the post_download stages will score with (each stage's ``Operator.preload``).

    Called before img2dataset starts: a missing or broken model folder (no config, unknown
    architecture, truncated weights) is one line before anything is fetched or written, not after
    every image is downloaded. The loader caches per process, so post_download reuses the models.
    """
    for stage in recipe.post_download:
        if stage.op.preload is not None:
            stage.op.preload(stage.params, PIXELS)


# -- post-download: one img2dataset shard (a "unit") at a time, in bounded batches ------------------


Reader = Callable[[list[str]], pa.Array]  # keys -> their encoded images (binary, null if missing)


class _Unit(abc.ABC):
    """One shard of one attempt: its successful rows in row order, images read batch by batch."""

    def __init__(self, name: str, images_dir: str, source: str) -> None:
        self.name = name  # part-<name>.parquet in kept/ and dropped/
        self.images_dir = images_dir  # attempt-N, as status.parquet names it
        self.source = source  # for error messages

    @abc.abstractmethod
    def open(self) -> contextlib.AbstractContextManager[tuple[pa.Table, Reader]]:
        """The unit's rows (``row_id``, ``key``) and a reader of their encoded images, for as long
        as the unit is processed: indexes and file handles are per unit, not per download."""

    def batches(self, size: int) -> Iterator[tuple[pa.Array, pa.Array]]:
        """(row_ids, encoded images: binary, null where missing) of at most ``size`` rows, in row order."""
        with self.open() as (rows, read):
            rows = rows.sort_by("row_id")
            ids, keys = rows.column("row_id").combine_chunks(), rows.column("key").to_pylist()
            for start in range(0, len(keys), size):
                yield ids.slice(start, size), read(keys[start : start + size])


class _ShardUnit(_Unit):
    """An img2dataset shard on disk: ``NNNNN.parquet`` lists its rows; the images are in
    ``NNNNN.tar`` (webdataset) or in that parquet's ``jpg`` column (parquet format)."""

    def __init__(self, name: str, meta_path: Path) -> None:
        super().__init__(name, meta_path.parent.name, str(meta_path))
        self.meta_path = meta_path

    @contextlib.contextmanager
    def open(self) -> Iterator[tuple[pa.Table, Reader]]:
        meta = pq.read_table(self.meta_path, columns=["row_id", "key", "status"])
        keys = meta.column("key").cast(pa.string())
        ok = pc.equal(meta.column("status"), "success")
        rows = pa.table({"row_id": meta.column("row_id").cast(pa.int64()), "key": keys}).filter(ok)
        tar_path = self.meta_path.with_suffix(".tar")
        if tar_path.exists():
            self.source = str(tar_path)
            with open(tar_path, "rb") as fh:
                yield rows, functools.partial(_read_tar, fh, _tar_index(tar_path))
        elif "jpg" in pq.read_schema(self.meta_path).names:
            position = {k: i for i, k in enumerate(keys.to_pylist())}
            with pq.ParquetFile(self.meta_path) as file:
                sizes = [file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)]
                starts = np.cumsum([0, *sizes])  # first position of each row group
                yield rows, functools.partial(_read_parquet, file, position, starts)
        else:
            raise DataError(f"{self.meta_path}: no {tar_path.name} beside it and no jpg column in it")


def _tar_index(path: Path) -> dict[str, tuple[int, int]]:
    """key -> (offset, size) of each image in a webdataset tar, from its headers alone.

    img2dataset writes a shard's samples as they finish; the index lets us read them in row order.
    """
    index: dict[str, tuple[int, int]] = {}
    with tarfile.open(path) as tar:
        for member in tar:
            key, _, ext = member.name.rpartition(".")
            if ext in IMAGE_EXTENSIONS:
                index[key] = (member.offset_data, member.size)
    return index


def _read_tar(fh: BinaryIO, index: dict[str, tuple[int, int]], keys: list[str]) -> pa.Array:
    out: list[bytes | None] = []
    for key in keys:
        where = index.get(key)
        if where is None:
            out.append(None)
            continue
        fh.seek(where[0])
        out.append(fh.read(where[1]))
    return pa.array(out, pa.binary())  # the bytes objects go when this returns: one copy alive


def _read_parquet(
    file: pq.ParquetFile, position: dict[str, int], starts: np.ndarray, keys: list[str]
) -> pa.Array:
    """``keys``' images from a parquet shard (``position``: key -> row), a row group at a time."""
    out: list[bytes | None] = [None] * len(keys)
    pos = np.array([position.get(k, -1) for k in keys], dtype=np.int64)
    groups = np.searchsorted(starts, pos, side="right") - 1
    for g in np.unique(groups[pos >= 0]):
        column = file.read_row_group(int(g), columns=["jpg"]).column(0)
        for i in np.flatnonzero(groups == g):
            out[i] = column[int(pos[i] - starts[g])].as_py()
    return pa.array(out, pa.binary())


class _MemoryUnit(_Unit):
    """Rows whose images are already in memory (``post_download``'s callers)."""

    def __init__(self, name: str, images_dir: str, rows: pa.Table, images: Mapping[str, bytes]) -> None:
        super().__init__(name, images_dir, "<memory>")
        self.rows, self.blobs = rows, images

    @contextlib.contextmanager
    def open(self) -> Iterator[tuple[pa.Table, Reader]]:
        yield self.rows, lambda keys: pa.array([self.blobs.get(k) for k in keys], pa.binary())


def _shard_units(folder: Path, attempt: int) -> list[_Unit]:
    """The units of one attempt folder, in shard order."""
    return [_ShardUnit(f"{attempt:03d}-{p.stem}", p) for p in sorted(folder.glob("[0-9]*.parquet"))]


def _batch_table(rows: pa.Table, status: pa.Table, row_ids: pa.Array, images: pa.Array) -> pa.Table:
    """The rows of ``row_ids`` with their status columns and encoded ``image``.

    ``rows`` and ``status`` hold one row per row_id at position row_id (load_rows, merge_status).
    """
    table = rows.take(row_ids)
    for field in status.schema:
        if field.name not in ("row_id", "URL", "hash"):
            table = table.append_column(field, status.column(field.name).take(row_ids))
    return table.append_column("image", images)


class _Post:
    """Runs ``recipe.post_download`` over units; with ``state`` set, resumes finished units.

    A top-fraction stage (``Operator.pool``) needs its pool first: a pass before the filtering
    scores every unit's images once (``state/scores-<stage>-<unit>.parquet``, or memory), the cutoff
    is computed over them all (``operators.pool_cutoff``), and the filtering pass takes the scores
    from there (``ctx.state[SCORES]``). ``state/pools.json`` records the cutoffs the finished units
    were filtered with: when they change (a retry downloaded more images), those units run again.
    """

    def __init__(
        self, recipe: Recipe, rows: pa.Table, status: pa.Table, out: Path, state: Path | None
    ) -> None:
        self.stages: list[Stage] = list(recipe.post_download)
        self.rows, self.status, self.out, self.state = rows, status, out, state
        self.contexts = [StageContext(str(out), PIXELS) for _ in self.stages]
        self.stateful = [i for i, s in enumerate(self.stages) if s.op.stateful]
        empty = pa.array([], pa.int64())
        kept = _batch_table(rows, status, empty, pa.array([], pa.binary())).drop_columns(["image"]).schema
        for stage in self.stages:
            for name, typ in stage.op.outputs.items():
                if name not in kept.names:
                    kept = kept.append(pa.field(name, typ))
        self.kept_schema = kept
        self.dropped_schema = kept.append(pa.field(STAGE_COL, pa.string())).append(
            pa.field(REASON_COL, pa.string())
        )
        self.pools: dict[int, dict[str, Any]] = {}  # stage index -> column, fraction, cutoff, pool
        self.scored: dict[tuple[int, str], pa.Table] = {}  # the pool pass's scores, without state
        # Model stages whose scores of every image were computed before the filtering pass (by
        # Ray's actor pool, engine_ray.score_units): stage index -> score column.
        self.ahead: dict[int, str] = {}

    def run(self, units: Sequence[_Unit], batch_rows: int, progress: bool) -> dict[str, Any]:
        totals = [StageCounts() for _ in self.stages]
        self._pools(units, batch_rows, progress, totals)
        rows_in = rows_out = 0
        for unit in tqdm(units, desc="post-download", unit="shard", disable=not progress):
            result = self._resumed(unit) or self._unit(unit, batch_rows)
            rows_in += result["rows_in"]
            rows_out += result["rows_out"]
            for total, s in zip(totals, result["stages"], strict=True):
                total.add(s)
        stages = [
            {"stage": stage.name, "params": stage.params, **total.to_dict()}
            for stage, total in zip(self.stages, totals, strict=True)
        ]
        for i, pool in self.pools.items():
            stages[i]["top_fraction"] = pool
        return {"rows_in": rows_in, "rows_out": rows_out, "stages": stages}

    def _pools(
        self, units: Sequence[_Unit], batch_rows: int, progress: bool, totals: list[StageCounts]
    ) -> None:
        """The pool pass: each top-fraction stage's scores of every image and its cutoff over them,
        into the stage's context; finished units filtered with other cutoffs are forgotten."""
        for i, stage in enumerate(self.stages):
            spec = stage.op.pool(stage.params, PIXELS) if stage.op.pool else None
            if spec is None:
                continue
            start = time.perf_counter()
            bar = tqdm(units, desc=f"{stage.name}: scoring the pool", unit="shard", disable=not progress)
            scores = [self._scores(i, spec.column, unit, batch_rows).column(spec.column) for unit in bar]
            con = open_duckdb(config={"threads": 1})
            try:
                con.register("__t2i_pool", pa.table({"v": pa.chunked_array(scores, pa.float32())}))
                cutoff, n = pool_cutoff(con, "__t2i_pool", spec.fraction, Params())
            finally:
                con.close()
            self.contexts[i].state[CUTOFF] = cutoff
            self.pools[i] = {"column": spec.column, "fraction": spec.fraction, "cutoff": cutoff, "pool": n}
            totals[i].seconds += time.perf_counter() - start
        if self.state is None or not self.pools:
            return
        record = _jsonable({str(i): pool for i, pool in self.pools.items()})
        path = self.state / "pools.json"
        if path.exists() and json.loads(path.read_text()) != record:
            for stale in [*self.state.glob("unit-*.json"), *self.state.glob("keys-*.npy")]:
                stale.unlink()
        write_json(path, record)

    def _scores(self, i: int, column: str, unit: _Unit, batch_rows: int) -> pa.Table:
        """``row_id`` and stage ``i``'s ``column`` of each image of ``unit``, computed once: a
        resumed command reads them back."""
        path = None if self.state is None else self.state / f"scores-{i:03d}-{unit.name}.parquet"
        if path is not None and path.exists():
            return pq.read_table(path)
        if (i, unit.name) in self.scored:
            return self.scored[i, unit.name]
        stage, ctx = self.stages[i], self.contexts[i]
        ctx.source = unit.source
        schema = pa.schema([pa.field("row_id", pa.int64()), pa.field(column, stage.op.outputs[column])])
        parts = [schema.empty_table()]
        for row_ids, images in unit.batches(batch_rows):
            self._check(unit, row_ids)
            batch = _batch_table(self.rows, self.status, row_ids, images)
            scores = stage.op.prepare(batch, ctx, **stage.params)[column]
            parts.append(pa.table([row_ids, scores], schema=schema))
        scored = pa.concat_tables(parts)
        if path is None:
            self.scored[i, unit.name] = scored
        else:
            write_parquet(path, scored)
        return scored

    def _resumed(self, unit: _Unit) -> dict[str, Any] | None:
        """A unit an interrupted command finished: its tallies, its dedup keys back in state."""
        if self.state is None or not (self.state / f"unit-{unit.name}.json").exists():
            return None
        restore_keys(self.contexts, self.stateful, self.state, unit.name)
        return json.loads((self.state / f"unit-{unit.name}.json").read_text())

    def _unit(self, unit: _Unit, batch_rows: int) -> dict[str, Any]:
        counts = [StageCounts() for _ in self.stages]
        for ctx in self.contexts:
            ctx.source = unit.source
        for i, column in {**self.ahead, **{i: pool["column"] for i, pool in self.pools.items()}}.items():
            self.contexts[i].state[SCORES] = self._scores(i, column, unit, batch_rows)
        rows_in = rows_out = 0
        with ExitStack() as files:  # each writer closes before its file is renamed into place
            kept_tmp = files.enter_context(atomic_path(self.out / "kept" / f"part-{unit.name}.parquet"))
            dropped_tmp = files.enter_context(atomic_path(self.out / "dropped" / f"part-{unit.name}.parquet"))
            kept_writer = files.enter_context(pq.ParquetWriter(kept_tmp, self.kept_schema))
            dropped_writer = files.enter_context(pq.ParquetWriter(dropped_tmp, self.dropped_schema))
            for row_ids, images in unit.batches(batch_rows):
                self._check(unit, row_ids)
                rows_in += len(row_ids)
                alive = _batch_table(self.rows, self.status, row_ids, images)
                del images  # held by the table now, so a stage that drops rows frees their images
                for stage, ctx, c in zip(self.stages, self.contexts, counts, strict=True):
                    alive = LocalEngine.apply_stage(alive, stage, ctx, c, self.dropped_schema, dropped_writer)
                kept_writer.write_table(conform(alive, self.kept_schema))
                rows_out += alive.num_rows
        result = {
            "rows_in": rows_in,
            "rows_out": rows_out,
            "stages": [c.to_dict() for c in counts],
        }
        if self.state is not None:  # keys first: a unit with a marker always has its keys
            save_keys(self.contexts, self.stateful, self.state, unit.name)
            write_json(self.state / f"unit-{unit.name}.json", result)
        return result

    def _check(self, unit: _Unit, row_ids: pa.Array) -> None:
        """The unit's rows must be successes status.parquet places in this unit's folder."""
        st = self.status.take(row_ids)
        here = pc.and_(
            pc.equal(st.column("status"), "success"), pc.equal(st.column("images_dir"), unit.images_dir)
        )
        if not pc.all(pc.fill_null(here, False)).as_py():
            raise DataError(f"{unit.source}: disagrees with status.parquet (delete --out and download again)")


def post_download(
    recipe: Recipe,
    rows: pa.Table,
    status: pa.Table,
    images: Mapping[tuple[str, str], bytes],
    out: Path,
    *,
    batch_rows: int = DownloadOptions.batch_rows,
) -> dict[str, Any]:
    """Run ``recipe.post_download`` on successful rows whose encoded images are in memory, keyed by
    (images_dir, key); writes ``out/kept``, ``out/dropped`` as ``download_run`` does (one part per
    images_dir) and returns the post-download summary. ``download_run`` streams from disk instead.

    ``rows`` and ``status`` hold one row per row_id at position row_id.
    """
    ok = status.filter(pc.equal(status.column("status"), "success"))
    units: list[_Unit] = []
    for n, images_dir in enumerate(sorted(set(ok.column("images_dir").to_pylist()))):
        mine = ok.filter(pc.equal(ok.column("images_dir"), images_dir)).select(["row_id", "key"])
        blobs = {k: v for (d, k), v in images.items() if d == images_dir}
        units.append(_MemoryUnit(f"{n:03d}-memory", images_dir, mine, blobs))
    return _Post(recipe, rows, status, Path(out), None).run(units, batch_rows, progress=False)


# -- the command ------------------------------------------------------------------------------------


def download_run(
    run_dir: str | Path,
    out: str | Path,
    options: DownloadOptions,
    *,
    retry_failed: bool = False,
    recipe_name: str | None = None,
    progress: bool = True,
    engine: Engine = "local",
    address: str | None = None,
) -> dict[str, Any]:
    """Download (or retry the failures of, or finish) a curation run; returns OUT/stats.json's content.

    ``engine="ray"`` runs img2dataset with its Ray distributor and the post-download model
    stages as Ray actor pools (engine_ray.score_units), on the cluster at ``address`` (None: a
    local Ray); status, retries, resume and outputs are those of the local engine.

    Raises ConfigError before any work for bad ``options``, a complete download rerun without
    ``retry_failed``, nothing to retry, an ``out`` in use or holding something else, or an
    interrupted attempt resumed with other file-shaping options; DataError for a run folder
    without kept rows or a failed img2dataset pass (rerun to resume).
    """
    check_options(options)
    run_dir, out = Path(run_dir), Path(out)
    recipe = _recipe(run_dir, recipe_name)
    rows = load_rows(run_dir)
    if rows.num_rows == 0:
        raise DataError(f"{run_dir}: no kept rows to download")
    identity = _identity(run_dir)
    _refuse(out, identity, retry_failed)
    preload_models(recipe)  # a broken model folder stops here, before anything is written
    if engine != "ray" and address is not None:
        raise ConfigError("--address chooses the Ray cluster; add --engine ray")
    with contextlib.ExitStack() as cluster:
        ray = cluster.enter_context(_ray_session(address)) if engine == "ray" else None
        return _download(run_dir, out, options, recipe, rows, identity, retry_failed, progress, ray)


@contextlib.contextmanager
def _ray_session(address: str | None) -> Iterator[Any]:
    """``ray`` joined to ``address`` (t2iscope.ray_runtime.connect); a Ray this started is shut down."""
    from t2iscope.ray_runtime import connect, require_ray

    started = not require_ray().is_initialized()
    ray = connect(address)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _download(
    run_dir: Path,
    out: Path,
    options: DownloadOptions,
    recipe: Recipe,
    rows: pa.Table,
    identity: dict[str, Any],
    retry_failed: bool,
    progress: bool,
    ray: Any,
) -> dict[str, Any]:
    """:func:`download_run` after its checks, locally or on the Ray cluster ``ray`` is joined to."""
    with output_lock(out):
        _refuse(out, identity, retry_failed)  # again: another command may have finished meanwhile
        state = out / "_state"
        if not (state / "download.json").exists():
            write_json(state / "download.json", identity)
        status_path = out / "status.parquet"
        previous = _read_status(status_path) if status_path.exists() else None
        done = _latest_attempt(previous)
        record = state / f"attempt-{done + 1}.json"
        if record.exists():  # img2dataset was interrupted: the same rows, the same files
            _same_shape(out, json.loads(record.read_text()), options)
            todo = rows if previous is None else _failed(rows, previous)
        elif previous is None:
            todo = rows
        elif (out / "stats.json").exists():  # complete, and retry_failed (else _refuse refused)
            todo = _failed(rows, previous)
            if todo.num_rows == 0:
                return json.loads((out / "stats.json").read_text())  # nothing failed: no change
        else:  # killed after status.parquet: only the post-download stages are left
            todo = None
        if todo is not None:
            (out / "stats.json").unlink(missing_ok=True)  # incomplete from here on
            write_json(record, {"attempt": done + 1, "options": asdict(options)})
            folder = out / "images" / f"attempt-{done + 1}"
            run_img2dataset(todo, folder, options, None if ray is None else _gcs_address(ray))
            previous = merge_status(rows, previous, read_attempt(folder, done + 1))
            write_parquet(status_path, previous)
            record.unlink()  # the attempt is in status.parquet now
            done += 1
        assert previous is not None
        post = _post_download_stored(recipe, rows, previous, out, done, options.batch_rows, progress, ray)
        counts = Counter(previous.column("status").to_pylist())
        errors = Counter(e for e in previous.column("error_message").to_pylist() if e)
        summary = {
            "rows": rows.num_rows,
            "attempted": pc.sum(pc.equal(previous.column("attempt"), done)).as_py() or 0,
            "attempt": done,
            "success": counts.get("success", 0),
            "failed": rows.num_rows - counts.get("success", 0),
            "status": dict(counts),
            "errors": dict(errors.most_common(20)),
            "kept": post["rows_out"],
            "post_download": post,
            "options": asdict(options),
            "recipe": recipe.name,
        }
        write_text(out / "recipe.resolved.yaml", recipe.to_yaml())
        write_json(out / "stats.json", summary)  # last: its presence marks the download complete
    return summary


def _post_download_stored(
    recipe: Recipe,
    rows: pa.Table,
    status: pa.Table,
    out: Path,
    attempts: int,
    batch_rows: int,
    progress: bool,
    ray: Any = None,
) -> dict[str, Any]:
    """Post-download over every attempt's shards on disk, resuming finished shards; with ``ray``
    the model stages first score every image in Ray actor pools (engine_ray.score_units)."""
    if (
        status.num_rows != rows.num_rows
        or not pc.all(pc.equal(status.column("row_id"), rows.column("row_id"))).as_py()
    ):
        raise DataError(f"{out / 'status.parquet'}: does not list the run's rows in order")
    state = out / "_state" / "post"
    identity = _jsonable({"post_download": recipe.to_dict()["post_download"]})
    marker = state / "identity.json"
    if not marker.exists() or json.loads(marker.read_text()) != identity:
        for folder in (state, out / "kept", out / "dropped"):
            for path in folder.glob("*"):
                path.unlink()
        write_json(marker, identity)
    units = [u for n in range(1, attempts + 1) for u in _shard_units(out / "images" / f"attempt-{n}", n)]
    names = {f"part-{u.name}.parquet" for u in units}
    for folder in (out / "kept", out / "dropped"):  # parts of another layout, temp files of a kill
        for path in folder.glob("*"):
            if path.name not in names:
                path.unlink()
    # Temp files of killed writes; url lists and records of attempts status.parquet now holds.
    for path in [
        *(out / "_state").glob("attempt-*.json"),
        *out.glob(".*.tmp"),
        *(out / "_state").glob("**/.*.tmp"),
        *(out / "images").glob(".*urls.parquet*"),
    ]:
        path.unlink()
    runner = _Post(recipe, rows, status, out, state)
    if ray is not None:
        from t2iscope.curate import engine_ray

        runner.ahead = engine_ray.score_units(ray, runner, units, batch_rows, progress)
    post = runner.run(units, batch_rows, progress)
    ok = pc.sum(pc.equal(status.column("status"), "success")).as_py() or 0
    if post["rows_in"] != ok:  # each unit checked its rows against status.parquet: none is missing
        raise DataError(
            f"{out / 'images'}: holds {post['rows_in']} of the {ok} images status.parquet lists as "
            "downloaded; delete --out and download again"
        )
    return post


def _gcs_address(ray: Any) -> str:
    """The address another process joins the running cluster by."""
    return str(ray.get_runtime_context().gcs_address)


def _identity(run_dir: Path) -> dict[str, Any]:
    """What a download folder belongs to: the run's kept part files and their sizes."""
    return {
        "run_kept": [[p.name, p.stat().st_size] for p in sorted((run_dir / "kept").glob("part-*.parquet"))]
    }


def _refuse(out: Path, identity: dict[str, Any], retry_failed: bool) -> None:
    """The refusals that need no work: one line each, before (and again under) the lock."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: not a folder; choose another --out")
    if "::" in str(out.absolute()):  # img2dataset opens paths with fsspec, which splits them there
        raise ConfigError(f"{out}: '::' chains file systems in img2dataset's paths; choose another --out")
    if is_empty(out):
        if retry_failed:
            raise ConfigError(
                f"{out}: nothing to retry, no status.parquet (run without --retry-failed first)"
            )
        return
    marker = out / "_state" / "download.json"
    if marker.exists():
        if json.loads(marker.read_text()) != _jsonable(identity):
            raise ConfigError(f"{out}: holds the download of another run; choose another --out")
    elif not (out / "status.parquet").exists():  # status.parquet alone: a folder from before _state
        raise ConfigError(f"{out}: exists and is not a download folder; choose another --out")
    if (out / "stats.json").exists() and not retry_failed:
        raise ConfigError(f"{out}: already downloaded; use --retry-failed, or choose another --out")


def _read_status(path: Path) -> pa.Table:
    """OUT/status.parquet; DataError (one line) when it is unreadable or lacks a column."""
    try:
        status = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: cannot read ({exc}); delete --out and download again") from None
    missing = [c for c in STATUS_COLUMNS if c not in status.column_names]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; delete --out and download again")
    return status


def _latest_attempt(status: pa.Table | None) -> int:
    return 0 if status is None else int(pc.max(status.column("attempt")).as_py() or 0)


def _failed(rows: pa.Table, status: pa.Table) -> pa.Table:
    failed = status.filter(pc.invert(pc.fill_null(pc.equal(status.column("status"), "success"), False)))
    return rows.filter(pc.is_in(rows.column("row_id"), failed.column("row_id")))


def _same_shape(out: Path, record: dict[str, Any], options: DownloadOptions) -> None:
    """An interrupted attempt resumes only with the options that decide its files."""
    for name in SHAPING_OPTIONS:
        before, now = record["options"].get(name), getattr(options, name)
        if before != now:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(
                f"{out}: attempt {record['attempt']} was interrupted with {flag} {before!r}; "
                f"rerun with the same {flag} to resume it (not {now!r}), or choose another --out"
            )


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), for identity comparisons."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _recipe(run_dir: Path, name: str | None) -> Recipe:
    # A curation run writes stats.json last (run._finish): a folder with the run's _state/ and
    # without it was killed or failed, and its kept/ holds only some shards.
    if (run_dir / "_state" / "run.json").exists() and not (run_dir / "stats.json").exists():
        raise DataError(f"{run_dir}: the curation run is not finished (no stats.json); rerun curate run")
    if name is not None:
        return load_recipe(name)
    resolved = run_dir / "recipe.resolved.yaml"
    if not resolved.exists():
        raise DataError(f"{run_dir}: no recipe.resolved.yaml; pass --recipe")
    return load_recipe(str(resolved))
