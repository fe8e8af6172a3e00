"""CPU cost of one U-Net training step: the recipe's U-Net vs SD's block layout, and the recipe's total.

    .venv/bin/python bench/bench_train_step.py

Times a forward+backward+AdamW step at the recipe's batch size on random latents (the data loader is
not the bottleneck) with all cores, for the U-Net the recipe builds (attention at 8x8 and 4x4,
32 channels per head) and, as the baseline, the same channels in SD 1.x's layout as its config
files spell it (cross-attention on the top levels, 16x16 and 8x8, with diffusers'
``attention_head_dim=32``, which diffusers reads as 32 heads of 1-2 channels: the first tiny U-Net's
config), and scales by the recipe's step count: the number to hold against issue 4's one-hour budget.
"""

from __future__ import annotations

import statistics
import time

import torch
from diffusers import UNet2DConditionModel

from t2iscope.generate.train.recipe import Recipe
from t2iscope.generate.train.sd import build_unet


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
    ours = build_unet(recipe, cross_attention_dim=64)
    sd_layout = UNet2DConditionModel(
        sample_size=16,
        layers_per_block=1,
        block_out_channels=recipe.channels,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=64,
        attention_head_dim=32,
        norm_num_groups=32,
    )
    base, new = step_seconds(sd_layout, recipe.batch), step_seconds(ours, recipe.batch)
    cores = torch.get_num_threads()
    print(f"U-Net train step, batch {recipe.batch}, {cores} threads: SD layout {base:.2f} s, "
          f"recipe {new:.2f} s ({base / new:.2f}x faster)")  # fmt: skip
    print(f"recipe: {recipe.steps} steps -> {recipe.steps * new / 60:.0f} min on {cores} threads")


if __name__ == "__main__":
    main()
