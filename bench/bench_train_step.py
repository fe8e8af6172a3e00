"""CPU cost of one U-Net training step of the embedded Stable Diffusion, and what the recipe's steps cost.

    .venv/bin/python bench/bench_train_step.py

Times a forward+backward+AdamW step at the recipe's batch size on random latents (the data loader is
not the bottleneck), with all cores and with one thread as the baseline, and scales by the recipe's
step count: the number to hold against issue 4's one-hour CPU budget.
"""

from __future__ import annotations

import statistics
import time

import torch
from diffusers import UNet2DConditionModel

from t2iscope.generate.train.recipe import Recipe
from t2iscope.paths import models_dir


def step_seconds(threads: int, batch: int, repeats: int = 5) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(models_dir() / "sd" / "unet"))
    opt = torch.optim.AdamW(unet.parameters(), 1e-3)
    size = unet.config.sample_size
    x = torch.randn(batch, unet.config.in_channels, size, size)
    cond = torch.randn(batch, 77, unet.config.cross_attention_dim)
    t = torch.randint(0, 1000, (batch,))
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        loss = torch.nn.functional.mse_loss(unet(x, t, encoder_hidden_states=cond).sample, x)
        loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    recipe = Recipe().unet
    cores = torch.get_num_threads()
    base = step_seconds(1, recipe.batch)
    ours = step_seconds(cores, recipe.batch)
    print(f"U-Net train step, batch {recipe.batch}: 1 thread {base:.2f} s, {cores} threads {ours:.2f} s "
          f"({base / ours:.2f}x)")  # fmt: skip
    print(f"recipe: {recipe.steps} steps -> {recipe.steps * ours / 60:.0f} min on {cores} threads")


if __name__ == "__main__":
    main()
