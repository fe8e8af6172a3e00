"""txt2img: prompts to images with A1111's samplers and conditioning, and A1111's hires fix.

Hires fix (A1111 modules/processing.py ``StableDiffusionProcessingTxt2Img.sample_hr_pass``): the
first pass runs at width x height; its latents are upscaled by ``hr_scale`` (``Latent``: bilinear
in latent space, ``Latent (nearest)``: nearest, ``Lanczos``: decoded, resized with Lanczos,
encoded again), then re-noised to ``denoising_strength`` and denoised for ``hr_second_pass_steps``
(0 = steps) with fresh noise from the same seeds at the new size.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image

from t2iscope.errors import ConfigError
from t2iscope.generate.conditioning import TextCache, apply_networks, conditioning
from t2iscope.generate.diffusion import decode_latents, encode_images, sample
from t2iscope.generate.limits import MAX_SIDE, MIN_SIDE
from t2iscope.generate.models import Model
from t2iscope.generate.params import Params, check_same_settings
from t2iscope.generate.samplers import SAMPLERS, resolve

LATENT_MODES = {"Latent": "bilinear", "Latent (nearest)": "nearest"}


def hires_size(p: Params, width: int, height: int) -> tuple[int, int]:
    """The hires pass size: A1111's ``int(side * hr_scale)`` floored to the latent grid (8 pixels).

    Raises ConfigError unless both sides end up from 8 to 2048 pixels.
    """
    size = int(width * p.hr_scale) // 8 * 8, int(height * p.hr_scale) // 8 * 8
    if not all(MIN_SIDE <= side <= MAX_SIDE for side in size):
        raise ConfigError(
            f"hires fix size {size[0]}x{size[1]} (hr_scale {p.hr_scale:g} x {width}x{height}): each side "
            f"must be from {MIN_SIDE} to {MAX_SIDE} pixels"
        )
    return size


def check_request(batch: list[Params], native: int) -> tuple[int, int]:
    """Every check that needs no model; returns the first pass (width, height)."""
    for p in batch:
        p.check()
    check_same_settings(batch)
    first = batch[0]
    size = first.width or native, first.height or native
    if first.enable_hr:
        hires_size(first, *size)
    return size


def _upscale(model: Model, latents: torch.Tensor, p: Params, size: tuple[int, int]) -> torch.Tensor:
    if p.hr_upscaler in LATENT_MODES:
        scale = model.pipe.vae_scale_factor
        return torch.nn.functional.interpolate(
            latents, size=(size[1] // scale, size[0] // scale), mode=LATENT_MODES[p.hr_upscaler]
        )
    images = [im.resize(size, Image.Resampling.LANCZOS) for im in decode_latents(model, latents)]
    return encode_images(model, images)


def txt2img(
    model: Model, batch: list[Params], mark: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> list[Image.Image]:
    """One image per entry of ``batch`` (single-image Params with concrete seeds, shared settings).

    ``mark`` rewrites the first pass's starting noise (a Tree-Ring key's ``inject``); the hires
    pass draws fresh noise and is left alone.
    """
    # 1. Check inputs
    size = check_request(batch, model.native_size)
    first = batch[0]
    sampler = SAMPLERS.get(resolve(first.sampler, first.scheduler)[0])
    # 2. LoRAs of the batch, then conditioning: prompt schedules span the sampler's model calls
    batch = apply_networks(model, batch)
    cache = TextCache(model)
    passes = sampler.total_steps(first.steps)
    latents = sample(model, batch, conditioning(model, batch, steps=passes, cache=cache), size, mark=mark)
    if not first.enable_hr:
        return decode_latents(model, latents)
    # 3. Hires fix: upscale, then a fixed number of img2img steps at denoising_strength
    hr_steps = first.hr_second_pass_steps or first.steps
    target = hires_size(first, *size)
    init = _upscale(model, latents, first, target)
    if first.denoising_strength == 0:  # nothing to re-noise: the upscaled first pass
        return decode_latents(model, init)
    conds = conditioning(model, batch, steps=passes, hires_steps=sampler.total_steps(hr_steps), cache=cache)
    latents = sample(
        model,
        batch,
        conds,
        target,
        init_latents=init,
        strength=first.denoising_strength,
        steps=hr_steps,
        fixed_steps=True,
    )
    return decode_latents(model, latents)
