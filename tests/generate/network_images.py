"""Images for the extra-network tests: diffusers' own call with our conditioning, and a color measure.

Shared by test_lora.py and test_embeddings.py (imported as a plain module, as tests/curate/curate_rows.py).
"""

from __future__ import annotations

import numpy as np
import torch

from t2iscope.curate.world import spec
from t2iscope.generate.text_encoding import encode_prompt_pair

SEEDS = (1, 2)
_PALETTE = np.asarray(list(spec.COLORS.values()), dtype=np.float32)


def generate(pipe, prompts, *, embeddings=None, seeds=SEEDS, steps: int = 12) -> np.ndarray:
    """One image per prompt (seed cycles through ``seeds``): stock diffusers call, our conditioning."""
    pairs = [
        encode_prompt_pair(pipe.tokenizer, pipe.text_encoder, p, "", embeddings=embeddings) for p in prompts
    ]
    with torch.no_grad():
        out = pipe(
            prompt_embeds=torch.cat([c for c, _ in pairs]),
            negative_prompt_embeds=torch.cat([u for _, u in pairs]),
            num_inference_steps=steps,
            guidance_scale=7.5,
            generator=[torch.Generator().manual_seed(seeds[i % len(seeds)]) for i in range(len(prompts))],
            output_type="np",
        ).images
    return (out * 255).round().astype(np.uint8)


def color_share(images: np.ndarray, color: str) -> np.ndarray:
    """Per image: the share of its saturated (object) pixels whose nearest palette color is ``color``."""
    x = images.astype(np.float32)
    mx, mn = x.max(-1), x.min(-1)
    saturated = (mx > 60) & ((mx - mn) / np.maximum(mx, 1) > 0.45)
    nearest = ((x[..., None, :] - _PALETTE) ** 2).sum(-1).argmin(-1)
    target = list(spec.COLORS).index(color)
    hits = ((nearest == target) & saturated).sum((1, 2))
    return hits / np.maximum(saturated.sum((1, 2)), 1)
