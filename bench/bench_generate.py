"""Generation speed on CPU: our txt2img against diffusers' own pipeline call, and batching's gain.

Same model, prompt, negative prompt, steps, CFG, seeds and U-Net calls on both sides: ours is
A1111's DPM++ 2M (Automatic = Karras) in t2iscope's own sampling loop (AND/prompt-editing
conditioning, A1111 emphasis/chunking, per-image CPU generators); theirs is diffusers' pipeline
with DPMSolverMultistepScheduler on Karras sigmas. Runs alternate (ours,
theirs, ours, ...) so a busy machine slows both alike; medians are reported. Uses the embedded
model when models/sd exists, else a tiny random one of the same shape.

    .venv/bin/python bench/bench_generate.py [--steps 20] [--images 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from t2iscope.generate.models import Model, embedded_model_path, load_model, wrap_pipeline
from t2iscope.generate.params import Params
from t2iscope.generate.random_models import random_sd_pipeline
from t2iscope.generate.samplers import make_scheduler
from t2iscope.generate.seeds import generators
from t2iscope.generate.txt2img import txt2img

PROMPT, NEGATIVE, SAMPLER, CFG = "a red dog on grass", "blurry", "DPM++ 2M", 7.0


def _model() -> tuple[Model, str]:
    if (embedded_model_path() / "model_index.json").is_file():
        return load_model(None, device="cpu"), "embedded models/sd"
    return wrap_pipeline(
        random_sd_pipeline("tiny"), "tiny-random", device="cpu"
    ), "tiny random (no models/sd)"


def _ours(model: Model, seeds: list[int], steps: int) -> None:
    txt2img(
        model, [Params(PROMPT, NEGATIVE, seed=s, steps=steps, cfg_scale=CFG, sampler=SAMPLER) for s in seeds]
    )


def _diffusers(model: Model, seeds: list[int], steps: int) -> None:
    pipe = model.pipe
    pipe.scheduler = make_scheduler(f"{SAMPLER} Karras", model.scheduler_config)
    pipe(
        prompt=[PROMPT] * len(seeds),
        negative_prompt=[NEGATIVE] * len(seeds),
        num_inference_steps=steps,
        guidance_scale=CFG,
        generator=generators(seeds),
        output_type="pil",
    )


def _per_image(fn: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadiest on a shared box)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    model, which = _model()
    seeds = list(range(args.images))
    ours1, theirs1, ours_b = [], [], []
    _ours(model, seeds[:1], args.steps)  # warm-up
    for _ in range(args.rounds):
        for s in seeds:  # interleaved per image, order alternating, so load spikes hit both sides
            pair = [(ours1, _ours), (theirs1, _diffusers)]
            for times, fn in pair if s % 2 else pair[::-1]:
                times.append(_per_image(lambda s=s, fn=fn: fn(model, [s], args.steps), 1))
        ours_b.append(_per_image(lambda: _ours(model, seeds, args.steps), len(seeds)))
    o, t, b = (statistics.median(x) for x in (ours1, theirs1, ours_b))
    print(f"model: {which}; {args.steps} steps, {SAMPLER}, CFG {CFG}")
    print(f"{args.images} seeds x {args.rounds} rounds")
    print(f"torch threads: {torch.get_num_threads()}; medians of interleaved runs")
    print(f"{'path':<34}{'s/image':>10}{'images/s':>10}")
    print(f"{'diffusers pipeline, batch 1':<34}{t:>10.3f}{1 / t:>10.2f}")
    print(f"{'t2iscope txt2img, batch 1':<34}{o:>10.3f}{1 / o:>10.2f}")
    print(f"{f't2iscope txt2img, batch {args.images}':<34}{b:>10.3f}{1 / b:>10.2f}")
    print(f"overhead vs diffusers (batch 1): {100 * (o / t - 1):+.1f}%  (target <= +5%)")
    print(f"batching gain (batch {args.images} vs 1): {o / b:.2f}x images/s")


if __name__ == "__main__":
    main()
