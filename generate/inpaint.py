"""Inpainting that works with ordinary (4-channel) Stable Diffusion checkpoints.

A plain U-Net has no mask input, so after every model call the denoised latents outside the mask
are replaced by the init latents, and once more after the last step (A1111's inpainting for
normal models, modules/sd_samplers_cfg_denoiser.py and processing.py). Around
that: A1111's mask blur, its four fills for the masked area, and "only masked" (crop the mask's
box plus padding, inpaint it at model size, paste it back).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageFilter
from scipy.ndimage import gaussian_filter

from t2iscope.errors import ConfigError
from t2iscope.generate.conditioning import apply_networks, conditioning
from t2iscope.generate.diffusion import decode_latents, encode_images, sample
from t2iscope.generate.limits import MAX_MASK_BLUR, MAX_PADDING
from t2iscope.generate.models import Model
from t2iscope.generate.params import (
    Params,
    check_number,
    check_same_settings,
    check_strength,
    option_name,
    target_size,
)
from t2iscope.generate.samplers import SAMPLERS, resolve
from t2iscope.generate.seeds import ImageNoise

FILLS = ("fill", "original", "latent noise", "latent nothing")  # A1111's "masked content"


@dataclass(frozen=True)
class InpaintOptions:
    strength: float = 0.75
    mask_blur: int = 4
    fill: str = "original"
    only_masked: bool = False
    padding: int = 32

    def check(self, cli: bool = False) -> InpaintOptions:
        """strength 0..1, mask_blur 0..64 and padding 0..256 pixels (A1111's sliders), a known fill.

        Raises ConfigError naming the field (the option when ``cli``).
        """
        check_strength(self.strength, cli=cli)
        if self.fill not in FILLS:
            raise ConfigError(
                f"{option_name('fill', cli)} must be one of {', '.join(FILLS)}; got {self.fill!r}"
            )
        check_number("mask_blur", self.mask_blur, 0, MAX_MASK_BLUR, integer=True, cli=cli)
        check_number("padding", self.padding, 0, MAX_PADDING, integer=True, cli=cli)
        return self


def _region(mask: Image.Image, padding: int, aspect: float) -> tuple[int, int, int, int]:
    """The mask's bounding box plus padding, widened to ``aspect`` (w/h) and clipped to the image."""
    x0, y0, x1, y1 = mask.getbbox()
    x0, y0, x1, y1 = x0 - padding, y0 - padding, x1 + padding, y1 + padding
    w, h = x1 - x0, y1 - y0
    if w / h < aspect:
        grow = round(h * aspect) - w
        x0, x1 = x0 - grow // 2, x1 + grow - grow // 2
    else:
        grow = round(w / aspect) - h
        y0, y1 = y0 - grow // 2, y1 + grow - grow // 2
    return max(x0, 0), max(y0, 0), min(x1, mask.width), min(y1, mask.height)


def fill_masked(image: Image.Image, mask: Image.Image) -> Image.Image:
    """A1111's "fill": masked pixels take the blurred colours of the unmasked surroundings."""
    rgb = np.asarray(image, dtype=np.float64)
    keep = (np.asarray(mask) < 128).astype(np.float64)
    if not keep.any():
        return Image.new("RGB", image.size, tuple(int(c) for c in rgb.reshape(-1, 3).mean(0)))
    sigma = max(image.size) / 8
    num = np.stack([gaussian_filter(rgb[..., c] * keep, sigma) for c in range(3)], axis=-1)
    den = gaussian_filter(keep, sigma)[..., None]
    mean = (rgb * keep[..., None]).sum((0, 1)) / keep.sum()
    filled = np.where(den > 1e-3, num / np.maximum(den, 1e-3), mean)
    out = np.where(keep[..., None] > 0, rgb, filled)
    return Image.fromarray(out.clip(0, 255).astype(np.uint8))


def _denoise(
    model: Model, batch: list[Params], init: Image.Image, mask: Image.Image, opts: InpaintOptions
) -> list[Image.Image]:
    """Inpaint ``init`` (already at model size) where ``mask`` is white, A1111's way for ordinary
    models: the denoised latents outside the mask are the init latents at every step."""
    first = batch[0]
    init_latents = encode_images(model, [init])
    lat_h, lat_w = init_latents.shape[-2:]
    m = np.asarray(mask.resize((lat_w, lat_h), Image.Resampling.BILINEAR), dtype=np.float32) / 255
    m = torch.from_numpy(m)[None, None].to(model.device, init_latents.dtype)
    if opts.fill == "latent noise":  # A1111: noise from the images' seeds in the masked area
        noise = ImageNoise(
            [p.seed for p in batch], tuple(init_latents.shape[1:]), device=model.device
        ).first()
        init_latents = init_latents * (1 - m) + noise.to(init_latents.dtype) * m
    elif opts.fill == "latent nothing":
        init_latents = init_latents * (1 - m)
    sampler = SAMPLERS.get(resolve(first.sampler, first.scheduler)[0])
    batch = apply_networks(model, batch)
    conds = conditioning(model, batch, steps=sampler.total_steps(first.steps))
    latents = sample(
        model,
        batch,
        conds,
        (init.width, init.height),
        init_latents=init_latents,
        strength=opts.strength,
        mask=m,
    )
    return decode_latents(model, latents)


def check_request(batch: list[Params], image: Image.Image, mask: Image.Image, opts: InpaintOptions) -> None:
    """Every check of :func:`inpaint` that needs no model.

    Raises ConfigError for parameters or options outside the limits, a batch that does not share
    its settings, a mask of another size, or (without "only masked") an image whose own size is
    not a valid generation size when --width/--height do not set one.
    """
    for p in batch:
        p.check()
    check_same_settings(batch)
    opts.check()
    if mask.size != image.size:
        raise ConfigError(
            f"mask size {mask.width}x{mask.height} does not match image size {image.width}x{image.height}"
        )
    if not opts.only_masked:
        target_size(batch[0], image)


def inpaint(
    model: Model, batch: list[Params], image: Image.Image, mask: Image.Image, opts: InpaintOptions
) -> list[Image.Image]:
    """Repaint the white area of ``mask`` in ``image``; black stays (the result is composited back)."""
    # 1. Check inputs
    check_request(batch, image, mask, opts)
    first = batch[0]
    image, mask = image.convert("RGB"), mask.convert("L")
    blurred = mask.filter(ImageFilter.GaussianBlur(opts.mask_blur)) if opts.mask_blur else mask
    if mask.getbbox() is None or int(first.steps * opts.strength) < 1:
        return [image.copy() for _ in batch]
    # 2. Region to repaint and the size to run the model at
    if opts.only_masked:
        size = (first.width or model.native_size, first.height or model.native_size)
        box = _region(mask, opts.padding, size[0] / size[1])
    else:
        size = target_size(first, image)
        box = (0, 0, image.width, image.height)
    crop = image.crop(box).resize(size, Image.Resampling.LANCZOS)
    crop_mask = blurred.crop(box).resize(size, Image.Resampling.BILINEAR)
    # 3. Masked content
    if opts.fill == "fill":
        crop = fill_masked(crop, crop_mask)
    # 4. Denoise, then paste back through the blurred mask so unmasked pixels stay the original's
    outs = _denoise(model, batch, crop, crop_mask, opts)
    results = []
    for out in outs:
        region = out.resize((box[2] - box[0], box[3] - box[1]), Image.Resampling.LANCZOS)
        canvas = image.copy()
        canvas.paste(region, box[:2])
        results.append(Image.composite(canvas, image, blurred))
    return results
