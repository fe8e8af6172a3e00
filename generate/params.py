"""The parameters of one generation request, checked before any work starts.

Names, defaults and limits follow AUTOMATIC1111's web UI (``t2iscope.generate.limits`` holds them
all, with their sources). Every check raises a one-line ConfigError naming the offending field, or
with ``cli=True`` the command-line option (``--cfg-scale must be a finite number from 0 to 30, got
nan``); input images that cannot be read, or declare more pixels than allowed, are a DataError.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from t2iscope.errors import ConfigError, DataError
from t2iscope.generate.extra_networks import lora_requests, parse_extra_networks
from t2iscope.generate.limits import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CFG_RESCALE,
    DEFAULT_CFG_SCALE,
    DEFAULT_CLIP_SKIP,
    DEFAULT_DENOISING_STRENGTH,
    DEFAULT_EMPHASIS,
    DEFAULT_HR_SCALE,
    DEFAULT_HR_UPSCALER,
    DEFAULT_SAMPLER,
    DEFAULT_STEPS,
    EMPHASIS_MODES,
    HR_UPSCALERS,
    MAX_BATCH_SIZE,
    MAX_CFG_SCALE,
    MAX_CLIP_SKIP,
    MAX_HR_SCALE,
    MAX_INPUT_PIXELS,
    MAX_SEED,
    MAX_SIDE,
    MAX_STEPS,
    MIN_SIDE,
    RANDOM_SEED,
)
from t2iscope.generate.samplers import resolve
from t2iscope.generate.schedules import AUTOMATIC, check_schedule_type
from t2iscope.generate.seeds import batch_seeds
from t2iscope.pixels import to_mask, to_rgb


def option_name(field: str, cli: bool = False) -> str:
    """How an error names ``field``: ``cfg_scale``, or its option ``--cfg-scale`` when ``cli``."""
    return f"--{field.replace('_', '-')}" if cli else field


def _shown(bound: float) -> str:
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def _within(value: object, low: float, high: float, integer: bool) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):  # exact, even past float range (10**400 is no NaN, just too large)
        return low <= value <= high
    return not integer and isinstance(value, float) and math.isfinite(value) and low <= value <= high


def check_number(
    field: str, value: object, low: float, high: float, *, integer: bool = False, cli: bool = False
) -> None:
    """Refuse ``value`` unless it is a finite number (an integer when ``integer``) in [low, high].

    Raises ConfigError: ``steps must be an integer from 1 to 150, got 0``. NaN and infinities are
    refused by name (they fail every comparison, so a ``value < low`` test alone lets them through).
    """
    if not _within(value, low, high, integer):
        kind = "an integer" if integer else "a finite number"
        raise ConfigError(
            f"{option_name(field, cli)} must be {kind} from {_shown(low)} to {_shown(high)}, got {value!r}"
        )


def check_side(field: str, value: object, *, cli: bool = False) -> None:
    """Refuse an image side (``width``/``height``, pixels) unless a multiple of 8 from 8 to 2048."""
    if not (isinstance(value, int) and MIN_SIDE <= value <= MAX_SIDE and value % 8 == 0):
        raise ConfigError(
            f"{option_name(field, cli)} must be a multiple of 8 from {MIN_SIDE} to {MAX_SIDE} pixels, "
            f"got {value!r}"
        )


@dataclass(frozen=True)
class Params:
    """One prompt at one seed (or a batch from that seed); width/height None = the model's native size."""

    prompt: str
    negative_prompt: str = ""
    seed: int = RANDOM_SEED
    steps: int = DEFAULT_STEPS
    cfg_scale: float = DEFAULT_CFG_SCALE
    # Guidance rescale (Lin et al. 2023, diffusers' guidance_rescale): 0 is plain CFG, as SD.
    cfg_rescale: float = DEFAULT_CFG_RESCALE
    sampler: str = DEFAULT_SAMPLER
    # A1111's "Schedule type": Automatic = the sampler's own (schedules.SCHEDULE_CHOICES)
    scheduler: str = AUTOMATIC
    width: int | None = None
    height: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    # A1111's variation seed: the starting noise slerped toward subseed's by subseed_strength (0..1)
    subseed: int = RANDOM_SEED
    subseed_strength: float = 0.0
    clip_skip: int = DEFAULT_CLIP_SKIP  # A1111's: 1 = the text encoder's last layer, 2 = penultimate
    emphasis: str = DEFAULT_EMPHASIS  # A1111's emphasis mode for (text:weight)
    # Hires fix (A1111's names): a first pass at width x height, upscaled by hr_scale with
    # hr_upscaler, then hr_second_pass_steps (0 = steps) at denoising_strength.
    enable_hr: bool = False
    hr_scale: float = DEFAULT_HR_SCALE
    hr_upscaler: str = DEFAULT_HR_UPSCALER
    hr_second_pass_steps: int = 0
    denoising_strength: float = DEFAULT_DENOISING_STRENGTH

    def check(self, cli: bool = False) -> Params:
        """Every field within the limits of ``t2iscope.generate.limits``; returns self.

        steps 1..150, cfg_scale 0..30 and cfg_rescale 0..1 (finite), batch_size 1..64, seed -1
        (random) or 0..2**32-1 with the whole batch s..s+n-1 in that range, width/height None or a
        multiple of 8 from 8 to 2048. Raises ConfigError naming the field (the option when ``cli``).
        """
        resolve(self.sampler, self.scheduler, field=option_name("sampler", cli))
        check_schedule_type(self.scheduler, option_name("scheduler", cli))
        check_number("steps", self.steps, 1, MAX_STEPS, integer=True, cli=cli)
        check_number("cfg_scale", self.cfg_scale, 0.0, MAX_CFG_SCALE, cli=cli)
        check_number("cfg_rescale", self.cfg_rescale, 0.0, 1.0, cli=cli)
        check_number("batch_size", self.batch_size, 1, MAX_BATCH_SIZE, integer=True, cli=cli)
        if self.seed != RANDOM_SEED:
            if not _within(self.seed, 0, MAX_SEED, integer=True):
                raise ConfigError(
                    f"{option_name('seed', cli)} must be -1 (random) or an integer from 0 to {MAX_SEED}, "
                    f"got {self.seed!r}"
                )
            if self.seed + self.batch_size - 1 > MAX_SEED:
                raise ConfigError(
                    f"{option_name('seed', cli)} {self.seed} with {option_name('batch_size', cli)} "
                    f"{self.batch_size} goes past the largest seed {MAX_SEED} (a batch uses seeds s..s+n-1)"
                )
        for name in ("width", "height"):
            if (value := getattr(self, name)) is not None:
                check_side(name, value, cli=cli)
        if self.subseed != RANDOM_SEED and not _within(self.subseed, 0, MAX_SEED, integer=True):
            raise ConfigError(
                f"{option_name('subseed', cli)} must be -1 (random) or an integer from 0 to {MAX_SEED}, "
                f"got {self.subseed!r}"
            )
        check_number("subseed_strength", self.subseed_strength, 0.0, 1.0, cli=cli)
        if self.subseed != RANDOM_SEED and self.subseed + self.batch_size - 1 > MAX_SEED:
            raise ConfigError(
                f"{option_name('subseed', cli)} {self.subseed} with {option_name('batch_size', cli)} "
                f"{self.batch_size} goes past the largest seed {MAX_SEED} (a batch uses subseeds s..s+n-1)"
            )
        check_number("clip_skip", self.clip_skip, 1, MAX_CLIP_SKIP, integer=True, cli=cli)
        if self.emphasis not in EMPHASIS_MODES:
            raise ConfigError(
                f"{option_name('emphasis', cli)} must be one of {', '.join(EMPHASIS_MODES)}; "
                f"got {self.emphasis!r}"
            )
        if self.enable_hr:
            check_number("hr_scale", self.hr_scale, 1.0, MAX_HR_SCALE, cli=cli)
            if self.hr_upscaler not in HR_UPSCALERS:
                raise ConfigError(
                    f"{option_name('hr_upscaler', cli)} must be one of {', '.join(HR_UPSCALERS)}; "
                    f"got {self.hr_upscaler!r}"
                )
            check_number(
                "hr_second_pass_steps", self.hr_second_pass_steps, 0, MAX_STEPS, integer=True, cli=cli
            )
            check_number("denoising_strength", self.denoising_strength, 0.0, 1.0, cli=cli)
        return self

    def settings_key(self) -> tuple:
        """Images whose keys are equal can share one batch (same schedule, guidance, size, LoRAs)."""
        loras = tuple(lora_requests(parse_extra_networks(self.prompt)[1]))
        return (*(getattr(self, f.name) for f in dataclasses.fields(self) if f.name in _SHARED), loras)

    def expand(self) -> list[Params]:
        """One single-image Params per batch member, as A1111's ``all_seeds``/``all_subseeds``.

        Without a variation strength the seeds count up, s, s+1, ...; with one every image keeps
        the seed and the variation seeds count up instead (variations of one picture), as A1111's
        processing.py does. A random subseed is drawn once.
        """
        seeds = batch_seeds(self.seed, self.batch_size)
        subseeds = batch_seeds(self.subseed, self.batch_size)
        if self.subseed_strength:
            seeds = [seeds[0]] * self.batch_size
        return [
            dataclasses.replace(self, seed=s, batch_size=1, subseed=sub)
            for s, sub in zip(seeds, subseeds, strict=True)
        ]


