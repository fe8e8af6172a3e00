"""Tree-Ring watermark (Wen et al. 2023): a key in the Fourier transform of the initial latent noise.

Generation replaces, in one latent channel, the centred disc of the noise's 2-D Fourier transform
with a key of concentric rings; detection encodes an image with the VAE, runs DDIM backwards to
the initial noise under the empty prompt (guidance 1), and measures the mean complex L1 distance
to the key inside the disc: small means marked. Nothing is added to pixels, so the mark survives
what the model's own VAE and denoiser would reproduce.

Reference: github.com/YuxinWenRick/tree-ring-watermark, ``optim_utils.py`` (``circle_mask``,
``get_watermarking_pattern`` with ``w_pattern="ring"``, ``inject_watermark`` with
``w_injection="complex"``, ``eval_watermark`` with ``w_measurement="l1_complex"``,
``get_p_value``) and ``inverse_stable_diffusion.py`` (``backward_ddim``, ``forward_diffusion``);
defaults of ``run_tree_ring_watermark.py`` and ``scripts/tree_ring.sh`` (``w_seed=999999``,
``--w_channel 3 --w_pattern ring``, ``w_radius=10`` on SD's 64x64 latents). Tests compare every
step with a copy of that code (tests/generate/test_treering.py).

Our adaptation: the radius scales with the latent side (10 of 64, at least 2; the embedded model's
16x16 latents get 3), inversion runs on A1111's DDIM timesteps through our own denoiser (so any
SD 1.x/2.x model, epsilon or v-prediction, inverts the same way), and rectangular latents use
their own centre (the reference only handles squares).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from scipy.stats import ncx2

from t2iscope.errors import ConfigError, DataError

if TYPE_CHECKING:
    from t2iscope.generate.models import Model
    from t2iscope.generate.schedules import NoiseLevels

METHOD = "treering"
DEFAULT_SEED = 999999  # run_tree_ring_watermark.py: --w_seed
DEFAULT_CHANNEL = 3  # scripts/tree_ring.sh: --w_channel 3
REFERENCE_RADIUS, REFERENCE_SIDE = 10, 64  # --w_radius 10 on SD's 512 px -> 64x64 latents
MIN_RADIUS = 2
DEFAULT_INVERSION_STEPS = 50  # run_tree_ring_watermark.py: test_num_inference_steps = num_inference_steps
# Decoder inversion (Hong et al. 2023, "On Exact Inversion of DPM-Solvers", github.com/smhongok/inv-dpm,
# ``decoder_inv``): Adam at lr 0.1 with a cosine schedule after 10 warm-up steps, from the encoder's
# latents, on the summed squared pixel error; they run 100 steps.
DECODER_LR, DECODER_WARMUP = 0.1, 10
_SPEC = re.compile(r"treering:seed=(\d+),radius=(\d+),channel=(-?\d+)")


@dataclass(frozen=True)
class TreeRingKey:
    """The key: the noise seed of the ring values, the disc radius (latent pixels, 0 = scaled to the
    latent side) and the channel it lives in (-1 = every channel)."""

    seed: int = DEFAULT_SEED
    radius: int = 0
    channel: int = DEFAULT_CHANNEL

    def radius_for(self, side: int) -> int:
        """The disc radius on latents whose shorter side is ``side``: the given one, or 10/64 of it
        (``side`` 0: the radius as given, 0 meaning "scaled")."""
        if not side:
            return self.radius
        return self.radius or max(MIN_RADIUS, math.ceil(REFERENCE_RADIUS * side / REFERENCE_SIDE))

    def spec(self, side: int) -> str:
        """The payload recorded: ``treering:seed=S,radius=R,channel=C`` on latents of short side ``side``."""
        return f"treering:seed={self.seed},radius={self.radius_for(side)},channel={self.channel}"

    @classmethod
    def parse(cls, spec: str) -> TreeRingKey:
        """The key a :meth:`spec` string names; ConfigError for any other text."""
        m = _SPEC.fullmatch(spec.strip())
        if not m:
            raise ConfigError(f"tree-ring key {spec!r}: expected treering:seed=S,radius=R,channel=C")
        return cls(int(m[1]), int(m[2]), int(m[3]))

    def check(self, channels: int) -> None:
        """ConfigError unless the channel exists in ``channels``-channel latents and the radius is >= 0."""
        if not -1 <= self.channel < channels or self.radius < 0:
            raise ConfigError(
                f"tree-ring key channel {self.channel} / radius {self.radius}: channel must be -1 "
                f"(all) or 0..{channels - 1}, radius >= 0"
            )

    def mask(self, shape: Sequence[int]) -> torch.Tensor:
        """Boolean [C, H, W]: the disc (in the fftshifted spectrum) in the key's channel(s)."""
        c, h, w = shape
        self.check(c)
        disc = torch.from_numpy(circle_mask(h, w, self.radius_for(min(h, w))))
        out = torch.zeros((c, h, w), dtype=torch.bool)
        out[slice(None) if self.channel == -1 else self.channel] = disc
        return out

    def pattern(self, shape: Sequence[int]) -> torch.Tensor:
        """Complex [C, H, W] fftshifted key: ring r (1..R) holds one value taken from a seeded
        noise's spectrum (``gt_patch_tmp[0, j, 0, i]`` in the reference); outside the disc it is
        that spectrum unchanged (never read)."""
        c, h, w = shape
        gen = torch.Generator().manual_seed(self.seed)
        noise = torch.randn((1, c, h, w), generator=gen)[0]  # the reference's global-seed randn, on CPU
        spectrum = torch.fft.fftshift(torch.fft.fft2(noise), dim=(-1, -2))
        out = spectrum.clone()
        for r in range(self.radius_for(min(h, w)), 0, -1):  # outer rings first, inner discs overwrite
            disc = torch.from_numpy(circle_mask(h, w, r))
            for j in range(c):
                out[j, disc] = spectrum[j, 0, r]
        return out

    def inject(self, noise: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] noise with the key written into its spectrum (real part of the inverse FFT)."""
        shape = noise.shape[1:]
        mask, key = self.mask(shape).to(noise.device), self.pattern(shape).to(noise.device)
        spectrum = torch.fft.fftshift(torch.fft.fft2(noise.float()), dim=(-1, -2))
        spectrum[:, mask] = key[mask]
        return torch.fft.ifft2(torch.fft.ifftshift(spectrum, dim=(-1, -2))).real.to(noise.dtype)

    def _masked(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = latents.shape[1:]
        mask = self.mask(shape).to(latents.device)
        spectrum = torch.fft.fftshift(torch.fft.fft2(latents.float()), dim=(-1, -2))
        return spectrum[:, mask], self.pattern(shape).to(latents.device)[mask]

    def distance(self, latents: torch.Tensor) -> np.ndarray:
        """[B] mean complex L1 distance between each latent's masked spectrum and the key (lower = marked)."""
        found, key = self._masked(latents)
        return (found - key).abs().mean(dim=1).cpu().numpy().astype(np.float64)

    def p_value(self, latents: torch.Tensor) -> np.ndarray:
        """[B] the reference's p-value: the non-central chi-square CDF of the normalised squared distance
        (real and imaginary parts as 2K coordinates, sigma from the latent's own masked spectrum)."""
        return np.exp(self.log_p_value(latents))

    def log_p_value(self, latents: torch.Tensor) -> np.ndarray:
        """[B] natural log of :meth:`p_value` (``ncx2.logcdf``: a marked latent's p-value underflows
        float64, its log does not, so scores stay ordered)."""
        found, key = self._masked(latents)
        target = torch.cat([key.real, key.imag]).double()
        out = []
        for row in found:
            x = torch.cat([row.real, row.imag]).double()
            sigma = x.std()
            nc = float((target**2 / sigma**2).sum())
            stat = float((((x - target) / sigma) ** 2).sum())
            out.append(float(ncx2.logcdf(stat, df=len(target), nc=nc)))
        return np.asarray(out)

    def score(self, latents: torch.Tensor, statistic: str = "l1") -> np.ndarray:
        """[B] detection score, higher = more surely marked: minus the L1 :meth:`distance`
        (``statistic`` "l1") or minus :meth:`log_p_value` ("p_value"); ConfigError for another name."""
        if statistic == "l1":
            return -self.distance(latents)
        if statistic == "p_value":
            return -self.log_p_value(latents)
        raise ConfigError(f"tree-ring statistic {statistic!r}: expected l1 or p_value")


