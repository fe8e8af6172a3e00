"""Color adherence of a generator across CFG scales, with and without guidance rescale.

    .venv/bin/python docs/experiments/cfg_color_sweep.py models            # the shipped generator
    .venv/bin/python docs/experiments/cfg_color_sweep.py runs/train/models # a `make train` run

96 English prompts (the 48 color x kind cells of `generate train measure`, two seeds each), 25
PNDM steps, color judged by the world palette rule. Behind the "guidance overshoot" finding in
models/README.md: green is right at CFG 3 and collapses at 7.5 unless guidance is rescaled.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from t2iscope.generate import loaders
from t2iscope.generate.train.measure import COLOR_NAMES, GEN_SEED_BASE, generation_prompts, palette_color


def main() -> None:
    pipe = loaders.load_sd(Path(sys.argv[1] if len(sys.argv) > 1 else "models"), "cpu")
    cells = generation_prompts("en") * 2
    prompts = [p for p, _, _ in cells]
    want = np.array([c for _, c, _ in cells])
    for cfg, rescale in ((1.0, 0.0), (3.0, 0.0), (5.0, 0.0), (7.5, 0.0), (7.5, 0.7)):
        gens = [torch.Generator().manual_seed(GEN_SEED_BASE + i) for i in range(len(cells))]
        images = pipe(
            prompts, num_inference_steps=25, guidance_scale=cfg, guidance_rescale=rescale,
            generator=gens, output_type="np",
        ).images  # fmt: skip
        got = palette_color((np.clip(images, 0, 1) * 255).round().astype(np.uint8))
        per = " ".join(f"{name} {np.mean(got[want == c] == c):.2f}" for c, name in enumerate(COLOR_NAMES))
        print(f"CFG {cfg:g}, rescale {rescale:g}: color {np.mean(got == want):.2f} (n={len(want)}) | {per}")


if __name__ == "__main__":
    main()
