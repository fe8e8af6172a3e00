"""The training recipe: every step count, size and rate, as frozen dataclasses.

Defaults are the CPU recipe of ``make train``, sized for the one-hour budget on 2 CPU cores
(62 minutes measured on a loaded machine, see models/README.md and bench/bench_train_step.py);
``QUICK`` is a few steps of everything for tests and smoke runs. A YAML file may override any
field; unknown keys, wrong types and values out of range (a step count below 0, a batch below 1, a
dropout outside [0, 1)) are errors naming the file and the field (``t2iscope.config``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from annotated_types import MinLen

from t2iscope.config import (
    Ge,
    Lt,
    NonNegFloat,
    NonNegInt,
    PositiveFloat,
    PositiveInt,
    Probability,
    load_yaml,
    parse,
)

# Training stages in dependency order (each `t2iscope generate train <stage>` runs one).
STAGES: tuple[str, ...] = ("clip", "aesthetic", "watermark", "vae", "unet", "measure")
Dropout = Annotated[float, Ge(0), Lt(1)]  # a share of training examples: 1 would leave none
# Block widths of a network, one per level: at least one level.
Widths = Annotated[tuple[PositiveInt, ...], MinLen(1)]
RESNET_STAGES = 4  # open_clip's ModifiedResNet has exactly four stages (layers[0..3])
VISION_HEAD_WIDTH = 64  # open_clip's head_width: the attention pool has vision_width * 32 // 64 heads


def _group_problem(channels: tuple[int, ...]) -> str | None:
    """diffusers' GroupNorm uses min(32, min(channels)) groups: each width must divide by that."""
    groups = min(32, min(channels))
    bad = [c for c in channels if c % groups]
    if bad:
        return (
            f"channels {bad[0]} must be divisible by {groups} (the norm groups: min(32, smallest channels))"
        )
    return None


@dataclass(frozen=True)
class ClipRecipe:
    steps: NonNegInt = 1500
    batch: PositiveInt = 128
    lr: PositiveFloat = 1e-3
    embed_dim: PositiveInt = 64
    # open_clip's ModifiedResNet (OpenAI's RN50 CLIP tower; RN50 has width 64 and (3, 4, 6, 3)). After
    # 500 steps it reads kinds and image quality that a width-128 ViT, slower per step, has not yet
    # learned: zero-shot kind 0.88 vs 0.53, aesthetic probe Spearman 0.84 vs 0.54
    # (docs/experiments/clip_tower_probe.py).
    vision_width: PositiveInt = 16
    vision_layers: Annotated[tuple[PositiveInt, ...], MinLen(1)] = (1, 1, 1, 1)
    text_width: PositiveInt = 64  # 49,408 x width embedding table dominates size: keep it small
    text_layers: PositiveInt = 3
    text_heads: PositiveInt = 4

    def __post_init__(self) -> None:
        # What the towers would otherwise assert after work starts (a ValueError the parser words).
        if len(self.vision_layers) != RESNET_STAGES:
            raise ValueError(
                f"vision_layers needs {RESNET_STAGES} entries (one per ResNet stage), "
                f"got {len(self.vision_layers)}"
            )
        if self.vision_width * 32 < VISION_HEAD_WIDTH:
            raise ValueError(f"vision_width {self.vision_width} must be at least 2 (one attention-pool head)")
        if self.text_width % self.text_heads:
            raise ValueError(
                f"text_width {self.text_width} must be divisible by text_heads {self.text_heads}"
            )


@dataclass(frozen=True)
class HeadRecipe:
    aesthetic_steps: NonNegInt = 1500
    watermark_steps: NonNegInt = 500  # 300 steps gave ROC AUC 0.91 on the held-out world, 800 gave 1.00
    batch: PositiveInt = 64
    lr: PositiveFloat = 1e-3


@dataclass(frozen=True)
class VaeRecipe:
    steps: NonNegInt = 800
    batch: PositiveInt = 16
    lr: PositiveFloat = 1e-3
    # 3 blocks -> scale factor 4 -> 16x16x4 latents; 16 channels at full resolution keeps CPU cost low
    channels: Widths = (16, 32, 64)
    kl_weight: NonNegFloat = 1e-6
    mid_attention: bool = False  # SD's VAE attends at its bottleneck; here it costs 25% for nothing seen

    def __post_init__(self) -> None:
        if problem := _group_problem(self.channels):
            raise ValueError(problem)