def circle_mask(height: int, width: int, radius: int) -> np.ndarray:
    """Boolean [H, W] disc of ``radius`` about (W // 2, H // 2) with rows counted upward, as the
    reference's ``circle_mask`` (``y = y[::-1]``); identical to it on square latents."""
    y, x = np.ogrid[:height, :width]
    y = y[::-1]
    return ((x - width // 2) ** 2 + (y - height // 2) ** 2) <= radius**2


def _alpha(levels: NoiseLevels, t: int) -> torch.Tensor:
    """alpha-bar at timestep ``t``; 1 before the first (the clean image: DDIM's ``set_alpha_to_one``)."""
    return levels.alphas_cumprod[t].double() if t >= 0 else torch.tensor(1.0, dtype=torch.float64)


def decoder_inversion(
    model: Model, pixels: Sequence[Image.Image], latents: torch.Tensor, steps: int
) -> torch.Tensor:
    """Scaled latents [B, C, h, w] whose decoding reproduces ``pixels`` (RGB, the latents' size x8):
    ``steps`` Adam steps on the summed squared error in [-1, 1] pixels, from ``latents`` (the
    encoder's). Hong et al.'s ``decoder_inv`` (constants above): the encoder is only an approximate
    inverse of the decoder, and on a small VAE the gap is what hides the key (docs/watermark.md)."""
    vae = model.pipe.vae
    arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) / 127.5 - 1.0 for im in pixels])
    target = torch.from_numpy(arr).permute(0, 3, 1, 2).to(model.device, torch.float32)
    z = latents.detach().float().clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=DECODER_LR)

    def schedule(i: int) -> float:  # transformers' get_cosine_schedule_with_warmup, written out
        if i < DECODER_WARMUP:
            return (i + 1) / DECODER_WARMUP
        return 0.5 * (1 + math.cos(math.pi * (i - DECODER_WARMUP) / max(1, steps - DECODER_WARMUP)))

    lr = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    scale = vae.config.scaling_factor
    with torch.enable_grad():
        for _ in range(steps):
            decoded = vae.decode((z / scale).to(model.dtype)).sample.float()
            loss = ((decoded - target) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            lr.step()
    return z.detach()


@torch.no_grad()
def image_latents(model: Model, images: Sequence[Image.Image], decoder_steps: int = 0) -> torch.Tensor:
    """Scaled latents [B, C, h, w] of ``images``, each resized (bicubic) to the model's native size:
    the VAE posterior's mode (the reference), refined by ``decoder_steps`` of
    :func:`decoder_inversion` when > 0. ConfigError for ``decoder_steps`` < 0."""
    from t2iscope.generate.diffusion import encode_images

    if decoder_steps < 0:
        raise ConfigError(f"tree-ring decoder-inversion steps must be >= 0, got {decoder_steps}")
    side = model.native_size
    pixels = [im.convert("RGB").resize((side, side), Image.Resampling.BICUBIC) for im in images]
    x = encode_images(model, pixels).float()
    return decoder_inversion(model, pixels, x, decoder_steps) if decoder_steps else x


@torch.no_grad()
def invert_latents(model: Model, latents: torch.Tensor, steps: int = DEFAULT_INVERSION_STEPS) -> torch.Tensor:
    """Initial latents [B, C, h, w] that DDIM (eta 0) would turn into the scaled ``latents`` under the
    empty prompt: ``steps`` DDIM steps forward on A1111's timesteps with guidance 1, the reference's
    ``forward_diffusion``: at each step the noise predicted at the current latent and the next
    timestep moves it from alpha_t to alpha_next (``backward_ddim`` with swapped alphas).
    ConfigError for ``steps`` < 1; DataError if the result is not finite."""
    from t2iscope.generate import sampling
    from t2iscope.generate.conditioning import conditioning
    from t2iscope.generate.denoiser import CFGDenoiser
    from t2iscope.generate.diffusion import noise_levels
    from t2iscope.generate.params import Params

    if steps < 1:
        raise ConfigError(f"tree-ring inversion steps must be >= 1, got {steps}")
    x = latents.float()
    levels = noise_levels(model)
    empty = conditioning(model, [Params(prompt="", steps=steps)] * len(x))
    denoiser = CFGDenoiser(
        model.pipe.unet,
        levels,
        empty,
        cfg_scale=1.0,
        v_prediction=model.scheduler_config.get("prediction_type") == "v_prediction",
    )
    ts = [int(t) for t in sampling.timesteps(steps)]
    prev = -1
    for t in ts:
        a_from, a_to = _alpha(levels, prev), _alpha(levels, t)
        eps, _ = sampling.eps_at(denoiser, x, t, levels)
        x0 = (x.double() - (1 - a_from).sqrt() * eps.double()) / a_from.sqrt()
        x = (a_to.sqrt() * x0 + (1 - a_to).sqrt() * eps.double()).float()
        prev = t
    if not bool(torch.isfinite(x).all()):
        raise DataError(
            "tree-ring inversion gave non-finite latents (a model that overflows at this precision)"
        )
    return x


def invert(
    model: Model,
    images: Sequence[Image.Image],
    steps: int = DEFAULT_INVERSION_STEPS,
    decoder_steps: int = 0,
) -> torch.Tensor:
    """Initial latents [B, C, h, w] that DDIM would turn into ``images`` under the empty prompt:
    :func:`invert_latents` of :func:`image_latents`."""
    return invert_latents(model, image_latents(model, images, decoder_steps), steps)


def latent_mark(
    method: str | None, key: TreeRingKey | None = None
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The noise rewrite txt2img takes for a ``--watermark-method``: the key's ``inject`` for
    ``treering`` (the default key unless ``key``), None for the pixel methods and for none."""
    return (key or TreeRingKey()).inject if method == METHOD else None


def detect(
    model: Model,
    images: Sequence[Image.Image],
    key: TreeRingKey,
    steps: int = DEFAULT_INVERSION_STEPS,
    decoder_steps: int = 0,
    statistic: str = "l1",
) -> np.ndarray:
    """[B] detection scores of ``images`` (:meth:`TreeRingKey.score`, higher = marked), inverted
    ``steps`` DDIM steps by ``model`` after ``decoder_steps`` of decoder inversion (0: the
    encoder's latents, as the reference)."""
    return key.score(invert(model, images, steps, decoder_steps), statistic)
