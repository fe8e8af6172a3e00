"""Seeds: one CPU generator per image, so a seed gives the same image at any batch size or device.

diffusers draws a batch's noise from a list of generators one image at a time, so image i depends
only on generator i. Drawing on the CPU (the default) makes the noise identical on CPU and GPU;
the rest differs only by floating-point tolerance.
"""

from __future__ import annotations

import secrets

import torch

RANDOM = -1  # A1111's "pick one for me"
MAX_SEED = 2**32 - 1


def resolve_seed(seed: int) -> int:
    """Return ``seed``, or a fresh random one for -1 (recorded by callers so the image is reproducible)."""
    return secrets.randbelow(MAX_SEED + 1) if seed == RANDOM else seed


def batch_seeds(seed: int, n: int) -> list[int]:
    """A1111's convention: a batch of ``n`` images from seed ``s`` uses s, s+1, ..., s+n-1."""
    first = resolve_seed(seed)
    return [first + i for i in range(n)]


def generators(seeds: list[int], device: str | torch.device = "cpu") -> list[torch.Generator]:
    """One seeded generator per image; noise is drawn on ``device`` (CPU unless asked otherwise)."""
    return [torch.Generator(device=device).manual_seed(s) for s in seeds]
