"""Throughput of the model-scored curation stages on pixels: images/s per core, batched vs one at a time.

    .venv/bin/python bench/bench_model_stages.py [ROWS]

Encodes ROWS (default: one scorer batch, 256) scenes of a held-out world (seed 1) as ``t2iscope
world serve`` sends them, long side capped at img2dataset's 256 px, and times the ``aesthetic`` and
``watermark`` stages (``source: model``) with the shipped models/ through ``curate.scorers``.

1. Each stage as ``ImageScorer`` runs it (decode JPEG -> 64 px RGB, then tiny-CLIP image tower +
   aesthetic MLP, or the watermark CNN), decoding alone, and both stages (their seconds per image
   added). Batched: the scorers' own batches (``scorers.BATCH`` images per call) over all images.
   The baseline, measured in the same run: one image per call (a per-row UDF) over every 4th
   image (the same mix of sizes). torch on 1 thread (the per-core figures), then on 2.
2. Each model's forward pass alone on decoded pixels by batch size, on 1 thread: where the
   batched speed-up comes from, and which batch each model prefers.

Models load before timing (once per process, as in a worker); each figure is the best of 3 runs.
The load average is printed first: on a shared machine, figures move with it (2 threads most).
"""

from __future__ import annotations

import functools
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2iscope.curate.scorers import BATCH, aesthetic_scorer, decode, watermark_scorer
from t2iscope.curate.world import layout
from t2iscope.curate.world.make import make_world
from t2iscope.curate.world.serve import WorldServer

EVERY = 4  # the baseline times every 4th image: one per call is slow
THREADS = (1, 2)
MODEL_BATCHES = (1, 16, 64, BATCH)


def encoded_images(rows: int, folder: Path) -> list[bytes]:
    """The world's scenes as JPEGs, as the world server sends them to img2dataset."""
    make_world(folder, rows, seed=1, images=True, progress=False)
    server = WorldServer(folder, port=0, max_side=256)
    server.server_close()  # only its JPEG encoder is needed
    return [server.jpeg(row) for row in layout.read_table(folder, "truth").to_pylist()]


def seconds_per_item(fn: Callable[[Any], object], items: Sequence[Any], per_call: int) -> float:
    """Seconds per item of ``fn`` over ``items``, ``per_call`` items per call (best of 3 runs)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for i in range(0, len(items), per_call):
            fn(items[i : i + per_call])
        best = min(best, time.perf_counter() - start)
    return best / len(items)


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else BATCH
    with tempfile.TemporaryDirectory() as tmp:
        images = encoded_images(rows, Path(tmp) / "w")
    aesthetic, watermark = aesthetic_scorer(), watermark_scorer()
    size = aesthetic.model.input_size
    assert watermark.model.input_size == size, "both models take the same decoded pixels"
    kib = np.mean([len(b) for b in images]) / 1024
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{len(images)} JPEGs (mean {kib:.1f} KiB), {os.cpu_count()} cores, load average {load}")

    header = (
        f"{'stage':<34}{'threads':>8}{'batched img/s':>15}{'per core':>10}{'one at a time':>15}{'ratio':>8}"
    )
    print(f"\n{header}")

    def decode_all(blobs: Sequence[bytes]) -> list[np.ndarray | None]:
        return [decode(b, size) for b in blobs]

    steps = {
        f"decode JPEG -> {size} px RGB": decode_all,
        "aesthetic (decode + CLIP + MLP)": aesthetic,
        "watermark (decode + CNN)": watermark,
    }
    for threads in THREADS:
        torch.set_num_threads(threads)
        both = np.zeros(2)
        for name, fn in steps.items():
            seconds = np.array(
                [seconds_per_item(fn, images, BATCH), seconds_per_item(fn, images[::EVERY], 1)]
            )
            if fn is not decode_all:  # each stage decodes its images itself
                both += seconds
            _row(name, threads, *seconds)
        _row("both stages", threads, *both)

    torch.set_num_threads(1)
    pixels = torch.from_numpy(np.stack([decode(b, size) for b in images])).permute(0, 3, 1, 2)
    print(f"\nmodel forward on decoded pixels, 1 thread, img/s at batch {', '.join(map(str, MODEL_BATCHES))}")
    for name, model in (
        ("CLIP image tower + aesthetic MLP", aesthetic.model),
        ("watermark CNN", watermark.model),
    ):
        rates = [
            1 / seconds_per_item(functools.partial(model.score, batch=b), pixels, b) for b in MODEL_BATCHES
        ]
        print(f"{name:<34}" + "".join(f"{r:>9.1f}" for r in rates))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    print(f"\npeak RSS {peak:.0f} MB")


def _row(name: str, threads: int, batched_s: float, single_s: float) -> None:
    batched, single = 1 / batched_s, 1 / single_s
    rates = f"{batched:>15.1f}{batched / threads:>10.1f}{single:>15.1f}"
    print(f"{name:<34}{threads:>8}{rates}{batched / single:>7.1f}x")


if __name__ == "__main__":
    main()
