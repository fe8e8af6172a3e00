"""img2img: re-noise an image part of the way and denoise it under a prompt.

``strength`` is the fraction of the schedule that is re-noised, as in Stable Diffusion's img2img
script and A1111 (``t_enc = int(min(strength, 0.999) * steps)`` of a ``steps`` table, see
:mod:`~t2iscope.generate.diffusion`): 0 returns the input, 1 ignores it.
"""

from __future__ import annotations

from PIL import Image

from t2iscope.generate.conditioning import apply_networks, conditioning
from t2iscope.generate.diffusion import decode_latents, encode_images, sample
from t2iscope.generate.models import Model
from t2iscope.generate.params import Params, check_same_settings, check_strength, target_size
from t2iscope.generate.samplers import SAMPLERS, resolve


def check_request(batch: list[Params], image: Image.Image, strength: float) -> tuple[int, int]:
    """Every check of :func:`img2img` that needs no model; returns the (width, height) to generate.

    Raises ConfigError for parameters outside the limits, a batch that does not share its
    settings, or an image whose own size is not a valid one (without --width/--height).
    """
    for p in batch:
        p.check()
    check_same_settings(batch)
    check_strength(strength)
    return target_size(batch[0], image)


def img2img(model: Model, batch: list[Params], image: Image.Image, strength: float) -> list[Image.Image]:
    """One image per entry of ``batch``, each started from ``image`` re-noised by ``strength``."""
    # 1. Check inputs
    width, height = check_request(batch, image, strength)
    first = batch[0]
    init = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    # 2. Nothing to re-noise: SD's script would run zero steps
    if int(strength * first.steps) < 1:
        return [init.copy() for _ in batch]
    # 3. Conditioning, re-noise, denoise and decode
    sampler = SAMPLERS.get(resolve(first.sampler, first.scheduler)[0])
    batch = apply_networks(model, batch)
    conds = conditioning(model, batch, steps=sampler.total_steps(first.steps))
    latents = sample(
        model, batch, conds, (width, height), init_latents=encode_images(model, [init]), strength=strength
    )
    return decode_latents(model, latents)
