"""Run a suite into a folder: PNGs plus ``manifest.parquet``, resumable after any kill.

Order of writes per batch: every image atomically, then the manifest rewritten atomically with
the batch's rows. A kill at any point leaves only complete files; a row exists only for an image
that exists. A rerun skips rows already in the manifest whose image is on disk, and regenerates
the rest (deterministically, so an orphan image is simply rewritten with the same pixels).
"""

from __future__ import annotations

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
from t2iscope.generate.models import Model
from t2iscope.generate.output import OutputOptions, save
from t2iscope.generate.suites import Job, Suite, expand
from t2iscope.generate.txt2img import txt2img
from t2iscope.paths import REPO_ROOT

MANIFEST = "manifest.parquet"
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
        ("width", pa.int32()),
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
    ]
)


@dataclass(frozen=True)
class RunSummary:
    total: int
    skipped: int
    generated: int
    manifest: Path


def read_manifest(out: Path) -> dict[str, dict]:
    """Rows of an existing manifest by key ({} when there is none yet)."""
    path = out / MANIFEST
    if not path.exists():
        return {}
    try:
        rows = pq.read_table(path).to_pylist()
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: unreadable manifest ({exc})") from None
    return {row["key"]: row for row in rows}


def _row(
    job: Job, model: Model, size: tuple[int, int], opts: OutputOptions, scale: int, elapsed: float
) -> dict:
    p = job.params
    payload = opts.method_payload
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
        "watermark_payload": payload.decode("latin-1") if payload else None,
        "elapsed_s": elapsed,
        "output_scale": scale,
        "key": job.key,
    }


def _write_manifest(out: Path, rows: dict[str, dict], order: dict[str, int]) -> None:
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
        out / "run.json",
        {"suite": suite.name, "model_id": model_id, "t2iscope": __version__, "git_commit": commit or None},
    )


def run_suite(
    suite: Suite,
    out: str | Path,
    model: Model | Callable[[], Model],
    *,
    limit: int | None = None,
    batch_size: int = 8,
    output: OutputOptions | None = None,
) -> RunSummary:
    """Generate the jobs of ``suite`` not yet in ``out``; ``model`` may be a loader, called only if needed."""
    # 1. Check inputs and expand the grid
    output = (output or OutputOptions()).check()
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be >= 1, got {limit}")
    out = Path(out)
    jobs = expand(suite)[:limit]
    order = {job.key: i for i, job in enumerate(jobs)}
    # 2. Resume: a row counts as done only if its image is on disk too
    rows = read_manifest(out)
    other = {r["suite"] for r in rows.values()} - {suite.name}
    if other:
        raise ConfigError(f"{out}: holds suite {sorted(other)[0]!r}, not {suite.name!r}; use another --out")
    rows = {k: r for k, r in rows.items() if (out / r["image_path"]).is_file()}
    _remove_stale_temps(out)
    pending = [job for job in jobs if job.key not in rows]
    if not pending:
        return RunSummary(len(jobs), len(jobs), 0, out / MANIFEST)
    # 3. Generate batch by batch: images first, then the manifest
    model = model if isinstance(model, Model) else model()
    _provenance(suite, out, model.model_id)
    with tqdm(total=len(pending), desc=f"suite {suite.name}", unit="img") as bar:
        for batch in _batches(pending, batch_size):
            start = time.perf_counter()
            images = txt2img(model, [job.params for job in batch])
            share = (time.perf_counter() - start) / len(batch)
            for job, image in zip(batch, images, strict=True):
                start = time.perf_counter()
                scale = save(out / job.image_path, image, job.params, model.model_id, output)
                elapsed = share + time.perf_counter() - start
                rows[job.key] = _row(job, model, image.size, output, scale, elapsed)
            _write_manifest(out, rows, order)
            bar.update(len(batch))
    return RunSummary(len(jobs), len(jobs) - len(pending), len(pending), out / MANIFEST)
