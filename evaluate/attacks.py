"""Image attacks for watermark robustness: ``attack(image, strength) -> image``, registered by name.

The set follows the invisible-watermark README and the WAVES benchmark (An et al. 2024,
github.com/umd-huang-lab/WAVES): JPEG, resize (with and without restoring the size, since
decoders that assume a block grid fail differently), rotation, crop, blur, noise, brightness,
contrast, and the README's overlay and mask; then WAVES' own families:

- regeneration: ``regen_vae`` (round trips through a Stable Diffusion VAE) and ``regen_diffusion``
  (img2img at a low strength under the empty prompt, WAVES' ``DiffWMAttacker``), both with the
  model :func:`use_model` names (default: the embedded ``models/sd``), through our own generate path;
- combinations: ``combo_geometric``, ``combo_photometric``, ``combo_degradation`` and ``combo_all``
  at WAVES' relative strength 0..1 (distortions/distortions.py ``distortion_strength_paras``);
- adversarial embedding: ``adv_embed``, WAVES' ``WarmupPGDEmbedding`` (adversarial/embedding.py:
  L-inf PGD pushing the image's embedding away from the original's, eps = strength/255,
  step 0.05 * eps, random start) on the embedded CLIP image encoder.

Attacks are deterministic (noise, crop positions and PGD starts are seeded from the image size)
so a robustness table can be reproduced.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

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
    "regen_vae": (1, 2),
    "regen_diffusion": (0.1, 0.2, 0.3, 0.4),
    "combo_geometric": (0.25, 0.5),
    "combo_photometric": (0.25, 0.5),
    "combo_degradation": (0.25, 0.5),
    "combo_all": (0.25, 0.5),
    "adv_embed": (4, 8),
}
# The strengths each attack accepts (inclusive; checked when AUDIT.yaml is read): the unit's own limits
# (JPEG quality 1-100, fractions 0-1, WAVES' relative strengths 0-1, img2img strength 0-1), and for
# sizes and radii a bound that keeps a 2048 px image in memory (resize x4: 8192 px; blur 64 px).
# ``INTEGRAL`` attacks take whole numbers (round trips, JPEG quality).
STRENGTHS: dict[str, tuple[float, float]] = {
    "none": (0, 0),
    "jpeg": (1, 100),
    "resize": (0.05, 4),
    "resize_restore": (0.05, 4),
    "rotate": (-360, 360),
    "crop": (0, 0.95),
    "blur": (0, 64),
    "noise": (0, 255),
    "brightness": (0, 4),
    "contrast": (0, 4),
    "overlay": (0, 1),
    "mask": (0, 1),
    "regen_vae": (1, 10),
    "regen_diffusion": (0, 1),
    "combo_geometric": (0, 1),
    "combo_photometric": (0, 1),
    "combo_degradation": (0, 1),
    "combo_all": (0, 1),
    "adv_embed": (0, 255),
}
INTEGRAL = ("jpeg", "regen_vae")


def strength_problem(name: str, strength: object) -> str | None:
    """Why ``strength`` is not one ``name`` accepts (``STRENGTHS``, ``INTEGRAL``), or None."""
    low, high = STRENGTHS[name]
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        return f"expected a number, got {strength!r}"
    whole = name in INTEGRAL
    if not low <= strength <= high or (whole and float(strength) != int(strength)):
        kind = "a whole number" if whole else "a number"
        return f"expected {kind} from {low:g} to {high:g} for {name}, got {strength!r}"
    return None


# Attacks that run a network: the audit reports their cost apart and the demo keeps them few.
MODEL_ATTACKS = ("regen_vae", "regen_diffusion", "adv_embed")
# WAVES distortions/distortions.py: distortion -> (strength at relative 0, strength at relative 1)
WAVES_RANGES: dict[str, tuple[float, float]] = {
    "rotation": (0, 45),
    "resizedcrop": (1, 0.5),
    "erasing": (0, 0.25),
    "brightness": (1, 2),
    "contrast": (1, 2),
    "blurring": (0, 20),
    "noise": (0, 0.1),
    "compression": (90, 10),
}
COMBOS: dict[str, tuple[str, ...]] = {  # WAVES' combo attacks, applied in this order
    "combo_geometric": ("rotation", "resizedcrop", "erasing"),
    "combo_photometric": ("brightness", "contrast"),
    "combo_degradation": ("blurring", "noise", "compression"),
    "combo_all": (
        "rotation",
        "resizedcrop",
        "erasing",
        "brightness",
        "contrast",
        "blurring",
        "noise",
        "compression",
    ),
}
# WAVES adversarial/embedding.py runs N_STEPS = 200; steps of 0.05 * eps reach the L-inf boundary in 20,
# and 50 keep the attack at a quarter of the CPU cost (13 s -> 3 s an image on the embedded CLIP).
PGD_STEPS = 50
PGD_ALPHA = 0.05  # ALPHA_FACTOR: step = 0.05 * eps
DIFFUSION_STEPS = 20  # A1111's default steps; img2img runs int(strength * 20) of them
_MODEL: dict[str, Path | None] = {"sd": None, "clip": None}


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


def _rng(img: Image.Image, salt: int = 0) -> np.random.Generator:
    return np.random.default_rng(img.size[0] * 100_003 + img.size[1] + salt)


def _waves(kind: str, relative: float) -> float:
    """WAVES' ``relative_strength_to_absolute``: 0..1 onto the distortion's range."""
    lo, hi = WAVES_RANGES[kind]
    return lo + min(max(relative, 0.0), 1.0) * (hi - lo)


def _waves_one(img: Image.Image, kind: str, value: float, rng: np.random.Generator) -> Image.Image:
    """One WAVES distortion at an absolute strength (``apply_single_distortion``), seeded by ``rng``."""
    w, h = img.size
    if kind == "rotation":
        return rotate(img, value)
    if kind in ("resizedcrop", "erasing"):  # a square of ``value`` of the area at a seeded place
        side_w, side_h = max(1, round(w * value**0.5)), max(1, round(h * value**0.5))
        x, y = int(rng.integers(0, w - side_w + 1)), int(rng.integers(0, h - side_h + 1))
        if kind == "resizedcrop":
            return img.crop((x, y, x + side_w, y + side_h)).resize(img.size, Image.Resampling.BILINEAR)
        out = img.convert("RGB")
        if value > 0:
            ImageDraw.Draw(out).rectangle((x, y, x + side_w - 1, y + side_h - 1), fill=(0, 0, 0))
        return out
    if kind == "brightness":
        return brightness(img, value)
    if kind == "contrast":
        return contrast(img, value)
    if kind == "blurring":
        return blur(img, int(value))  # WAVES passes int(strength) as the blur radius
    if kind == "noise":  # std on the 0..1 scale
        arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255
        out = np.clip(arr + rng.normal(0.0, value, arr.shape), 0, 1)
        return Image.fromarray((out * 255).round().astype(np.uint8))
    return jpeg(img, int(value))


def _combo(name: str) -> Attack:
    kinds = COMBOS[name]

    def attack(img: Image.Image, strength: float) -> Image.Image:
        rng = _rng(img, 7)
        out = img.convert("RGB")
        for kind in kinds:
            out = _waves_one(out, kind, _waves(kind, strength), rng)
        return out

    attack.__doc__ = (
        f"WAVES' {name}: {' + '.join(kinds)}, each at relative strength ``strength`` (0..1) of WAVES' range."
    )
    attack.__name__ = name
    return attack


for _name in COMBOS:
    ATTACKS.register(_name)(_combo(_name))


@contextlib.contextmanager
def use_model(sd: str | Path | None = None, clip: str | Path | None = None) -> Iterator[None]:
    """Within the block, regeneration attacks use the SD model ``sd`` (a diffusers folder or a
    single-file checkpoint) and ``adv_embed`` the open_clip folder ``clip``; None = embedded."""
    before = dict(_MODEL)
    _MODEL.update(sd=Path(sd) if sd else None, clip=Path(clip) if clip else None)
    try:
        yield
    finally:
        _MODEL.update(before)


@lru_cache(maxsize=2)
def _sd(path: Path | None) -> Any:
    from t2iscope.generate.models import load_model

    return load_model(path, device="auto")


def sd_model() -> Any:
    """The Stable Diffusion model the regeneration attacks use now (cached per process)."""
    return _sd(_MODEL["sd"])


def _clip() -> Any:
    from t2iscope.paths import models_dir
    from t2iscope.weights import load_model

    return load_model(_MODEL["clip"] or models_dir() / "clip", expect="open_clip")


def _multiple_of_8(img: Image.Image) -> tuple[Image.Image, tuple[int, int]]:
    w, h = img.size
    size = max(8, w // 8 * 8), max(8, h // 8 * 8)
    return (
        img.convert("RGB") if size == img.size else img.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    ), (
        w,
        h,
    )


@ATTACKS.register("regen_vae")
def regen_vae(img: Image.Image, round_trips: float) -> Image.Image:
    """Encode and decode ``round_trips`` times with the SD model's VAE (:func:`use_model`), at the image's
    own size (rounded to 8 px and back): WAVES' VAE regeneration, with SD's VAE in place of compressai's."""
    from t2iscope.generate.diffusion import decode_latents, encode_images

    model = sd_model()
    out, size = _multiple_of_8(img)
    for _ in range(max(1, int(round_trips))):
        out = decode_latents(model, encode_images(model, [out]))[0]
    return out if out.size == size else out.resize(size, Image.Resampling.BICUBIC)


