"""The tiny Stable Diffusion: VAE, U-Net on the frozen tiny-CLIP text tower, saved as a diffusers folder.

Shapes follow SD 1.x scaled down: 64 px images, a 3-block AutoencoderKL (scale factor 4, so
16x16x4 latents, each channel standardised inside the VAE so ``scaling_factor`` is 1), a
UNet2DConditionModel cross-attending to the CLIP text encoder's last hidden state, epsilon
prediction on SD's scaled-linear 1000-step schedule with min-SNR loss weights, ~10% empty
captions so classifier-free guidance works, and an EMA of the U-Net weights (what SD ships). The
folder is written by ``StableDiffusionPipeline.save_pretrained`` so the stock ``from_pretrained``
loads it.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from t2iscope.errors import ConfigError
from t2iscope.generate.limits import DEFAULT_SAMPLER
from t2iscope.generate.samplers import make_scheduler
from t2iscope.generate.tokenizer_files import write_clip_tokenizer_files
from t2iscope.generate.train import loop
from t2iscope.generate.train.corpus import Corpus
from t2iscope.generate.train.recipe import UnetRecipe, VaeRecipe

SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
}


def _pixels(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 127.5 - 1.0


def build_vae(r: VaeRecipe) -> Any:
    from diffusers import AutoencoderKL

    n = len(r.channels)
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=r.channels,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=min(32, min(r.channels)),
        sample_size=64,
        mid_block_add_attention=r.mid_attention,
    )


def train_vae(corpus: Corpus, r: VaeRecipe, work: Path, device: str, seed: int) -> Any:
    """Reconstruction (L1 + MSE) with a small KL term; then standardise the latent channels."""
    torch.manual_seed(seed)
    vae = build_vae(r).to(device)
    images = corpus.images.to(device)
    opt = torch.optim.AdamW(vae.parameters(), lr=r.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)

    def step(_: int) -> dict[str, float]:
        idx = torch.randint(len(images), (r.batch,), generator=gen).to(device)
        x = _pixels(images[idx])
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        rec = F.l1_loss(recon, x) + F.mse_loss(recon, x)
        kl = posterior.kl().mean()
        loss = rec + r.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"rec": rec.item(), "kl": kl.item()}

    vae.train()
    loop.run("vae", {"vae": vae}, opt, r.steps, step, work)
    vae.eval()
    with torch.no_grad():
        sample = _pixels(images[: min(len(images), 2048)])
        z = torch.cat(
            [vae.encode(sample[i : i + 256]).latent_dist.sample() for i in range(0, len(sample), 256)]
        )
    standardize_latents(vae, z.mean((0, 2, 3)), z.std((0, 2, 3)))
    return vae.cpu()


@torch.no_grad()
def standardize_latents(vae: Any, mean: torch.Tensor, std: torch.Tensor) -> None:
    """Fold a per-channel shift and scale into quant_conv / post_quant_conv; scaling_factor = 1.

    The stock SD pipeline only divides latents by one ``scaling_factor``, so a latent channel with
    a mean far from zero (here the pale background's brightness) reaches the U-Net as a constant
    offset that sampling from zero-mean noise never recovers. Folding the standardisation into the
    two 1x1 convolutions around the latent keeps decoded images identical and the folder stock.
    """
    c = len(mean)
    q, p = vae.quant_conv, vae.post_quant_conv
    q.weight[:c] /= std.view(-1, 1, 1, 1)
    q.bias[:c] = (q.bias[:c] - mean) / std
    q.bias[c:] -= 2 * std.log()  # logvar of z / std
    p.bias += p.weight[:, :, 0, 0] @ mean
    p.weight *= std.view(1, -1, 1, 1)
    vae.register_to_config(scaling_factor=1.0)


@torch.no_grad()
def encode_latents(vae: Any, images: torch.Tensor, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std per image (latents are re-sampled every step, as SD's loader does)."""
    vae = vae.to(device).eval()
    means, stds = [], []
    for i in range(0, len(images), 256):
        dist = vae.encode(_pixels(images[i : i + 256].to(device))).latent_dist
        means.append(dist.mean)
        stds.append(dist.std)
    return torch.cat(means), torch.cat(stds)


@torch.no_grad()
def encode_captions(
    text_encoder: Any, tokenizer: Any, captions: list[str], device: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(hidden states of each distinct caption, index of every row's caption); row -1 is ''."""
    unique, inverse = np.unique(np.asarray([*captions, ""], dtype=object), return_inverse=True)
    text_encoder = text_encoder.to(device).eval()
    states = []
    for i in range(0, len(unique), 512):
        ids = tokenizer(
            list(unique[i : i + 512]),
            padding="max_length",
            max_length=77,
            truncation=True,
            return_tensors="pt",
        ).input_ids.to(device)
        states.append(text_encoder(ids).last_hidden_state)
    return torch.cat(states), torch.as_tensor(inverse)


def build_unet(r: UnetRecipe, cross_attention_dim: int) -> Any:
    from diffusers import UNet2DConditionModel

    if len(r.attention_levels) != len(r.channels):
        raise ConfigError("unet.attention_levels needs one entry per unet.channels entry")
    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in r.attention_levels)
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(r.attention_levels))
    return UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=r.channels,
        down_block_types=down,
        up_block_types=up,
        cross_attention_dim=cross_attention_dim,
        # diffusers' legacy `attention_head_dim` is the number of heads per block (a naming slip its source
        # admits); pass heads explicitly so every head has `r.attention_head_dim` channels.
        attention_head_dim=tuple(max(1, c // r.attention_head_dim) for c in r.channels),
        norm_num_groups=min(32, min(r.channels)),
    )


def train_unet(
    vae: Any,
    text_encoder: Any,
    tokenizer: Any,
    corpus: Corpus,
    r: UnetRecipe,
    work: Path,
    device: str,
    seed: int,
) -> Any:
    """Epsilon-prediction training on cached latents and caption states; returns the EMA U-Net."""
    from diffusers import DDPMScheduler

    torch.manual_seed(seed)
    mean, std = encode_latents(vae, corpus.images, device)
    scale = vae.config.scaling_factor
    states, inverse = encode_captions(text_encoder, tokenizer, corpus.captions, device)
    inverse = inverse.to(device)
    empty = int(inverse[-1])
    unet = build_unet(r, text_encoder.config.hidden_size).to(device)
    ema = copy.deepcopy(unet).requires_grad_(False)
    sched = DDPMScheduler(**SCHEDULE, prediction_type=r.prediction_type)
    alphas = sched.alphas_cumprod.to(device)
    opt = torch.optim.AdamW(unet.parameters(), lr=r.lr, weight_decay=1e-2)
    gen = torch.Generator().manual_seed(seed)

    def step(i: int) -> dict[str, float]:
        idx = torch.randint(len(mean), (r.batch,), generator=gen).to(device)
        z = (mean[idx] + std[idx] * torch.randn_like(mean[idx])) * scale
        noise = torch.randn_like(z)
        t = torch.randint(0, sched.config.num_train_timesteps, (r.batch,), device=device)
        a = alphas[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * z + (1 - a).sqrt() * noise
        cap = inverse[idx]
        drop = torch.rand(r.batch, device=device) < r.caption_dropout
        cap = torch.where(drop, torch.full_like(cap, empty), cap)
        pred = unet(noisy, t, encoder_hidden_states=states[cap]).sample
        target = noise if r.prediction_type == "epsilon" else a.sqrt() * noise - (1 - a).sqrt() * z
        loss = F.mse_loss(pred, target, reduction="none").mean((1, 2, 3))
        if r.snr_gamma:
            snr = a.view(-1) / (1 - a.view(-1))
            loss = loss * snr.clamp(max=r.snr_gamma) / (snr if r.prediction_type == "epsilon" else snr + 1)
        loss = loss.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        decay = min(0.999, (1 + i) / (10 + i))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), unet.parameters(), strict=True):
                pe.lerp_(p, 1 - decay)
        return {"mse": loss.item()}

    unet.train()
    loop.run("unet", {"unet": unet, "ema": ema}, opt, r.steps, step, work)
    return ema.eval().cpu()


def shipped_scheduler(prediction_type: str = "epsilon") -> Any:
    """The folder's scheduler: the product's default sampler on SD 1.x's training schedule and spacing.

    Not SD 1.x's PLMS (PNDM): its 4th-order multistep overshoots under strong guidance, and on this
    model green collapses into yellow and blue patches at CFG 7.5 (color right 0.82-0.85 with PLMS,
    0.97 with Euler a, DPM++ 2M, UniPC or clip-free DDIM; docs/experiments/cfg_color_sweep.py).
    """
    spacing = {"steps_offset": 1, "timestep_spacing": "leading"}
    return make_scheduler(DEFAULT_SAMPLER, {**SCHEDULE, "prediction_type": prediction_type, **spacing})


def save_pipeline(
    vae: Any, text_encoder: Any, tokenizer: Any, unet: Any, out: Path, prediction_type: str = "epsilon"
) -> Path:
    """Write a standard diffusers SD folder atomically (build beside, then swap in)."""
    from diffusers import StableDiffusionPipeline

    scheduler = shipped_scheduler(prediction_type)
    # U-Net and VAE are stored in fp16 (diffusers upcasts them to fp32 on load); the text encoder
    # stays fp32 because transformers keeps the stored dtype and the pipeline needs one dtype.
    pipe = StableDiffusionPipeline(
        vae=copy.deepcopy(vae).half(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=copy.deepcopy(unet).half(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    tmp, old = out.with_name(f".{out.name}.tmp"), out.with_name(f".{out.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(tmp, safe_serialization=True)
    write_clip_tokenizer_files(tmp / "tokenizer")  # vocab.json + merges.txt, as SD 1.x ships it
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return out
