"""``curate download``: fetch a run's kept rows with img2dataset, then run post-download stages.

1. Rows: the run's ``kept/`` shards, each with a stable ``row_id`` (input order) and a
   ``fetch_url``: the URL normalised to ASCII (curate.urls), pointing at a local mirror when
   ``--via`` is given (``https://h/p`` -> ``VIA/h/p``), while ``URL`` keeps the original.
2. img2dataset downloads them into ``OUT/images/attempt-N/`` (webdataset or parquet), honouring
   X-Robots-Tag (noai, noimageai, noindex, noimageindex).
3. ``OUT/status.parquet``: one row per input row, its latest ``status``, ``error_message``,
   ``attempt`` and where its image is. ``--retry-failed`` fetches only failed rows again as a
   new attempt and merges (img2dataset's own incremental mode resumes shards, not rows).
4. Post-download stages (recipe ``post_download``: pixel resolution, image dedup, model scores)
   run on the downloaded images, written like a curation run: ``OUT/kept``, ``OUT/dropped``,
   ``OUT/stats.json``. The models they score with are loaded before step 2, so a broken model
   folder stops the command before anything is fetched or written.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from t2iscope.curate.engine_local import StageCounts, conform, with_columns
from t2iscope.curate.operators import PIXELS, StageContext
from t2iscope.curate.operators.dedup import laion_hash
from t2iscope.curate.recipe import Recipe, load_recipe
from t2iscope.curate.schema import REASON_COL, STAGE_COL
from t2iscope.curate.urls import normalized_urls
from t2iscope.errors import ConfigError, DataError
from t2iscope.fileio import write_json, write_parquet, write_text

ROBOTS_DIRECTIVES = ["noai", "noimageai", "noindex", "noimageindex"]
STATUS_COLUMNS = ("row_id", "URL", "hash", "status", "error_message", "attempt", "images_dir", "key")


@dataclass(frozen=True)
class DownloadOptions:
    """img2dataset settings we expose; the rest are fixed to what curation needs."""

    output_format: str = "webdataset"
    image_size: int = 256
    resize_mode: str = "keep_ratio"
    processes: int = 1
    threads: int = 16
    timeout: int = 5
    via: str | None = None
    rows_per_shard: int = 10_000


def load_rows(run_dir: Path) -> pa.Table:
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


def run_img2dataset(rows: pa.Table, folder: Path, options: DownloadOptions) -> None:
    """One img2dataset pass over ``rows`` into ``folder``."""
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
        distributor="multiprocessing",
        # "incremental": a killed attempt resumes its finished shards. ("overwrite" deletes the
        # _tmp folder img2dataset 1.47 has just created, and then fails.)
        incremental_mode="incremental",
        compute_hash="sha256",
    )
    _spawn_img2dataset(kwargs, folder)
    url_list.unlink(missing_ok=True)


def _spawn_img2dataset(kwargs: dict[str, Any], folder: Path) -> None:
    """Run img2dataset in a fresh interpreter: it forks workers, and forking a process that has
    DuckDB or torch threads running can deadlock; it also installs its own signal handlers."""
    code = "import json, sys; from img2dataset import download; download(**json.load(sys.stdin))"
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(kwargs), text=True, check=False)
    if proc.returncode != 0:
        raise DataError(f"{folder}: img2dataset exited with status {proc.returncode}")


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


def load_images(out: Path, status: pa.Table, output_format: str) -> dict[tuple[str, str], bytes]:
    ok = status.filter(pc.equal(status.column("status"), "success"))
    wanted = set(zip(ok.column("images_dir").to_pylist(), ok.column("key").to_pylist(), strict=True))
    images: dict[tuple[str, str], bytes] = {}
    for images_dir in sorted({d for d, _ in wanted}):
        folder = out / "images" / images_dir
        if output_format == "webdataset":
            for tar_path in sorted(folder.glob("*.tar")):
                with tarfile.open(tar_path) as tar:
                    for member in tar:
                        key, ext = member.name.rsplit(".", 1)
                        if ext in ("jpg", "png", "webp") and (images_dir, key) in wanted:
                            images[(images_dir, key)] = tar.extractfile(member).read()  # type: ignore[union-attr]
        else:
            for part in sorted(folder.glob("[0-9]*.parquet")):
                table = pq.read_table(part, columns=["key", "jpg"])
                for key, data in zip(
                    table.column("key").to_pylist(), table.column("jpg").to_pylist(), strict=True
                ):
                    if data is not None and (images_dir, key) in wanted:
                        images[(images_dir, key)] = data
    return images


def preload_models(recipe: Recipe) -> None:
    """Load every model the post_download stages will score with (each stage's ``Operator.preload``).

    Called before img2dataset starts: a missing or broken model folder (no config, unknown
    architecture, truncated weights) is one line before anything is fetched or written, not after
    every image is downloaded. The loader caches per process, so post_download reuses the models.
    """
    for stage in recipe.post_download:
        if stage.op.preload is not None:
            stage.op.preload(stage.params, PIXELS)


def post_download(
    recipe: Recipe, rows: pa.Table, status: pa.Table, images: dict, out: Path
) -> dict[str, Any]:
    """Run ``recipe.post_download`` on the downloaded rows; write kept/dropped/stats like a run."""
    ok = status.filter(pc.equal(status.column("status"), "success"))
    table = rows.join(ok.drop_columns(["URL", "hash"]), "row_id", join_type="inner").sort_by("row_id")
    blobs = [
        images.get(k)
        for k in zip(table.column("images_dir").to_pylist(), table.column("key").to_pylist(), strict=True)
    ]
    alive = table.append_column("image", pa.array(blobs, pa.binary()))
    kept_schema = alive.drop_columns(["image"]).schema
    for stage in recipe.post_download:
        for name, typ in stage.op.outputs.items():
            if name not in kept_schema.names:
                kept_schema = kept_schema.append(pa.field(name, typ))
    dropped_parts, stages = [], []
    for stage in recipe.post_download:
        counts, t0 = StageCounts(), time.perf_counter()
        counts.rows_in = alive.num_rows
        if alive.num_rows:
            res = stage.op.fn(alive, StageContext(str(out), PIXELS), **stage.params)
            alive = with_columns(alive, res.columns)
            keep = pa.array(np.asarray(res.keep, dtype=bool))
            dropped = alive.filter(pc.invert(keep))
            reasons = res.reason.filter(pc.invert(keep))
            counts.dropped = Counter({str(k): v for k, v in Counter(reasons.to_pylist()).items()})
            dropped = dropped.append_column(STAGE_COL, pa.array([stage.name] * dropped.num_rows, pa.string()))
            dropped_parts.append(dropped.append_column(REASON_COL, reasons))
            alive = alive.filter(keep)
        counts.rows_out, counts.seconds = alive.num_rows, time.perf_counter() - t0
        stages.append({"stage": stage.name, "params": stage.params, **counts.to_dict()})
    dropped_schema = kept_schema.append(pa.field(STAGE_COL, pa.string())).append(
        pa.field(REASON_COL, pa.string())
    )
    write_parquet(out / "kept" / "part-00000.parquet", conform(alive, kept_schema))
    dropped = [conform(d, dropped_schema) for d in dropped_parts]
    write_parquet(
        out / "dropped" / "part-00000.parquet",
        pa.concat_tables(dropped) if dropped else dropped_schema.empty_table(),
    )
    return {"rows_in": table.num_rows, "rows_out": alive.num_rows, "stages": stages}


def download_run(
    run_dir: str | Path,
    out: str | Path,
    options: DownloadOptions,
    *,
    retry_failed: bool = False,
    recipe_name: str | None = None,
) -> dict[str, Any]:
    """Download (or retry the failures of) a curation run; returns the summary in OUT/stats.json."""
    run_dir, out = Path(run_dir), Path(out)
    recipe = _recipe(run_dir, recipe_name)
    rows = load_rows(run_dir)
    status_path = out / "status.parquet"
    previous = pq.read_table(status_path) if status_path.exists() else None
    if retry_failed:
        if previous is None:
            raise ConfigError(
                f"{out}: nothing to retry, no status.parquet (run without --retry-failed first)"
            )
        failed_ids = previous.filter(pc.not_equal(previous.column("status"), "success")).column("row_id")
        todo = rows.filter(pc.is_in(rows.column("row_id"), failed_ids))
        attempt_no = int(pc.max(previous.column("attempt")).as_py() or 0) + 1
    else:
        if previous is not None:
            raise ConfigError(f"{out}: already downloaded; use --retry-failed, or choose another --out")
        todo, attempt_no = rows, 1
    preload_models(recipe)  # a broken model folder stops here, before img2dataset writes anything
    if todo.num_rows:
        folder = out / "images" / f"attempt-{attempt_no}"
        run_img2dataset(todo, folder, options)
        attempt = read_attempt(folder, attempt_no)
    else:
        attempt = None
    status = merge_status(rows, previous, attempt) if attempt is not None else previous
    write_parquet(status_path, status)
    images = load_images(out, status, options.output_format)
    post = post_download(recipe, rows, status, images, out)
    counts = Counter(status.column("status").to_pylist())
    errors = Counter(e for e in status.column("error_message").to_pylist() if e)
    summary = {
        "rows": rows.num_rows,
        "attempted": todo.num_rows,
        "attempt": attempt_no,
        "success": counts.get("success", 0),
        "failed": rows.num_rows - counts.get("success", 0),
        "status": dict(counts),
        "errors": dict(errors.most_common(20)),
        "kept": post["rows_out"],
        "post_download": post,
        "options": asdict(options),
        "recipe": recipe.name,
    }
    write_json(out / "stats.json", summary)
    write_text(out / "recipe.resolved.yaml", recipe.to_yaml())
    return summary


def _recipe(run_dir: Path, name: str | None) -> Recipe:
    if name is not None:
        return load_recipe(name)
    resolved = run_dir / "recipe.resolved.yaml"
    if not resolved.exists():
        raise DataError(f"{run_dir}: no recipe.resolved.yaml; pass --recipe")
    return load_recipe(str(resolved))
