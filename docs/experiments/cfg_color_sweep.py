"""Color adherence of a generator across samplers and CFG scales.

    .venv/bin/python docs/experiments/cfg_color_sweep.py models            # the shipped generator
    .venv/bin/python docs/experiments/cfg_color_sweep.py runs/train/models # a `make train` run
    .venv/bin/python docs/experiments/cfg_color_sweep.py models "PNDM,Euler a" 1,7.5

96 English prompts (the 48 color x kind cells of `generate train measure`, two seeds each), 25
steps, color judged by the world palette rule. Behind the "sampler overshoot" finding in
models/README.md: under PLMS (PNDM, SD 1.x's shipped scheduler) green collapses at CFG 7.5, while
first- and second-order samplers keep every color.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from t2iscope.generate.samplers import make_scheduler
from t2iscope.generate.train.measure import COLOR_NAMES, GEN_SEED_BASE, generation_prompts, palette_color
from t2iscope.weights import STABLE_DIFFUSION, load_model


def main() -> None:
    pipe = load_model(Path(sys.argv[1] if len(sys.argv) > 1 else "models") / "sd", expect=STABLE_DIFFUSION)
    samplers = (sys.argv[2] if len(sys.argv) > 2 else "PNDM,Euler a,DPM++ 2M,UniPC,DDIM").split(",")
    scales = [float(s) for s in (sys.argv[3] if len(sys.argv) > 3 else "1,3,5,7.5,10").split(",")]
    cells = generation_prompts("en") * 2
    prompts = [p for p, _, _ in cells]
    want = np.array([c for _, c, _ in cells])
    config = pipe.scheduler.config
    for name in samplers:
        pipe.scheduler = make_scheduler(name, config)
        for cfg in scales:
            gens = [torch.Generator().manual_seed(GEN_SEED_BASE + i) for i in range(len(cells))]
            images = pipe(
                prompts, num_inference_steps=25, guidance_scale=cfg, generator=gens, output_type="np"
            ).images
            got = palette_color((np.clip(images, 0, 1) * 255).round().astype(np.uint8))
            per = " ".join(f"{c} {np.mean(got[want == i] == i):.2f}" for i, c in enumerate(COLOR_NAMES))
            print(f"{name}, CFG {cfg:g}: color {np.mean(got == want):.2f} (n={len(want)}) | {per}")


if __name__ == "__main__":
    main()