@dataclass(frozen=True)
class UnetRecipe:
    steps: NonNegInt = 1800  # color 0.97 at CFG 7.5, as 2,000 steps gave, in ~3 minutes less
    batch: PositiveInt = 64
    lr: PositiveFloat = 1e-3
    channels: Widths = (32, 64, 64)  # 1.7M parameters
    caption_dropout: Dropout = 0.1  # empty caption for classifier-free guidance, as SD's last rounds
    attention_head_dim: PositiveInt = (
        32  # channels per head (diffusers' own argument of that name counts heads)
    )
    # Cross-attention on the 8x8 and 4x4 levels only: at 16x16 it costs 2x the step for little gain.
    attention_levels: tuple[bool, ...] = (False, True, True)
    # Min-SNR-gamma loss weights (Hang et al. 2023): stop easy low-noise steps dominating; 0 = plain MSE.
    snr_gamma: NonNegFloat = 5.0
    # "epsilon" as SD 1.x; "v_prediction" as SD 2.x-768 (the scheduler config records which).
    prediction_type: Literal["epsilon", "v_prediction"] = "epsilon"

    def __post_init__(self) -> None:
        if len(self.attention_levels) != len(self.channels):
            raise ValueError(
                f"attention_levels needs one entry per channels entry ({len(self.channels)}), "
                f"got {len(self.attention_levels)}"
            )
        if problem := _group_problem(self.channels):
            raise ValueError(problem)
        # Levels with cross-attention, and the mid block (always attends), split channels into heads.
        attending = [c for c, a in zip(self.channels, self.attention_levels, strict=True) if a]
        for c in [*attending, self.channels[-1]]:
            if c % self.attention_head_dim:
                raise ValueError(
                    f"channels {c} must be divisible by attention_head_dim {self.attention_head_dim}"
                )


@dataclass(frozen=True)
class MeasureRecipe:
    prompts_per_cell: PositiveInt = 4  # generated images per (color, kind) cell and CFG scale
    steps: PositiveInt = 25  # sampler steps of each generated image
    cfg_scales: Annotated[tuple[NonNegFloat, ...], MinLen(1)] = (1.0, 7.5)
    # One more row: the first language at the highest scale with guidance rescale (0 = no such row).
    cfg_rescale: Probability = 0.7
    languages: Annotated[tuple[str, ...], MinLen(1)] = ("en", "de", "zh")
    heldout_rows: PositiveInt = 2000


@dataclass(frozen=True)
class Recipe:
    seed: int = 0
    clip: ClipRecipe = field(default_factory=ClipRecipe)
    heads: HeadRecipe = field(default_factory=HeadRecipe)
    vae: VaeRecipe = field(default_factory=VaeRecipe)
    unet: UnetRecipe = field(default_factory=UnetRecipe)
    measure: MeasureRecipe = field(default_factory=MeasureRecipe)


QUICK = Recipe(
    clip=ClipRecipe(steps=3, batch=16, vision_width=8, text_layers=1, text_width=32),
    heads=HeadRecipe(aesthetic_steps=3, watermark_steps=3, batch=16),
    vae=VaeRecipe(steps=3, batch=8, channels=(16, 16, 16)),
    unet=UnetRecipe(steps=3, batch=8, channels=(16, 16, 16), attention_head_dim=8),
    measure=MeasureRecipe(prompts_per_cell=1, steps=2, languages=("en",), heldout_rows=64),
)


def load_recipe(path: str | Path | None, quick: bool = False) -> Recipe:
    """The default (or quick) recipe with the YAML file's overrides applied.

    Raises ConfigError naming the file and the field for an unknown key, a wrong type or a value
    outside a ``Literal`` (``unet.prediction_type``).
    """
    base = QUICK if quick else Recipe()
    if path is None:
        return base
    data = load_yaml(path)
    if data is None:  # an empty file overrides nothing
        return base
    # Overrides apply field by field onto the base, then the whole is parsed as one recipe.
    merged = _merge(dataclasses.asdict(base), data) if isinstance(data, dict) else data
    return parse(Recipe, merged, str(path))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = _merge(base[key], value)
        else:
            out[key] = value
    return out
