"""One denoising run for every mode: noise, sigmas or timesteps, the sampler, the VAE.

txt2img starts from noise at the top of the schedule; img2img, inpaint, outpaint and the hires-fix
second pass start from init latents re-noised to where a ``strength`` fraction of the schedule
remains. The step arithmetic is A1111's (modules/sd_samplers_common.py ``setup_img2img_steps``,
sd_samplers_kdiffusion.py ``sample_img2img``, sd_samplers_timesteps.py ``sample_img2img``):
``t_enc = int(min(strength, 0.999) * steps)`` steps are run out of a table of ``steps``; with
``fixed_steps`` (hires fix) exactly that many are run out of a table of ``steps / strength``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from t2iscope.errors import DataError
from t2iscope.generate import sampling
from t2iscope.generate.denoiser import CFGDenoiser, ImageConditioning
from t2iscope.generate.models import Model
from t2iscope.generate.params import Params
from t2iscope.generate.samplers import DIFFUSERS, K_DIFFUSION, SAMPLERS, resolve, unipc_scheduler
from t2iscope.generate.schedules import NoiseLevels, schedule_sigmas
from t2iscope.generate.seeds import ImageNoise


def noise_levels(model: Model) -> NoiseLevels:
    """The model's training noise levels, from its own scheduler config."""
    return NoiseLevels.from_config(model.scheduler_config)


def img2img_steps(steps: int, strength: float, fixed_steps: bool = False) -> tuple[int, int]:
    """(table length, t_enc) for a re-noised start, as A1111's ``setup_img2img_steps``."""
    if fixed_steps:
        return (int(steps / min(strength, 0.999)) if strength > 0 else 0), steps - 1
    return steps, int(min(strength, 0.999) * steps)


@torch.no_grad()
def sample(
    model: Model,
    batch: Sequence[Params],
    conds: Sequence[ImageConditioning],
    size: tuple[int, int],
    *,
    init_latents: torch.Tensor | None = None,
    strength: float = 1.0,
    mask: torch.Tensor | None = None,
    steps: int | None = None,
    fixed_steps: bool = False,
    mark: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Latents [B, 4, height/8, width/8] for ``batch`` (shared settings) at ``size`` = (width, height).

    Without ``init_latents`` this is txt2img. With them (scaled latents, [1 or B, 4, h, w]) the
    run starts at ``strength`` of the schedule; ``mask`` ([1 or B, 1, h, w], 1 = regenerate) keeps
    the init latents elsewhere, at every step and at the end (A1111's inpainting for ordinary
    models). ``steps`` overrides ``batch[0].steps`` (hires pass), ``fixed_steps`` runs exactly that
    many (A1111's img2img_fix_steps, used by the hires pass). ``mark`` rewrites the starting
    noise (:class:`~t2iscope.generate.seeds.ImageNoise`), e.g. a Tree-Ring key.
    """
    first = batch[0]
    name, schedule = resolve(first.sampler, first.scheduler)
    sampler = SAMPLERS.get(name)
    steps = steps or first.steps
    levels = noise_levels(model)
    width, height = size
    channels = model.pipe.unet.config.in_channels
    noise = ImageNoise(
        [p.seed for p in batch],
        (channels, height // model.pipe.vae_scale_factor, width // model.pipe.vae_scale_factor),
        subseeds=[p.subseed for p in batch],
        subseed_strength=first.subseed_strength,
        device=model.device,
        mark=mark,
    )
    denoiser = CFGDenoiser(
        model.pipe.unet,
        levels,
        conds,
        cfg_scale=first.cfg_scale,
        cfg_rescale=first.cfg_rescale,
        v_prediction=model.scheduler_config.get("prediction_type") == "v_prediction",
        init_latents=init_latents,
        mask=mask,
    )
    img2img = init_latents is not None
    total, t_enc = img2img_steps(steps, strength, fixed_steps) if img2img else (steps, steps)
    if sampler.family == K_DIFFUSION:
        sigmas = schedule_sigmas(
            sampler.resolve_schedule(schedule), total, levels, discard_penultimate=sampler.discard_penultimate
        ).to(model.device)
        if img2img:
            sigmas = sigmas[total - t_enc - 1 :]
        x = noise.first() * sigmas[0] + (init_latents if img2img else 0)
        with tqdm(total=len(sigmas) - 1, **model.progress_bar()) as bar:
            x = sampler.rule(denoiser, x, sigmas, noise.next, lambda i: bar.update())
    elif sampler.family == DIFFUSERS:
        x = _unipc(model, denoiser, levels, noise, total, t_enc if img2img else None, init_latents)
    else:
        ts = sampling.timesteps(total)
        if img2img:
            a = levels.alphas_cumprod[ts[t_enc]]
            x = init_latents * a.sqrt() + noise.first() * (1 - a).sqrt()
            ts = ts[:t_enc]
        else:
            x = noise.first()
        with tqdm(total=max(len(ts) - 1, 0), **model.progress_bar()) as bar:
            x = sampler.rule(denoiser, x, ts, levels, lambda i: bar.update())
    if mask is not None and init_latents is not None:
        x = init_latents * (1 - mask) + x * mask
    if not bool(torch.isfinite(x).all()):  # A1111's NaN check: refuse rather than save a black image
        raise DataError(
            "the denoised latents are not finite (NaN/inf): a prompt weight too large for the model, "
            "or a model or LoRA that overflows at this precision"
        )
    return x


def _unipc(
    model: Model,
    denoiser: CFGDenoiser,
    levels: NoiseLevels,
    noise: ImageNoise,
    steps: int,
    t_enc: int | None,
    init_latents: torch.Tensor | None,
) -> torch.Tensor:
    """diffusers' UniPC stepping on the same denoiser (eps from the x0 prediction)."""
    scheduler = unipc_scheduler(model.scheduler_config)
    scheduler.set_timesteps(steps, device="cpu")
    ts = scheduler.timesteps
    if t_enc is None:
        x = noise.first()
    else:
        begin = steps - t_enc
        scheduler.set_begin_index(begin)
        ts = ts[begin:]
        x = scheduler.add_noise(init_latents.expand(len(denoiser.conds), -1, -1, -1), noise.first(), ts[:1])
    for t in tqdm(ts, **model.progress_bar()):
        eps, _ = sampling.eps_at(denoiser, x, int(t), levels)
        x = scheduler.step(eps, t, x).prev_sample
    return x


@torch.no_grad()
def encode_images(model: Model, images: Sequence[Image.Image]) -> torch.Tensor:
    """Scaled latents [B, 4, h/8, w/8] of RGB images (the VAE posterior's mode: deterministic)."""
    arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) / 127.5 - 1.0 for im in images])
    pixels = torch.from_numpy(arr).permute(0, 3, 1, 2).to(model.device, model.dtype)
    vae = model.pipe.vae
    return vae.encode(pixels).latent_dist.mode() * vae.config.scaling_factor


@torch.no_grad()
def decode_latents(model: Model, latents: torch.Tensor) -> list[Image.Image]:
    """RGB images of scaled latents."""
    vae = model.pipe.vae
    decoded = vae.decode(latents.to(model.dtype) / vae.config.scaling_factor).sample
    return model.pipe.image_processor.postprocess(decoded, output_type="pil")