@ATTACKS.register("regen_diffusion")
def regen_diffusion(img: Image.Image, strength: float) -> Image.Image:
    """img2img at denoising ``strength`` (0.1-0.4) under the empty prompt, 20 steps of DDIM, seed 0, at the
    image's own size, with the SD model of :func:`use_model`: WAVES' diffusion regeneration."""
    from t2iscope.generate.img2img import img2img
    from t2iscope.generate.params import Params

    out, size = _multiple_of_8(img)
    p = Params(prompt="", seed=0, steps=DIFFUSION_STEPS, sampler="DDIM", width=out.width, height=out.height)
    result = img2img(sd_model(), [p], out, strength)[0]
    return result if result.size == size else result.resize(size, Image.Resampling.BICUBIC)


@ATTACKS.register("adv_embed")
def adv_embed(img: Image.Image, budget: float) -> Image.Image:
    """L-inf PGD of ``budget``/255 (e.g. 4, 8) pushing the CLIP image embedding away from the original's
    (MSE loss ascended, 50 steps of 0.05 * eps, seeded random start): WAVES' adversarial embedding attack
    on the embedded CLIP (:func:`use_model`). The image is resized to the encoder's input inside the graph,
    so the perturbation is at full resolution."""
    import torch
    import torch.nn.functional as F

    from t2iscope.nets import normalize_pixels

    clip = _clip()
    cfg = clip.model.visual.preprocess_cfg
    side = clip.input_size
    eps = budget / 255
    x = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]

    def embed(pixels: torch.Tensor) -> torch.Tensor:
        small = F.interpolate(pixels, size=(side, side), mode="bicubic", align_corners=False, antialias=True)
        return clip.model.encode_image(normalize_pixels(small * 255, cfg["mean"], cfg["std"]))

    gen = torch.Generator().manual_seed(int(_rng(img).integers(2**31)))
    with torch.no_grad():
        target = embed(x)
    adv = (x + (torch.rand(x.shape, generator=gen) * 2 - 1) * eps).clamp(0, 1)
    for _ in range(PGD_STEPS):
        adv.requires_grad_(True)
        loss = F.mse_loss(embed(adv), target)
        (grad,) = torch.autograd.grad(loss, adv)
        adv = adv.detach() + PGD_ALPHA * eps * grad.sign()
        adv = (x + (adv - x).clamp(-eps, eps)).clamp(0, 1)
    arr = (adv[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(arr)


def grid_pairs(grid: dict[str, tuple[float, ...]]) -> list[tuple[str, float]]:
    """Flatten an attack grid to (attack, strength) pairs, checking every name exists."""
    for name in grid:
        ATTACKS.get(name)
    return [(name, float(s)) for name, strengths in grid.items() for s in strengths]
