"""Watermark robustness throughput: (image x attack) pairs per second, per method.

    .venv/bin/python bench/bench_audit_watermark.py [--images 4] [--rivagan]

Ours: ``robustness_rows`` (embed once per image, decode marked and unmarked per attack).
Baseline, same run: the naive loop many robustness scripts use, re-embedding the image before
each attack and decoding only the marked copy. Ratio > 1 means our audit does more (it also
measures the unmarked null for the FPR) in less time per pair.
"""

from __future__ import annotations

import argparse
import contextlib
import time

from t2iscope.errors import DataError
from t2iscope.evaluate.attacks import ATTACKS, DEFAULT_GRID, grid_pairs
from t2iscope.evaluate.audits.watermark import README_GRID, robustness_rows
from t2iscope.evaluate.images import skimage_photos
from t2iscope.generate import watermark


def naive(images: list, method: str, pairs: list[tuple[str, float]]) -> None:
    payload = watermark.default_payload(method)
    nbits = len(payload) * 8
    for _, img in images:
        for name, strength in pairs:
            marked = watermark.embed(img, method, payload)
            # too small after the attack: the naive loop just moves on
            with contextlib.suppress(DataError):
                watermark.decode_bits(ATTACKS.get(name)(marked, strength), method, nbits)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--rivagan", action="store_true", help="also rivaGan, on the README grid only")
    args = p.parse_args()
    images = skimage_photos(256, args.images)
    watermark.embed(images[0][1], "dwtDct")  # warm imports before timing
    runs = [(m, DEFAULT_GRID) for m in ("dwtDct", "dwtDctFixed", "dwtDctSvd")]
    runs += [("rivaGan", README_GRID)] if args.rivagan else []
    for method, grid in runs:
        pairs = grid_pairs(grid)
        n = len(images) * len(pairs)
        t = time.perf_counter()
        robustness_rows(images, [method], grid, "bench")
        ours = n / (time.perf_counter() - t)
        t = time.perf_counter()
        naive(images, method, pairs)
        base = n / (time.perf_counter() - t)
        print(
            f"{method:12s} {n:4d} pairs: ours {ours:6.1f} pairs/s (marked + unmarked decode), "
            f"naive {base:6.1f} pairs/s, ratio {ours / base:.2f}x"
        )


if __name__ == "__main__":
    main()
