"""Image features for the quality audit with the embedded CLIP on CPU: images/s, batched vs one by one.

    .venv/bin/python bench/bench_features.py [N]

Renders N (default 10,000) world scenes as PNG (the generations' format) and times
``evaluate.features.extract`` over them with the embedded tiny CLIP (``models/clip``):

1. cold: decode, clean-fid resize and encode in batches of ``features.BATCH``, writing the cache;
2. warm: the same images again, every feature read back from the cache (content hash only);
3. the baseline, in the same run: one image per ``encode`` call, over every 20th image.

torch runs on 1 thread (the per-core figure; on a shared machine more threads mostly wait).
The load average is printed first: figures move with it.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main(n: int) -> None:
    from t2iscope.curate.world import spec
    from t2iscope.curate.world.render import render_scene
    from t2iscope.evaluate.features import BATCH, FeatureCache, ImageSet, clip_encoder, extract

    torch.set_num_threads(1)
    print(f"load average {os.getloadavg()[0]:.1f}; torch threads {torch.get_num_threads()}; {n:,} images")
    rng = np.random.default_rng(0)
    kinds, colors, grounds = list(spec.KINDS), list(spec.COLORS), list(spec.BACKGROUNDS)
    blobs = []
    start = time.perf_counter()
    for i in range(n):
        kind = kinds[int(rng.integers(len(kinds)))]
        row = {
            "key": i,
            "kind": kind,
            "color": colors[int(rng.integers(len(colors)))],
            "background": grounds[int(rng.integers(len(grounds)))],
            "culture": "western" if kind in spec.CULTURE_KINDS else None,
            "legs": spec.KINDS[kind],
            "legs_expected": spec.KINDS[kind],
            "watermark": False,
            "unsafe": False,
            **dict.fromkeys(("blur", "noise", "low_contrast", "blockiness", "tiny"), 0.0),
        }
        buf = io.BytesIO()
        render_scene(row).save(buf, format="PNG")
        blobs.append(buf.getvalue())
    print(f"rendered in {time.perf_counter() - start:.1f}s (not timed below)")
    images = ImageSet("bench", tuple(map(str, range(n))), lambda: iter(blobs))
    encoder = clip_encoder()
    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(encoder, Path(tmp))
        start = time.perf_counter()
        feats = extract(images, encoder, cache, progress=False)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        extract(images, encoder, FeatureCache(encoder, Path(tmp)), progress=False)
        warm = time.perf_counter() - start
    assert feats.ok.all()
    few = blobs[::20]
    from t2iscope.evaluate.features import _decode

    start = time.perf_counter()
    for blob in few:
        encoder.encode(encoder.pixels(_decode(blob))[None])  # type: ignore[arg-type]
    single = (time.perf_counter() - start) / len(few)
    print(f"batched (batch {BATCH}), cold cache: {n / cold:8.0f} images/s  ({cold:.1f}s for {n:,})")
    print(f"warm cache (content hash only):     {n / warm:8.0f} images/s  ({warm:.1f}s)")
    print(f"one image per call (baseline):      {1 / single:8.0f} images/s  ({len(few)} images)")
    print(
        f"batched / one-by-one: {single * n / cold:.1f}x; "
        f"10k images batched: {10_000 * cold / n / 60:.1f} min"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
