"""Seeds: one CPU generator per image, so a seed gives the same image at any batch size or device.

diffusers draws a batch's noise from a list of generators one image at a time, so image i depends
only on generator i. Drawing on the CPU (the default) makes the noise identical on CPU and GPU;
the rest differs only by floating-point tolerance.
"""

from __future__ import annotations

import secrets

import torch

from t2iscope.generate.limits import MAX_SEED, RANDOM_SEED


def resolve_seed(seed: int, n: int = 1) -> int:
    """Return ``seed``, or for -1 a random one with room for ``n`` consecutive seeds up to MAX_SEED.

    Callers record the seed, so the image is reproducible.
    """
    return secrets.randbelow(MAX_SEED + 2 - n) if seed == RANDOM_SEED else seed


def batch_seeds(seed: int, n: int) -> list[int]:
    """A1111's convention: a batch of ``n`` images from seed ``s`` uses s, s+1, ..., s+n-1."""
    first = resolve_seed(seed, n)
    return [first + i for i in range(n)]


def generators(seeds: list[int], device: str | torch.device = "cpu") -> list[torch.Generator]:
    """One seeded generator per image; noise is drawn on ``device`` (CPU unless asked otherwise)."""
    return [torch.Generator(device=device).manual_seed(s) for s in seeds]
