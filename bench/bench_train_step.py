"""CPU cost of one U-Net training step: the recipe's U-Net vs the shipped one, and the recipe's total.

    .venv/bin/python bench/bench_train_step.py

Times a forward+backward+AdamW step at the recipe's batch size on random latents (the data loader is
not the bottleneck) with all cores, for the U-Net the recipe builds (attention at 8x8 and 4x4,
32 channels per head) and for the shipped U-Net's config as the baseline (attention at 16x16 and
8x8 with diffusers' ``attention_head_dim=32``, i.e. 32 heads of 1-2 channels), and scales by the
recipe's step count: the number to hold against issue 4's one-hour CPU budget.
"""

from __future__ import annotations

import statistics
import time

import torch
from diffusers import UNet2DConditionModel

from t2iscope.generate.train.recipe import Recipe
from t2iscope.generate.train.sd import build_unet
from t2iscope.paths import models_dir


def step_seconds(unet: torch.nn.Module, batch: int, repeats: int = 5) -> float:
    torch.manual_seed(0)
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
    shipped = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(models_dir() / "sd" / "unet"))
    ours = build_unet(recipe, shipped.config.cross_attention_dim)
    base, new = step_seconds(shipped, recipe.batch), step_seconds(ours, recipe.batch)
    cores = torch.get_num_threads()
    print(f"U-Net train step, batch {recipe.batch}, {cores} threads: shipped config {base:.2f} s, "
          f"recipe {new:.2f} s ({base / new:.2f}x faster)")  # fmt: skip
    print(f"recipe: {recipe.steps} steps -> {recipe.steps * new / 60:.0f} min on {cores} threads")


if __name__ == "__main__":
    main()
