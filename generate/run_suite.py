"""Run a suite into a folder: PNGs plus ``manifest.parquet``, resumable after any kill.

Order of writes per batch: every image atomically, then the manifest rewritten atomically with
the batch's rows. A kill at any point leaves only complete files; a row exists only for an image
that exists. One writer at a time: the run holds the folder's lock (``t2iscope.locks``) from its
first read of the manifest to its last write, so a second run into the same folder is refused
with one line instead of interleaving its images with the first's manifest.

A rerun skips jobs whose row is in the manifest with its image on disk and the same prompt,
negative prompt, size and watermark as the suite now asks for, and regenerates the rest
(deterministically, so an orphan image is simply rewritten with the same pixels; an edited prompt
is generated anew). A folder holding another suite, images of another model, or files that are
no suite run at all is refused with one line.

The Ray engine (``generate.suite_ray``) plans the same jobs with :func:`plan_run` and generates
them with :func:`generate_batch` on its workers, each of which writes its rows to a manifest part
under ``.parts/`` after each batch's images. Every run, of either engine, first folds parts left
by an interrupted Ray run into the manifest, so their images are not made again.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from t2iscope import __version__, fileio
from t2iscope.errors import ConfigError, DataError
from t2iscope.generate.conditioning import network_fields
from t2iscope.generate.limits import MAX_BATCH_SIZE, MAX_SUITE_IMAGES
from t2iscope.generate.models import Model
from t2iscope.generate.output import OutputOptions, first_pass_size, sampler_and_schedule, save
from t2iscope.generate.params import check_number, option_name
from t2iscope.generate.schedules import AUTOMATIC
from t2iscope.generate.suites import Job, Suite, expand, grid_size
from t2iscope.generate.treering import latent_mark
from t2iscope.generate.txt2img import txt2img
from t2iscope.locks import is_empty, output_lock
from t2iscope.paths import REPO_ROOT

MANIFEST = "manifest.parquet"
RUN_JSON = "run.json"
PARTS = ".parts"  # manifest parts of Ray workers: PARTS/<run>-<shard>.parquet, folded in by the next run
SCHEMA = pa.schema(
    [
        ("suite", pa.string()),
        ("prompt_id", pa.string()),
        ("prompt", pa.string()),
        ("negative_prompt", pa.string()),
        ("language", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("seed", pa.int64()),
        ("steps", pa.int32()),
        ("cfg_scale", pa.float64()),
        ("sampler", pa.string()),
        ("width", pa.int32()),  # the first pass's size (A1111's Size): hires fix images are hr_scale x larger
        ("height", pa.int32()),
        ("mode", pa.string()),
        ("strength", pa.float64()),
        ("model_id", pa.string()),
        ("image_path", pa.string()),
        ("watermark_method", pa.string()),
        ("watermark_payload", pa.string()),
        ("elapsed_s", pa.float64()),
        ("cfg_rescale", pa.float64()),
        ("output_scale", pa.int32()),
        ("key", pa.string()),
        ("expect", pa.string()),  # JSON: what the prompt asks for (generate.attributes), "{}" if nothing
        ("vocabulary", pa.string()),  # JSON: the suite's labels and templates for judges
        # A1111 settings (issue 17); null in rows of folders made before them, which used the defaults
        ("scheduler", pa.string()),  # the schedule type used: the sampler's own for Automatic
        ("subseed", pa.int64()),
        ("subseed_strength", pa.float64()),
        ("clip_skip", pa.int32()),
        ("emphasis", pa.string()),
        ("enable_hr", pa.bool_()),
        ("hr_scale", pa.float64()),  # hires fix fields: null without enable_hr
        ("hr_upscaler", pa.string()),
        ("hr_second_pass_steps", pa.int32()),
        ("denoising_strength", pa.float64()),
        ("model_hash", pa.string()),  # A1111's short sha256 of a single-file checkpoint, else null
    ]
)


@dataclass(frozen=True)
class RunSummary:
    total: int
    skipped: int
    generated: int
    manifest: Path


@dataclass(frozen=True)
class Plan:
    """What a run will do: ``jobs`` in grid order, the ``rows`` kept, the ``batches`` still to make.

    ``batches`` group the pending jobs exactly as the local run generates them, so an engine that
    hands whole batches to its workers makes the same images (a batch's images depend, by float
    rounding only, on the batch they are made in).
    """

    jobs: list[Job]
    order: dict[str, int]
    rows: dict[str, dict]
    batches: list[list[Job]]

    @property
    def pending(self) -> int:
        return sum(map(len, self.batches))


def read_rows(path: Path) -> dict[str, dict]:
    """Rows of a manifest (or a manifest part) by key, in ``SCHEMA``; DataError naming the file."""
    try:
        table = pq.read_table(path)
        missing = [c for c in ("key", "suite", "image_path") if c not in table.column_names]
        if missing:
            raise DataError(f"{path}: not a suite manifest (no column {', '.join(missing)})")
        columns = [
            table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
            for f in SCHEMA
        ]
        rows = pa.Table.from_arrays(columns, schema=SCHEMA).to_pylist()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise DataError(f"{path}: unreadable manifest ({exc})") from None
    return {row["key"]: row for row in rows}


def read_manifest(out: Path) -> dict[str, dict]:
    """Rows of an existing manifest by key ({} when there is none yet).

    Raises DataError naming the file when it is unreadable or not a suite manifest (no ``key``,
    ``suite`` or ``image_path`` column, or a column of another type); columns the contract added
    later (``cfg_rescale``...) may be missing and read as null.
    """
    path = out / MANIFEST
    return read_rows(path) if path.exists() else {}


def part_files(out: Path) -> list[Path]:
    """Manifest parts written by Ray workers and not yet folded into the manifest, by name."""
    return sorted((out / PARTS).glob("*.parquet"))


def read_parts(out: Path) -> dict[str, dict]:
    """Rows of every manifest part by key; a part is newer than the manifest, so its rows win.

    Each part is written atomically after its batch's images, so every row names an image that
    was complete when the row was written. DataError names an unreadable part.
    """
    rows: dict[str, dict] = {}
    for path in part_files(out):
        rows.update(read_rows(path))
    return rows


def write_part(path: Path, rows: list[dict]) -> None:
    """Write a manifest part (rows in ``SCHEMA``) atomically."""
    fileio.write_parquet(path, pa.Table.from_pylist(rows, schema=SCHEMA))


def remove_parts(out: Path) -> None:
    """Delete the parts once their rows are in the manifest (written before, atomically)."""
    for path in part_files(out):
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty: a part of a worker still running, kept
        (out / PARTS).rmdir()


def _payload(opts: OutputOptions) -> str | None:
    payload = opts.method_payload
    return payload.decode("latin-1") if payload else None


def _done(out: Path, row: dict | None, job: Job, opts: OutputOptions) -> bool:
    """Whether ``row`` records ``job`` as the suite now asks for it, with its image on disk."""
    p = job.params
    return (
        row is not None
        and row["image_path"] == job.image_path
        and (out / job.image_path).is_file()
        and (row["prompt"], row["negative_prompt"]) == (p.prompt, p.negative_prompt)
        and p.width in (None, row["width"])
        and p.height in (None, row["height"])
        and (row["watermark_method"], row["watermark_payload"]) == (opts.watermark, _payload(opts))
        and opts.upscale in (None, row["output_scale"])
    )


def _kept(out: Path, row: dict) -> bool:
    """A row the run does not ask for (an earlier --limit) stays if it names its own image, on disk."""
    path, images = row["image_path"], (out / "images").resolve()
    return (
        path == f"images/{row['key']}.png"
        and (out / path).resolve().is_relative_to(images)
        and (out / path).is_file()
    )


def _row(
    job: Job, model: Model, size: tuple[int, int], opts: OutputOptions, scale: int, elapsed: float
) -> dict:
    p = job.params
    hires = p.enable_hr
    schedule = sampler_and_schedule(p)[1]
    return {
        "suite": job.suite,
        "prompt_id": job.prompt_id,
        "prompt": p.prompt,
        "negative_prompt": p.negative_prompt,
        "language": job.language,
        "tags": list(job.tags),
        "seed": p.seed,
        "steps": p.steps,
        "cfg_scale": p.cfg_scale,
        "cfg_rescale": p.cfg_rescale,
        "sampler": p.sampler,
        "width": size[0],
        "height": size[1],
        "mode": "txt2img",
        "strength": None,
        "model_id": model.model_id,
        "image_path": job.image_path,
        "watermark_method": opts.watermark,
        "watermark_payload": _payload(opts),
        "elapsed_s": elapsed,
        "output_scale": scale,
        "key": job.key,
        "expect": job.expect,
        "vocabulary": job.vocabulary,
        "scheduler": schedule or AUTOMATIC,
        "subseed": p.subseed,
        "subseed_strength": p.subseed_strength,
        "clip_skip": p.clip_skip,
        "emphasis": p.emphasis,
        "enable_hr": hires,
        "hr_scale": p.hr_scale if hires else None,
        "hr_upscaler": p.hr_upscaler if hires else None,
        "hr_second_pass_steps": p.hr_second_pass_steps if hires else None,
        "denoising_strength": p.denoising_strength if hires else None,
        "model_hash": model.model_hash,
    }


def write_manifest(out: Path, rows: dict[str, dict], order: dict[str, int]) -> None:
    """Write ``rows`` atomically in grid order (``order``: key -> index), rows not in the grid last."""
    ranked = sorted(rows.values(), key=lambda r: (order.get(r["key"], len(order)), r["key"]))
    fileio.write_parquet(out / MANIFEST, pa.Table.from_pylist(ranked, schema=SCHEMA))


def _batches(jobs: list[Job], batch_size: int) -> list[list[Job]]:
    """Jobs with identical settings share batches; order within a group is kept."""
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.params.settings_key(), []).append(job)
    return [g[i : i + batch_size] for g in groups.values() for i in range(0, len(g), batch_size)]


def _remove_stale_temps(out: Path) -> None:
    """Temp files of a killed run (fileio writes ``.NAME.*.tmp`` beside each target) are garbage."""
    for tmp in out.glob("**/.*.tmp"):
        tmp.unlink(missing_ok=True)


def _provenance(suite: Suite, out: Path, model_id: str) -> None:
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    fileio.write_text(out / "suite.yaml", Path(suite.source).read_text(encoding="utf-8"))
    fileio.write_json(
        out / RUN_JSON,
        {"suite": suite.name, "model_id": model_id, "t2iscope": __version__, "git_commit": commit or None},
    )


def _check_folder(out: Path, suite: Suite, rows: dict[str, dict], model_id: str | None) -> None:
    """Refuse a folder that holds another suite, another model's images, or no suite run at all."""
    run = out / RUN_JSON
    recorded: dict = {}
    if run.is_file():
        try:
            recorded = json.loads(run.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{run}: unreadable ({exc})") from None
        if not isinstance(recorded, dict):
            raise DataError(f"{run}: expected a JSON object")
    elif not rows and not is_empty(out):
        raise ConfigError(f"{out}: holds files but no suite run ({RUN_JSON}); choose an empty or new --out")
    suites = {r["suite"] for r in rows.values()} | (
        {str(recorded["suite"])} if "suite" in recorded else set()
    )
    if other := sorted(suites - {suite.name}):
        raise ConfigError(f"{out}: holds suite {other[0]!r}, not {suite.name!r}; use another --out")
    models = {r["model_id"] for r in rows.values()} - {None}
    if model_id is not None and (other := sorted(models - {model_id})):
        raise ConfigError(f"{out}: holds images of model {other[0]!r}, not {model_id!r}; use another --out")


def check_run(
    suite: Suite, out: str | Path, limit: int | None, batch_size: int, output: OutputOptions | None, cli: bool
) -> tuple[Path, int, OutputOptions]:
    """Step 1 of every engine, before the folder is touched: (out, images asked for, output options).

    Raises ConfigError naming the field (the option when ``cli``) for a bad ``limit`` or
    ``batch_size``, a grid over ``MAX_SUITE_IMAGES`` or an ``out`` under a file.
    """
    output = (output or OutputOptions()).check(cli=cli)
    check_number("batch_size", batch_size, 1, MAX_BATCH_SIZE, integer=True, cli=cli)
    if limit is not None and not (isinstance(limit, int) and limit >= 1):
        raise ConfigError(f"{option_name('limit', cli)} must be an integer >= 1, got {limit!r}")
    total = grid_size(suite)
    count = total if limit is None else min(limit, total)
    if count > MAX_SUITE_IMAGES:
        raise ConfigError(
            f"{suite.source}: the grid has {total:,} images, more than one run may make "
            f"({MAX_SUITE_IMAGES:,}); pass {option_name('limit', cli)} or split the suite"
        )
    out = Path(out)
    existing = next(p for p in (out, *out.parents) if p.exists())  # the root always does
    if not existing.is_dir():
        raise ConfigError(f"{out}: {existing} is a file; {option_name('out', cli)} names a folder")
    return out, count, output


def plan_run(
    suite: Suite, out: Path, count: int, batch_size: int, output: OutputOptions, model_id: str | None
) -> Plan:
    """Step 2, holding the folder's lock: fold in parts, check the folder, drop stale rows, plan.

    Expands the first ``count`` jobs lazily (a repeated value is one job); a job is done if its
    row (from the manifest or a part) matches it and its image is on disk. Rows that changed (parts
    folded in, stale rows out, current metadata in) are written to the manifest before anything
    else, then the parts are deleted. Raises ConfigError for a folder of another suite or model,
    DataError for an unreadable manifest or part.
    """
    jobs = list({job.key: job for job in itertools.islice(expand(suite), count)}.values())
    order = {job.key: i for i, job in enumerate(jobs)}
    rows = read_manifest(out)
    parts = read_parts(out)
    merged = {**rows, **parts}
    _check_folder(out, suite, merged, model_id)
    _remove_stale_temps(out)
    pending = [job for job in jobs if not _done(out, merged.get(job.key), job, output)]
    todo = {job.key for job in pending}
    kept = {k: r for k, r in merged.items() if k not in todo and (k in order or _kept(out, r))}
    for job in jobs:  # tags and expectations are metadata: a done row takes the suite's current ones
        if job.key in kept:
            meta = {"tags": list(job.tags), "expect": job.expect, "vocabulary": job.vocabulary}
            kept[job.key] = {**kept[job.key], **meta}
    if kept != rows:  # stale rows out (before their images are rewritten), current metadata in
        write_manifest(out, kept, order)
    if parts:
        remove_parts(out)
    return Plan(jobs, order, kept, _batches(pending, batch_size))


def start_generation(
    suite: Suite,
    out: Path,
    rows: dict[str, dict],
    model_id: str,
    native_size: int,
    output: OutputOptions,
    cli: bool = False,
) -> None:
    """Step 3, once the model is known: check the output size and the model, record provenance.

    Raises ConfigError for an upscale too small to watermark or a folder of another model.
    """
    output.check_size(suite.width or native_size, suite.height or native_size, cli=cli)
    _check_folder(out, suite, rows, model_id)
    _provenance(suite, out, model_id)


def generate_batch(model: Model, batch: list[Job], out: Path, output: OutputOptions) -> list[dict]:
    """Generate one batch (jobs sharing settings) and save its images; returns their manifest rows.

    Images are written atomically, one by one; the caller records the rows only after this returns,
    so a row never names an image that is not complete. ``elapsed_s`` is the batch's sampling time
    shared equally, plus the image's own save time (seconds). A latent watermark (``treering``) is
    written into the initial noise here, as ``generate txt2img`` does; the others when saving.
    """
    start = time.perf_counter()
    images = txt2img(model, [job.params for job in batch], mark=latent_mark(output.watermark))
    share = (time.perf_counter() - start) / len(batch)
    rows = []
    for job, image in zip(batch, images, strict=True):
        start = time.perf_counter()
        scale = save(
            out / job.image_path,
            image,
            job.params,
            model.model_id,
            output,
            model_hash=model.model_hash,
            extra=network_fields(model, job.params),
        )
        elapsed = share + time.perf_counter() - start
        size = first_pass_size(job.params, image.size)  # A1111's Size, as the infotext's
        rows.append(_row(job, model, size, output, scale, elapsed))
    return rows


def run_suite(
    suite: Suite,
    out: str | Path,
    model: Model | Callable[[], Model],
    *,
    limit: int | None = None,
    batch_size: int = 8,
    output: OutputOptions | None = None,
    model_id: str | None = None,
    cli: bool = False,
) -> RunSummary:
    """Generate the jobs of ``suite`` not yet in ``out``; ``model`` may be a loader, called only if needed.

    ``limit`` takes the first N images of the grid; the grid (or ``limit`` when smaller) may hold
    at most ``limits.MAX_SUITE_IMAGES`` (1,000,000) images, counted without expanding it.
    ``batch_size`` is 1..64 images per U-Net batch. ``model_id`` names a loader's model, so a folder
    of another model's images is refused before loading it. Errors name the field, or the option
    when ``cli``: ConfigError for options and folders in use or holding something else (before
    anything is written), DataError for an unreadable manifest.
    """
    # 1. Check options and the grid's size, before the folder is touched
    out, count, output = check_run(suite, out, limit, batch_size, output, cli)
    if isinstance(model, Model):
        model_id = model.model_id
    with output_lock(out):
        # 2. Plan: what is done (its row matches and its image is on disk) is kept, the rest batched
        plan = plan_run(suite, out, count, batch_size, output, model_id)
        rows, total = dict(plan.rows), len(plan.jobs)
        if not plan.batches:
            return RunSummary(total, total, 0, out / MANIFEST)
        # 3. Generate batch by batch: images first, then the manifest
        model = model if isinstance(model, Model) else model()
        start_generation(suite, out, rows, model.model_id, model.native_size, output, cli)
        with tqdm(total=plan.pending, desc=f"suite {suite.name}", unit="img") as bar:
            for batch in plan.batches:
                rows.update((row["key"], row) for row in generate_batch(model, batch, out, output))
                write_manifest(out, rows, plan.order)
                bar.update(len(batch))
    return RunSummary(total, total - plan.pending, plan.pending, out / MANIFEST)
