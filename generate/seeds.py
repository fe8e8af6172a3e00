"""Seeds: one CPU generator per image, so a seed gives the same image at any batch size or device.

Image i's noise (the start and every ancestral step's) comes only from generator i, seeded with
its seed (:class:`ImageNoise`). Drawing on the CPU (A1111's "Random number generator source:
CPU") makes the noise identical on CPU and GPU; the rest differs only by floating-point tolerance.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

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


def slerp(val: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """A1111's spherical interpolation of two noises (modules/rng.py ``slerp``), ``val`` 0 = ``low``.

    Norms are taken along dim 1 of [C, H, W] noise, as A1111 does; nearly parallel noises fall back
    to A1111's linear mix (``low * val + high * (1 - val)``, its order kept for parity).
    """
    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)
    if dot.mean() > 0.9995:
        return low * val + high * (1 - val)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - val) * omega) / so).unsqueeze(1) * low + (torch.sin(val * omega) / so).unsqueeze(
        1
    ) * high


class ImageNoise:
    """Each image's noise from its own seed: the starting noise, then the samplers' fresh noise.

    A1111's ``ImageRNG`` (modules/rng.py) with its CPU source: image i's generator is seeded with
    ``seeds[i]``; the first draw is the starting noise [C, H, W], slerped toward the noise of
    ``subseeds[i]`` by ``subseed_strength`` (A1111's "Variation seed"/"Variation seed strength");
    later draws (ancestral samplers) continue image i's generator. So an image never depends on its
    batch, and the same seed gives the same noise on CPU and GPU. ``mark`` ([B, C, H, W] -> same)
    rewrites the starting noise last, e.g. a Tree-Ring key (``generate.treering``); later draws
    are left alone.
    """

    def __init__(
        self,
        seeds: list[int],
        shape: tuple[int, int, int],
        *,
        subseeds: list[int] | None = None,
        subseed_strength: float = 0.0,
        device: str | torch.device = "cpu",
        mark: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.seeds, self.shape, self.device, self.mark = seeds, shape, device, mark
        self.subseeds, self.subseed_strength = subseeds, subseed_strength
        self.generators = generators(seeds)

    def first(self) -> torch.Tensor:
        """[B, C, H, W] starting noise (unit variance)."""
        noises = []
        for i, gen in enumerate(self.generators):
            noise = torch.randn(self.shape, generator=gen)
            if self.subseeds is not None and self.subseed_strength:
                sub = torch.randn(self.shape, generator=torch.Generator().manual_seed(self.subseeds[i]))
                noise = slerp(self.subseed_strength, noise, sub)
            noises.append(noise)
        first = torch.stack(noises)
        return (first if self.mark is None else self.mark(first)).to(self.device)

    def next(self) -> torch.Tensor:
        """[B, C, H, W] fresh noise, each image from its own generator."""
        return torch.stack([torch.randn(self.shape, generator=g) for g in self.generators]).to(self.device)