# Fields that change the sampling run for the whole batch (prompts, seeds and subseeds differ per image)
_SHARED = frozenset(
    {
        "steps",
        "cfg_scale",
        "cfg_rescale",
        "sampler",
        "scheduler",
        "width",
        "height",
        "subseed_strength",
        "clip_skip",
        "emphasis",
        "enable_hr",
        "hr_scale",
        "hr_upscaler",
        "hr_second_pass_steps",
        "denoising_strength",
    }
)


def check_strength(strength: float, cli: bool = False) -> float:
    """Denoising strength: a finite fraction of the schedule, 0..1 (A1111's slider)."""
    check_number("strength", strength, 0.0, 1.0, cli=cli)
    return strength


def check_same_settings(batch: list[Params]) -> None:
    if not batch:
        raise ConfigError("empty batch: nothing to generate")
    if len({p.settings_key() for p in batch}) > 1:
        raise ConfigError(f"a batch must share its settings ({', '.join(sorted(_SHARED))})")


def target_size(p: Params, image: Image.Image) -> tuple[int, int]:
    """The size to generate at: the requested one, else the input image's own (width, height).

    A side taken from the image must be a valid size too (multiple of 8, 8..2048 pixels), or an
    oversized input would set an oversized generation; raises ConfigError suggesting --width/--height.
    """
    width, height = p.width or image.width, p.height or image.height
    for value in (width, height):
        if not (MIN_SIDE <= value <= MAX_SIDE and value % 8 == 0):
            raise ConfigError(
                f"image size {width}x{height}: each side must be a multiple of 8 from {MIN_SIDE} to "
                f"{MAX_SIDE} pixels; pass --width/--height"
            )
    return width, height


