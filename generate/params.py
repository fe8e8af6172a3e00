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
from t2iscope.generate.limits import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CFG_RESCALE,
    DEFAULT_CFG_SCALE,
    DEFAULT_SAMPLER,
    DEFAULT_STEPS,
    MAX_BATCH_SIZE,
    MAX_CFG_SCALE,
    MAX_INPUT_PIXELS,
    MAX_SEED,
    MAX_SIDE,
    MAX_STEPS,
    MIN_SIDE,
    RANDOM_SEED,
)
from t2iscope.generate.samplers import SAMPLERS
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
    width: int | None = None
    height: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE

    def check(self, cli: bool = False) -> Params:
        """Every field within the limits of ``t2iscope.generate.limits``; returns self.

        steps 1..150, cfg_scale 0..30 and cfg_rescale 0..1 (finite), batch_size 1..64, seed -1
        (random) or 0..2**32-1 with the whole batch s..s+n-1 in that range, width/height None or a
        multiple of 8 from 8 to 2048. Raises ConfigError naming the field (the option when ``cli``).
        """
        if self.sampler not in SAMPLERS:
            SAMPLERS.get(self.sampler)  # raises ConfigError listing the valid names
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
        return self

    def settings_key(self) -> tuple:
        """Images whose keys are equal can share one batch (same schedule, guidance and size)."""
        return (self.steps, self.cfg_scale, self.cfg_rescale, self.sampler, self.width, self.height)

    def expand(self) -> list[Params]:
        """One single-image Params per batch member, seeds s, s+1, ... (A1111's convention)."""
        return [
            dataclasses.replace(self, seed=s, batch_size=1) for s in batch_seeds(self.seed, self.batch_size)
        ]


def check_strength(strength: float, cli: bool = False) -> float:
    """Denoising strength: a finite fraction of the schedule, 0..1 (A1111's slider)."""
    check_number("strength", strength, 0.0, 1.0, cli=cli)
    return strength


def check_same_settings(batch: list[Params]) -> None:
    if not batch:
        raise ConfigError("empty batch: nothing to generate")
    if len({p.settings_key() for p in batch}) > 1:
        raise ConfigError("a batch must share steps, cfg_scale, cfg_rescale, sampler, width and height")


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
