"""Turning a generated image into a file: optional upscale, invisible watermark, A1111 infotext.

invisible-watermark refuses images under 256x256 and the embedded model makes 64x64 ones, so a
watermarked output is first upscaled (Lanczos) by the smallest integer factor that fits; the
factor is recorded (``Output scale`` in the infotext, ``output_scale`` in the manifest) so a judge
can downsample back to the model's pixels.

Measured caveat: an upscaled small picture has little texture in the 4x4 DCT blocks dwtDct writes
into, so SD's stock dwtDct mark reads back only 64-99% of its bits on upscaled 64px pictures
(64% on an embedded-model dog on a pale background), where ``dwtDctSvd`` and ``rivaGan`` read
back exactly; ``--watermark-method dwtDctSvd`` is the choice when the mark must be readable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from t2iscope.errors import ConfigError
from t2iscope.generate import pnginfo, watermark
from t2iscope.generate.limits import DEFAULT_EMPHASIS, MAX_UPSCALE
from t2iscope.generate.params import Params, check_number, option_name
from t2iscope.generate.samplers import SAMPLERS, resolve
from t2iscope.generate.schedules import AUTOMATIC


@dataclass(frozen=True)
class OutputOptions:
    """``watermark=None`` skips marking (and the upscale, unless ``upscale`` asks for one)."""

    watermark: str | None = "dwtDct"
    payload: bytes | None = None  # None: the method's default (SD's b"StableDiffusionV1")
    upscale: int | None = None

    def check(self, cli: bool = False) -> OutputOptions:
        """A known watermark method; upscale None or 1..8 (A1111's Extras resize slider).

        Raises ConfigError naming the field (the option when ``cli``).
        """
        if self.watermark is not None:
            watermark.min_size(self.watermark)  # raises ConfigError on an unknown method
        if self.upscale is not None:
            check_number("upscale", self.upscale, 1, MAX_UPSCALE, integer=True, cli=cli)
        return self

    def check_size(self, width: int, height: int, cli: bool = False) -> None:
        """Refuse an explicit upscale that leaves a (width x height) image too small to watermark.

        Called once the generation size is known, before generating (not at the first save).
        """
        if self.watermark is None or self.upscale is None:
            return
        side = watermark.min_size(self.watermark)
        w, h = width * self.upscale, height * self.upscale
        if w * h < side * side:
            raise ConfigError(
                f"{option_name('upscale', cli)} {self.upscale} makes {w}x{h} images, too small for the "
                f"{self.watermark} watermark (width*height >= {side}x{side}); upscale more or skip it"
            )

    @property
    def method_payload(self) -> bytes | None:
        if self.watermark is None:
            return None
        return self.payload or watermark.default_payload(self.watermark)

    def scale_for(self, width: int, height: int) -> int:
        if self.upscale is not None:
            return self.upscale
        if self.watermark is None:
            return 1
        side = watermark.min_size(self.watermark)
        return max(1, math.ceil(side / math.sqrt(width * height)))


def finish(image: Image.Image, opts: OutputOptions) -> tuple[Image.Image, int]:
    """(upscaled and watermarked image, the integer scale applied)."""
    scale = opts.scale_for(*image.size)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.LANCZOS)
    if opts.watermark is not None:
        image = watermark.embed(image, opts.watermark, opts.method_payload)
    return image, scale


def first_pass_size(p: Params, size: tuple[int, int]) -> tuple[int, int]:
    """The first pass's (width, height) of an image generated at ``size`` (A1111's ``Size``).

    Without hires fix it is ``size``; with it the image is ``int(side * hr_scale)`` a side, and the
    first pass's side (a multiple of 8) is the requested one, else the smallest it can be:
    ``ceil(side / hr_scale)``.
    """
    if not p.enable_hr:
        return size
    width, height = (math.ceil(side / p.hr_scale - 1e-9) for side in size)
    return p.width or width, p.height or height


def sampler_and_schedule(p: Params) -> tuple[str, str | None]:
    """(A1111 sampler name, schedule type) as used: ``DPM++ 2M Karras`` -> (``DPM++ 2M``, ``Karras``),
    ``Automatic`` -> the sampler's own; None for samplers with their own timesteps (DDIM, PLMS, UniPC).
    """
    name, schedule = resolve(p.sampler, p.scheduler)
    used = SAMPLERS.get(name).resolve_schedule(schedule)
    return name, None if used == AUTOMATIC else used


def infotext(
    p: Params,
    size: tuple[int, int],
    model_id: str,
    scale: int,
    opts: OutputOptions,
    strength: float | None = None,
    *,
    model_hash: str | None = None,
    extra: Mapping[str, str | None] | None = None,
) -> str:
    """A1111's ``parameters`` text for one image, with A1111's keys, order and conditions.

    ``size`` is the generated image's size before the output upscale; ``Size`` is its first pass
    (A1111's, the hires fix's ``Hires upscale`` gives the rest). ``strength`` is img2img/inpaint's
    denoising strength; with hires fix ``Denoising strength`` is the second pass's. ``model_hash``
    (``Model.model_hash``, A1111's short sha256 of a single-file checkpoint) comes before ``Model``
    as A1111 writes it. ``extra`` adds fields others compute (``Lora hashes``, ``TI hashes``)
    after A1111's own, before ours; None values are left out.
    """
    sampler, schedule = sampler_and_schedule(p)
    width, height = first_pass_size(p, size)
    variation = p.subseed_strength > 0
    hires = p.enable_hr
    return pnginfo.format_parameters(
        p.prompt,
        p.negative_prompt,
        {
            "Steps": p.steps,
            "Sampler": sampler,
            "Schedule type": schedule,
            "CFG scale": p.cfg_scale,
            "CFG rescale": p.cfg_rescale or None,
            "Seed": p.seed,
            "Size": f"{width}x{height}",
            "Model hash": model_hash,
            "Model": model_id,
            "Variation seed": p.subseed if variation else None,
            "Variation seed strength": p.subseed_strength if variation else None,
            "Denoising strength": p.denoising_strength if hires else strength,
            "Clip skip": p.clip_skip if p.clip_skip > 1 else None,
            "Hires upscale": p.hr_scale if hires else None,
            "Hires steps": p.hr_second_pass_steps if hires and p.hr_second_pass_steps > 0 else None,
            "Hires upscaler": p.hr_upscaler if hires else None,
            "Emphasis": p.emphasis if p.emphasis != DEFAULT_EMPHASIS else None,
            **(extra or {}),
            "Output scale": scale if scale != 1 else None,
            "Watermark": opts.watermark,
        },
    )


def save(
    path: str | Path,
    image: Image.Image,
    p: Params,
    model_id: str,
    opts: OutputOptions,
    strength: float | None = None,
    *,
    model_hash: str | None = None,
    extra: Mapping[str, str | None] | None = None,
) -> int:
    """Finish ``image`` and write it atomically with its infotext; returns the output scale."""
    size = image.size
    final, scale = finish(image, opts)
    text = infotext(p, size, model_id, scale, opts, strength, model_hash=model_hash, extra=extra)
    pnginfo.save_png(path, final, text)
    return scale
