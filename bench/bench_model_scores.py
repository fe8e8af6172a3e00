"""Throughput of the model-scored curation stages on downloaded pixels: batched vs one image at a time.

    .venv/bin/python bench/bench_model_scores.py [ROWS]

Makes a held-out world (seed 1), encodes each scene as the world server serves it with the long side
capped at img2dataset's 256 px, and times the curation scorers (decode + resize, CLIP image tower +
aesthetic MLP, watermark CNN) with the shipped models: the scorers' own batches, and the same
scorers given one image per call (the baseline: a per-row UDF), on the first 64 images. Prints
images/s, per core, and the ratio measured in the same run; "both stages" adds the two stages'
seconds per image. Models are loaded (once per process) before timing; best of 3 runs.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from t2iscope.curate.scorers import ImageScorer, aesthetic_scorer, watermark_scorer
from t2iscope.curate.world import layout
from t2iscope.curate.world.make import make_world
from t2iscope.curate.world.serve import WorldServer

SINGLE = 64  # images timed one per call


def encoded_images(rows: int, folder: Path) -> list[bytes]:
    make_world(folder, rows, seed=1, images=True, progress=False)
    server = WorldServer(folder, port=0, max_side=256)
    server.server_close()  # only the JPEG encoder is needed
    return [server.jpeg(row) for row in layout.read_table(folder, "truth").to_pylist()]


def rate(fn: ImageScorer, images: list[bytes], per_call: int) -> float:
    """Images per second of ``fn`` over ``images``, ``per_call`` images per call (best of 3 runs)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for i in range(0, len(images), per_call):
            fn(images[i : i + per_call])
        best = min(best, time.perf_counter() - start)
    return len(images) / best


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 512
    with tempfile.TemporaryDirectory() as tmp:
        images = encoded_images(rows, Path(tmp) / "w")
    threads = torch.get_num_threads()
    print(f"{len(images)} JPEGs (mean {np.mean([len(b) for b in images]) / 1024:.1f} KiB), {threads} threads")
    seconds = {}
    for name, scorer in (("aesthetic", aesthetic_scorer()), ("watermark", watermark_scorer())):
        # one image per call is slow: time it on a slice, enough for a stable rate
        batched, single = rate(scorer, images, len(images)), rate(scorer, images[:SINGLE], 1)
        seconds[name] = (1 / batched, 1 / single)
        print(
            f"{name:>10}: batched {batched:6.1f} img/s ({batched / threads:5.1f}/core), "
            f"one at a time {single:5.1f} img/s: {batched / single:.1f}x"
        )
    batched, single = (1 / sum(s[i] for s in seconds.values()) for i in (0, 1))
    print(f"both stages: {batched:.1f} img/s batched, {single:.1f} one at a time: {batched / single:.1f}x")


if __name__ == "__main__":
    main()
