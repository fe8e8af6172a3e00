"""The GPU path against plain diffusers, on a real-size (SD 1.5) randomly initialised model.

Rows, same prompt/steps/CFG/sampler/seeds, 512x512:
  diffusers fp32       StableDiffusionPipeline as loaded, .to("cuda"), its own prompt encoding
  diffusers fp16       the same pipeline cast to fp16 (what most users do by hand)
  t2iscope GPU path    load path on CUDA: fp16, channels_last U-Net, SDPA attention, our txt2img
  t2iscope + compile   the same with torch.compile'd U-Net (--compile; compile time excluded)
plus batch-4 throughput and a CPU-vs-CUDA seed parity check (tiny model, fp32: same seed, same
image within float tolerance). Needs only torch, diffusers, transformers and this package.

    python bench/bench_generate_gpu.py [--steps 20] [--runs 3] [--compile]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from t2iscope.generate.models import Model, wrap_pipeline
from t2iscope.generate.params import Params
from t2iscope.generate.random_models import random_sd_pipeline
from t2iscope.generate.samplers import make_scheduler
from t2iscope.generate.seeds import generators
from t2iscope.generate.txt2img import txt2img

PROMPT, NEGATIVE, SAMPLER, CFG, SIZE = "a red dog on grass, photo", "blurry", "DPM++ 2M", 7.0, 512


def _timed(fn: Callable[[], None], runs: int) -> float:
    fn()  # warm-up (cuDNN autotune, allocator, compile)
    times = []
    for _ in range(runs):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _plain(pipe, model_cfg, steps: int, seeds: list[int]) -> Callable[[], None]:
    def run() -> None:
        pipe.scheduler = make_scheduler(f"{SAMPLER} Karras", model_cfg)  # ours: DPM++ 2M, Automatic = Karras
        pipe(
            prompt=[PROMPT] * len(seeds),
            negative_prompt=[NEGATIVE] * len(seeds),
            num_inference_steps=steps,
            guidance_scale=CFG,
            height=SIZE,
            width=SIZE,
            generator=generators(seeds),
            output_type="pil",
        )

    return run


def _ours(model: Model, steps: int, seeds: list[int]) -> Callable[[], None]:
    batch = [Params(PROMPT, NEGATIVE, seed=s, steps=steps, cfg_scale=CFG, sampler=SAMPLER) for s in seeds]
    return lambda: txt2img(model, batch)


def _parity() -> tuple[float, float]:
    """Max and mean |CPU - CUDA| pixel difference for one seed, tiny model, both fp32."""
    images = []
    for device in ("cpu", "cuda"):
        pipe = random_sd_pipeline("tiny").to(device)
        pipe.set_progress_bar_config(disable=True)
        model = Model(pipe=pipe, model_id="tiny", device=torch.device(device), dtype=torch.float32)
        (image,) = txt2img(model, [Params(PROMPT, NEGATIVE, seed=5, steps=20, sampler=SAMPLER)])
        images.append(np.asarray(image, dtype=np.int16))
    diff = np.abs(images[0] - images[1])
    return float(diff.max()), float(diff.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also time a torch.compile'd U-Net")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure (this benchmark is for a GPU machine)")
        return
    torch.set_grad_enabled(False)
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(f"SD 1.5-size random model, {SIZE}x{SIZE}, {args.steps} steps, {SAMPLER}, CFG {CFG}")
    print(f"median of {args.runs} timed runs after one warm-up")
    rows: list[tuple[str, int, float]] = []

    def report(name: str, batch: int, seconds: float) -> None:
        rows.append((name, batch, seconds))
        base = rows[0][2] / rows[0][1]
        per = seconds / batch
        print(f"{name:<28}{batch:>6}{per:>12.3f}{1 / per:>11.2f}{base / per:>9.2f}x")
        sys.stdout.flush()

    print(f"{'path':<28}{'batch':>6}{'s/image':>12}{'images/s':>11}{'speedup':>10}")
    pipe = random_sd_pipeline("sd15")
    pipe.set_progress_bar_config(disable=True)
    config = pipe.scheduler.config
    pipe.to("cuda")
    report("diffusers fp32", 1, _timed(_plain(pipe, config, args.steps, [0]), args.runs))
    pipe.to(torch.float16)
    report("diffusers fp16", 1, _timed(_plain(pipe, config, args.steps, [0]), args.runs))
    model = wrap_pipeline(pipe, "sd15-random", device="cuda")
    report("t2iscope GPU path", 1, _timed(_ours(model, args.steps, [0]), args.runs))
    report("t2iscope GPU path", 4, _timed(_ours(model, args.steps, [0, 1, 2, 3]), args.runs))
    if args.compile:
        start = time.perf_counter()
        model.pipe.unet = torch.compile(model.pipe.unet, fullgraph=False)
        _ours(model, args.steps, [0])()
        print(f"(torch.compile warm-up: {time.perf_counter() - start:.1f}s)")
        report("t2iscope + torch.compile", 1, _timed(_ours(model, args.steps, [0]), args.runs))
    worst, mean = _parity()
    print(f"seed parity CPU vs CUDA (tiny model, fp32, 20 steps): max |diff| {worst:.0f}, mean {mean:.3f}")


if __name__ == "__main__":
    main()
