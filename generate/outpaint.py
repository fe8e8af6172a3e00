"""Outpainting: extend the canvas by N pixels on any side and paint the new area to match.

The new area starts as the image's edge pixels stretched outwards plus a little seeded noise, so
the colours at the seam continue; it is then masked (overlapping the old border by the mask blur,
so the seam itself is repainted) and inpainted with latent blending.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from PIL import Image

from t2iscope.errors import ConfigError
from t2iscope.generate.inpaint import InpaintOptions, inpaint
from t2iscope.generate.limits import MAX_MASK_BLUR, MAX_SIDE
from t2iscope.generate.models import Model
from t2iscope.generate.params import Params, check_number, check_strength

NOISE_STD = 24.0  # grey levels of noise on the stretched edge: texture for the sampler to work on


@dataclass(frozen=True)
class OutpaintOptions:
    """Pixels to add on each side, denoising strength and mask blur (also the seam overlap)."""

    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0
    strength: float = 0.9
    mask_blur: int = 4

    def check(self, cli: bool = False) -> OutpaintOptions:
        """Each side 0..2048 pixels with at least one > 0, strength 0..1, mask_blur 0..64 pixels.

        Raises ConfigError naming the field (the option when ``cli``); the canvas, which depends
        on the image, is checked by :meth:`canvas_size`.
        """
        sides = {"left": self.left, "right": self.right, "top": self.top, "bottom": self.bottom}
        for name, value in sides.items():
            check_number(name, value, 0, MAX_SIDE, integer=True, cli=cli)
        if not any(sides.values()):
            raise ConfigError("outpaint needs left/right/top/bottom >= 0 with at least one > 0")
        check_strength(self.strength, cli=cli)
        check_number("mask_blur", self.mask_blur, 0, MAX_MASK_BLUR, integer=True, cli=cli)
        return self

    def canvas_size(self, image: Image.Image) -> tuple[int, int]:
        """The extended (width, height); raises ConfigError unless a multiple of 8 up to 2048 pixels.

        That is txt2img's limit too, so outpainting cannot grow a canvas past what a model may make.
        """
        size = (image.width + self.left + self.right, image.height + self.top + self.bottom)
        if max(size) > MAX_SIDE:
            raise ConfigError(
                f"extended size {size[0]}x{size[1]} is over {MAX_SIDE} pixels a side; add fewer pixels"
            )
        if size[0] % 8 or size[1] % 8:
            raise ConfigError(f"extended size {size[0]}x{size[1]} is not a multiple of 8; adjust the pixels")
        return size


def extend_canvas(image: Image.Image, opts: OutpaintOptions, seed: int) -> tuple[Image.Image, Image.Image]:
    """(canvas with the edge-stretched, noised new area; mask: white = new area + seam overlap)."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    pad = ((opts.top, opts.bottom), (opts.left, opts.right), (0, 0))
    canvas = np.pad(rgb, pad, mode="edge")
    new = np.ones(canvas.shape[:2], dtype=bool)
    new[opts.top : opts.top + image.height, opts.left : opts.left + image.width] = False
    noise = np.random.default_rng(seed).normal(0.0, NOISE_STD, canvas.shape)
    canvas[new] += noise[new]
    mask = np.zeros(canvas.shape[:2], dtype=np.uint8)
    o = opts.mask_blur
    mask[new] = 255
    for side, rows, cols in (
        (opts.top, slice(opts.top, opts.top + o), slice(None)),
        (opts.bottom, slice(opts.top + image.height - o, opts.top + image.height), slice(None)),
        (opts.left, slice(None), slice(opts.left, opts.left + o)),
        (opts.right, slice(None), slice(opts.left + image.width - o, opts.left + image.width)),
    ):
        if side and o:
            mask[rows, cols] = 255
    return Image.fromarray(canvas.clip(0, 255).astype(np.uint8)), Image.fromarray(mask)


def outpaint(
    model: Model, batch: list[Params], image: Image.Image, opts: OutpaintOptions
) -> list[Image.Image]:
    """One extended image per entry of ``batch``; the original pixels stay where they were."""
    # 1. Check inputs
    width, height = opts.check().canvas_size(image)
    batch = [dataclasses.replace(p, width=width, height=height) for p in batch]
    # 2. Extend the canvas and mask the new area
    canvas, mask = extend_canvas(image, opts, batch[0].seed)
    # 3. Inpaint the new area at the new size
    return inpaint(
        model, batch, canvas, mask, InpaintOptions(strength=opts.strength, mask_blur=opts.mask_blur)
    )
