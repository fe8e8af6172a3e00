"""Image attacks for watermark robustness: ``attack(image, strength) -> image``, registered by name.

The set follows the invisible-watermark README and the WAVES benchmark: JPEG, resize (with and
without restoring the size, since decoders that assume a block grid fail differently), rotation,
crop, blur, noise, brightness, contrast, and the README's overlay and mask. Attacks are
deterministic (noise is seeded from the image size) so a robustness table can be reproduced.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from t2iscope.registry import Registry

Attack = Callable[[Image.Image, float], Image.Image]
ATTACKS: Registry[Attack] = Registry("attack")

# The default grid (attack -> strengths); strength 0 of "none" is the unattacked baseline.
DEFAULT_GRID: dict[str, tuple[float, ...]] = {
    "none": (0.0,),
    "jpeg": (95, 90, 80, 70, 60, 50),
    "resize": (0.5, 0.75, 1.5, 2.0),
    "resize_restore": (0.5, 0.75, 1.5, 2.0),
    "rotate": (1, 5, 15, 30, 45),
    "crop": (0.01, 0.05, 0.1, 0.25, 0.5),
    "blur": (0.5, 1.0, 2.0),
    "noise": (2, 5, 10, 20),
    "brightness": (0.5, 0.8, 1.2, 1.5),
    "contrast": (0.5, 0.8, 1.2, 1.5),
    "overlay": (0.05, 0.2),
    "mask": (0.05, 0.2),
}


@ATTACKS.register("none")
def identity(img: Image.Image, strength: float) -> Image.Image:
    """No attack: the baseline every other row is read against."""
    return img.copy()


@ATTACKS.register("jpeg")
def jpeg(img: Image.Image, quality: float) -> Image.Image:
    """Re-encode as JPEG at ``quality`` (95 = mild, 50 = heavy)."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def _scaled(img: Image.Image, scale: float) -> Image.Image:
    w, h = img.size
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC)


@ATTACKS.register("resize")
def resize(img: Image.Image, scale: float) -> Image.Image:
    """Rescale by ``scale`` and keep the new size (what a thumbnailer or an upscaler does)."""
    return _scaled(img, scale)


@ATTACKS.register("resize_restore")
def resize_restore(img: Image.Image, scale: float) -> Image.Image:
    """Rescale by ``scale`` and back to the original size: resampling loss at the same grid."""
    return _scaled(img, scale).resize(img.size, Image.Resampling.BICUBIC)


@ATTACKS.register("rotate")
def rotate(img: Image.Image, degrees: float) -> Image.Image:
    """Rotate by ``degrees`` about the centre, same size, corners filled with black."""
    return img.rotate(degrees, resample=Image.Resampling.BILINEAR, expand=False)


@ATTACKS.register("crop")
def crop(img: Image.Image, fraction: float) -> Image.Image:
    """Cut ``fraction`` of the width and height away (split between both sides), no resize."""
    w, h = img.size
    dx, dy = round(w * fraction / 2), round(h * fraction / 2)
    return img.crop((dx, dy, max(dx + 1, w - dx), max(dy + 1, h - dy)))


@ATTACKS.register("blur")
def blur(img: Image.Image, sigma: float) -> Image.Image:
    """Gaussian blur with radius ``sigma`` pixels."""
    return img.filter(ImageFilter.GaussianBlur(radius=sigma))


@ATTACKS.register("noise")
def noise(img: Image.Image, std: float) -> Image.Image:
    """Add Gaussian noise with standard deviation ``std`` (0-255 scale), seeded for reproducibility."""
    rng = np.random.default_rng(img.size[0] * 100_003 + img.size[1])
    arr = np.asarray(img.convert("RGB"), dtype=np.float32)
    out = np.clip(arr + rng.normal(0.0, std, arr.shape), 0, 255).round().astype(np.uint8)
    return Image.fromarray(out)


@ATTACKS.register("brightness")
def brightness(img: Image.Image, factor: float) -> Image.Image:
    """Scale brightness by ``factor`` (<1 darkens, >1 brightens)."""
    return ImageEnhance.Brightness(img.convert("RGB")).enhance(factor)


@ATTACKS.register("contrast")
def contrast(img: Image.Image, factor: float) -> Image.Image:
    """Scale contrast by ``factor`` around the mean grey."""
    return ImageEnhance.Contrast(img.convert("RGB")).enhance(factor)


@ATTACKS.register("overlay")
def overlay(img: Image.Image, fraction: float) -> Image.Image:
    """Paste a half-transparent white disc covering about ``fraction`` of the image (a sticker)."""
    w, h = img.size
    r = (fraction * w * h / np.pi) ** 0.5
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    ImageDraw.Draw(layer).ellipse((w / 2 - r, h / 2 - r, w / 2 + r, h / 2 + r), fill=(255, 255, 255, 128))
    return Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB")


@ATTACKS.register("mask")
def mask(img: Image.Image, fraction: float) -> Image.Image:
    """Black out a centred rectangle covering ``fraction`` of the image."""
    w, h = img.size
    side = fraction**0.5
    dx, dy = w * (1 - side) / 2, h * (1 - side) / 2
    out = img.convert("RGB")
    ImageDraw.Draw(out).rectangle((dx, dy, w - dx, h - dy), fill=(0, 0, 0))
    return out


def grid_pairs(grid: dict[str, tuple[float, ...]]) -> list[tuple[str, float]]:
    """Flatten an attack grid to (attack, strength) pairs, checking every name exists."""
    for name in grid:
        ATTACKS.get(name)
    return [(name, float(s)) for name, strengths in grid.items() for s in strengths]