def load_image(path: str | Path, what: str = "image", mode: str = "RGB") -> Image.Image:
    """Open an image file fully (so a broken file fails here, not mid-generation).

    ``what`` names it in errors (``--image``). The size is checked from the header before any
    pixel is decoded: more than ``limits.MAX_INPUT_PIXELS`` (PIL's decompression-bomb threshold,
    enforced here even where PIL's own check is switched off) is a DataError, as is a missing or
    unreadable file.
    """
    try:
        with warnings.catch_warnings():
            # PIL warns (and only past twice the threshold refuses) at open; both are refusals here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_INPUT_PIXELS:
                    raise DataError(
                        f"{what} {path}: {im.width}x{im.height} pixels is over the limit of "
                        f"{MAX_INPUT_PIXELS:,} (PIL's decompression-bomb threshold)"
                    )
                im.load()
                # one reading of every file (t2iscope.pixels): 16-bit, alpha, EXIF orientation
                return to_mask(im) if mode == "L" else to_rgb(im) if mode == "RGB" else im.convert(mode)
    except FileNotFoundError:
        raise DataError(f"{what} {path}: no such file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # PIL's own message quotes its error threshold (twice ours): name the one limit we apply.
        raise DataError(
            f"{what} {path}: refused as a decompression bomb (over the limit of {MAX_INPUT_PIXELS:,} pixels)"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise DataError(f"{what} {path}: not a readable image ({exc})") from None
