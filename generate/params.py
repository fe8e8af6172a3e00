"""The parameters of one generation request, checked before any work starts.

Names and defaults follow AUTOMATIC1111's web UI, so its users find what they know. Every check
raises a one-line ConfigError naming the offending field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from t2iscope.errors import ConfigError, DataError
from t2iscope.generate.samplers import DEFAULT_SAMPLER, SAMPLERS
from t2iscope.generate.seeds import RANDOM, batch_seeds


@dataclass(frozen=True)
class Params:
    """One prompt at one seed (or a batch from that seed); width/height None = the model's native size."""

    prompt: str
    negative_prompt: str = ""
    seed: int = RANDOM
    steps: int = 20
    cfg_scale: float = 7.0
    # Guidance rescale (Lin et al. 2023, diffusers' guidance_rescale): 0 is plain CFG, as SD.
    cfg_rescale: float = 0.0
    sampler: str = DEFAULT_SAMPLER
    width: int | None = None
    height: int | None = None
    batch_size: int = 1

    def check(self) -> Params:
        if self.sampler not in SAMPLERS:
            SAMPLERS.get(self.sampler)  # raises ConfigError listing the valid names
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        if self.cfg_scale < 0:
            raise ConfigError(f"cfg_scale must be >= 0, got {self.cfg_scale}")
        if not 0.0 <= self.cfg_rescale <= 1.0:
            raise ConfigError(f"cfg_rescale must be between 0 and 1, got {self.cfg_rescale}")
        if self.seed < RANDOM:
            raise ConfigError(f"seed must be >= 0 (or -1 for random), got {self.seed}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and (value < 8 or value % 8):
                raise ConfigError(f"{name} must be a positive multiple of 8, got {value}")
        return self

    def settings_key(self) -> tuple:
        """Images whose keys are equal can share one batch (same schedule, guidance and size)."""
        return (self.steps, self.cfg_scale, self.cfg_rescale, self.sampler, self.width, self.height)

    def expand(self) -> list[Params]:
        """One single-image Params per batch member, seeds s, s+1, ... (A1111's convention)."""
        return [
            dataclasses.replace(self, seed=s, batch_size=1) for s in batch_seeds(self.seed, self.batch_size)
        ]


def check_strength(strength: float) -> float:
    if not 0.0 <= strength <= 1.0:
        raise ConfigError(f"strength must be between 0 and 1, got {strength}")
    return strength


def check_same_settings(batch: list[Params]) -> None:
    if not batch:
        raise ConfigError("empty batch: nothing to generate")
    if len({p.settings_key() for p in batch}) > 1:
        raise ConfigError("a batch must share steps, cfg_scale, cfg_rescale, sampler, width and height")


def load_image(path: str | Path, what: str = "image", mode: str = "RGB") -> Image.Image:
    """Open an image file fully (so a broken file fails here, not mid-generation)."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert(mode)
    except FileNotFoundError:
        raise DataError(f"{what} {path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{what} {path}: not a readable image ({exc})") from None
