"""The CFG denoiser: a diffusers U-Net seen as k-diffusion's ``D(x, sigma) -> x0``, with guidance.

One object serves every sampler and mode. At each call it picks, for each image, the text
conditioning in force at this step (prompt editing), runs the U-Net on every composable part
(``AND``) and on the negative prompt, and combines them as A1111's ``CFGDenoiser`` does::

    denoised = uncond + sum_k weight_k * cfg_scale * (cond_k - uncond)

Sources: k-diffusion ``external.py`` (CompVisDenoiser for epsilon models: c_in = 1/sqrt(sigma^2+1),
denoised = x - sigma * eps; CompVisVDenoiser for v-prediction: c_skip = 1/(sigma^2+1),
c_out = -sigma/sqrt(sigma^2+1)), A1111 modules/sd_samplers_cfg_denoiser.py (step counter per model
call, masks blended on the denoised latents, conds of different lengths stacked by repeating
their last vector, prompt and negative of different lengths run as separate U-Net calls) and
modules/prompt_parser.py (a schedule entry holds until its end_at_step). Guidance rescale
(Lin et al. 2023, diffusers' ``rescale_noise_cfg``) is applied to the noise predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg

from t2iscope.generate.schedules import NoiseLevels


@dataclass(frozen=True)
class Scheduled:
    """One text's conditioning over the run: ``embeds[k]`` holds until model call ``ends[k]``.

    Each embedding is [77 * chunks, dim]. Prompt editing gives several entries; a plain prompt one.
    """

    ends: tuple[int, ...]
    embeds: tuple[torch.Tensor, ...]

    def at(self, step: int) -> torch.Tensor:
        """The entry in force at model call ``step`` (0-based); past the last end, the first entry,
        as A1111's ``reconstruct_cond_batch`` (second-order samplers call past ``steps``)."""
        for end, emb in zip(self.ends, self.embeds, strict=True):
            if step <= end:
                return emb
        return self.embeds[0]


@dataclass(frozen=True)
class ImageConditioning:
    """One image's composable parts (``AND``: scheduled text, weight) and its negative prompt."""

    parts: tuple[tuple[Scheduled, float], ...]
    uncond: Scheduled

    @property
    def plain(self) -> bool:
        """A single part of weight 1: cfg_scale 1 then needs no negative-prompt pass."""
        return len(self.parts) == 1 and self.parts[0][1] == 1.0


def stack(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """[n, tokens, dim]: shorter conditionings repeat their last vector (A1111's ``stack_conds``)."""
    length = max(t.shape[0] for t in tensors)
    return torch.stack(
        [
            t if t.shape[0] == length else torch.cat([t, t[-1:].expand(length - t.shape[0], -1)])
            for t in tensors
        ]
    )


class CFGDenoiser:
    """``denoiser(x [B,4,h,w], sigma []) -> denoised [B,4,h,w]`` for a batch of B images.

    ``mask`` ([B or 1, 1, h, w], 1 = regenerate) with ``init_latents`` keeps the rest of the image:
    after every call the denoised latents outside the mask are the init latents.
    """

    def __init__(
        self,
        unet: torch.nn.Module,
        levels: NoiseLevels,
        conds: Sequence[ImageConditioning],
        *,
        cfg_scale: float,
        cfg_rescale: float = 0.0,
        v_prediction: bool = False,
        init_latents: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> None:
        self.unet, self.levels, self.conds = unet, levels, list(conds)
        self.cfg_scale, self.cfg_rescale, self.v_prediction = cfg_scale, cfg_rescale, v_prediction
        self.init_latents, self.mask = init_latents, mask
        self.dtype = next(unet.parameters()).dtype  # fp16 on CUDA; the samplers' math stays in x's dtype
        self.step = 0  # A1111 counts model calls: second-order samplers advance it twice per step

    def _unet(self, x: torch.Tensor, sigma: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """x0 predictions for x [n,4,h,w] at one sigma under context [n, tokens, dim]."""
        c_in = 1 / (sigma**2 + 1) ** 0.5
        t = self.levels.sigma_to_t(sigma.reshape(1).cpu()).to(x.device).expand(x.shape[0])
        dtype = self.dtype
        out = self.unet(
            (x * c_in).to(dtype), t.to(dtype), encoder_hidden_states=context.to(dtype), return_dict=False
        )[0].to(x.dtype)
        if self.v_prediction:
            return x / (sigma**2 + 1) + out * (-sigma / (sigma**2 + 1) ** 0.5)
        return x - out * sigma

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        step, self.step = self.step, self.step + 1
        counts = [len(c.parts) for c in self.conds]
        x_cond = torch.cat([x[i : i + 1].expand(n, -1, -1, -1) for i, n in enumerate(counts)])
        cond = stack([s.at(step) for c in self.conds for s, _ in c.parts])
        skip_uncond = self.cfg_scale == 1.0 and all(c.plain for c in self.conds) and not self.cfg_rescale
        if skip_uncond:
            return self._blend(self._unet(x_cond, sigma, cond))
        uncond = stack([c.uncond.at(step) for c in self.conds])
        if cond.shape[1] == uncond.shape[1]:
            out = self._unet(torch.cat([x_cond, x]), sigma, torch.cat([cond, uncond]))
            den_cond, den_uncond = out[: len(x_cond)], out[len(x_cond) :]
        else:
            den_cond, den_uncond = self._unet(x_cond, sigma, cond), self._unet(x, sigma, uncond)
        denoised = den_uncond.clone()
        positive = den_uncond.clone()
        index = 0
        for i, c in enumerate(self.conds):
            for _, weight in c.parts:
                delta = (den_cond[index] - den_uncond[i]) * weight
                denoised[i] += delta * self.cfg_scale
                positive[i] += delta
                index += 1
        if self.cfg_rescale:
            eps_cfg, eps_pos = (x - denoised) / sigma, (x - positive) / sigma
            denoised = x - rescale_noise_cfg(eps_cfg, eps_pos, guidance_rescale=self.cfg_rescale) * sigma
        return self._blend(denoised)

    def _blend(self, denoised: torch.Tensor) -> torch.Tensor:
        if self.mask is None or self.init_latents is None:
            return denoised
        return self.init_latents * (1 - self.mask) + denoised * self.mask
