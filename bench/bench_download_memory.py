"""Peak memory of ``curate download``'s post-download phase against download size (issue 14).

For each size the bench writes, once, under ``runs/bench/download_memory/<n>/``, what img2dataset
leaves after downloading n images, without any network: a run folder (``kept/`` with n rows and
a recipe whose ``post_download`` is ``resolution`` then ``dedup: {by: image}``, the stateful
stage), and a download folder holding webdataset shards of 1,000 rows (``NNNNN.tar`` with a
256x256 noise JPEG of ~60 KB per row, each unique, ``NNNNN.parquet`` metadata,
``NNNNN_stats.json``), ``status.parquet`` and no ``stats.json``: a download killed after its
status was written. ``t2iscope curate download RUN --out SHARDS`` then runs only the
post-download stages; it runs as the only child of a fresh Python process, which reports the
child's peak RSS (``getrusage(RUSAGE_CHILDREN).ru_maxrss``). Before the fix the phase held every
image of the download in memory (twice: a dict, then a table column), so its peak grew with the
image bytes; flat means the ratio to the smallest size stays near 1. Prints, asserts nothing.

    .venv/bin/python bench/bench_download_memory.py [--sizes 2000 8000] [--batch-rows N]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tarfile
from pathlib import Path

from peak_rss import measure

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "runs" / "bench" / "download_memory"
ROWS_PER_SHARD = 1000
RECIPE = """\
name: bench-download-memory
stages: []
post_download:
  - resolution: {min_side: 64}
  - dedup: {by: image}
"""


def _jpegs(count: int) -> list[bytes]:
    """``count`` distinct 256x256 noise JPEGs (noise does not compress: ~60 KB each)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def make_download(rows: int) -> tuple[Path, Path]:
    """(run folder, download folder) of ``rows`` downloaded images, written once and reused."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from t2iscope.curate.download import _identity, load_rows, merge_status, read_attempt
    from t2iscope.fileio import write_json, write_parquet

    folder = DATA / str(rows)
    run, shards = folder / "run", folder / "shards"
    if (folder / "done").exists():
        return run, shards
    shutil.rmtree(folder, ignore_errors=True)
    (run / "kept").mkdir(parents=True)
    urls = [f"https://img{i % 7}.example.com/p/{i}.jpg" for i in range(rows)]
    kept = pa.table(
        {
            "URL": urls,
            "TEXT": [f"a photo number {i}" for i in range(rows)],
            "WIDTH": pa.array([256] * rows, pa.int64()),
            "HEIGHT": pa.array([256] * rows, pa.int64()),
            "hash": pa.array(range(rows), pa.int64()),
        }
    )
    pq.write_table(kept, run / "kept" / "part-00000.parquet")
    (run / "recipe.resolved.yaml").write_text(RECIPE)
    attempt = shards / "images" / "attempt-1"
    attempt.mkdir(parents=True)
    bases = _jpegs(32)
    for shard, start in enumerate(range(0, rows, ROWS_PER_SHARD)):
        ids = range(start, min(rows, start + ROWS_PER_SHARD))
        keys = [f"{shard:05d}{i - start:04d}" for i in ids]
        with tarfile.open(attempt / f"{shard:05d}.tar", "w") as tar:
            for i, key in zip(ids, keys, strict=True):
                # unique bytes (a JPEG decoder ignores what follows its end marker): no duplicates
                for ext, data in (("jpg", bases[i % 32] + i.to_bytes(8, "little")), ("txt", b"x")):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        n = len(keys)
        meta = pa.table(
            {
                "row_id": pa.array(ids, pa.int64()),
                "key": keys,
                "status": ["success"] * n,
                "error_message": pa.nulls(n, pa.string()),
                "original_width": pa.array([256] * n, pa.int32()),
                "original_height": pa.array([256] * n, pa.int32()),
            }
        )
        pq.write_table(meta, attempt / f"{shard:05d}.parquet")
        (attempt / f"{shard:05d}_stats.json").write_text(json.dumps({"count": n, "successes": n}))
    write_json(shards / "_state" / "download.json", _identity(run))
    write_parquet(shards / "status.parquet", merge_status(load_rows(run), None, read_attempt(attempt, 1)))
    (folder / "done").touch()
    return run, shards


def run_once(run: Path, shards: Path, batch_rows: int | None) -> dict:
    """The post-download phase over ``shards`` in a fresh measuring process: {seconds, peak_mb, out}."""
    for name in ("kept", "dropped", "_state/post"):
        shutil.rmtree(shards / name, ignore_errors=True)
    (shards / "stats.json").unlink(missing_ok=True)  # back to "killed after status.parquet"
    cmd = [str(Path(sys.executable).with_name("t2iscope")), "curate", "download", str(run)]
    cmd += ["--out", str(shards)] + (["--batch-rows", str(batch_rows)] if batch_rows else [])
    return measure(cmd)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--batch-rows", type=int, default=None, help="(default: the command's own)")
    args = parser.parse_args()
    folders = {rows: make_download(rows) for rows in args.sizes}
    results = {rows: run_once(run, shards, args.batch_rows) for rows, (run, shards) in folders.items()}
    base = min(args.sizes)
    for rows, r in results.items():
        images_mb = sum(p.stat().st_size for p in folders[rows][1].glob("images/attempt-1/*.tar")) / 2**20
        print(
            f"{rows:>7,} images ({images_mb:5.0f} MB of shards)  {r['seconds']:6.1f}s  "
            f"peak RSS {r['peak_mb']:6.0f} MB  ({r['peak_mb'] / results[base]['peak_mb']:.2f}x the "
            f"{base:,}-image run)  [{r['out']}]"
        )


if __name__ == "__main__":
    main()
