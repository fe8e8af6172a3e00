"""Train the small LoRA and textual-inversion fixtures on the embedded model (CPU, minutes each).

The files under ``tests/generate/fixtures/networks/`` are what this module writes; they go through
the same loaders as users' files (kohya-format LoRA ``.safetensors`` in ``Lora/``, A1111 ``.pt``
embedding in ``embeddings/``, the folders A1111 reads them from)::

    .venv/bin/python -m t2iscope.generate.train.networks --out tests/generate/fixtures/networks

- ``Lora/red.safetensors``: a rank-4 LoRA on the U-Net's attention projections (to_q/to_k/to_v/to_out.0)
  and the text encoder's (q/k/v/out_proj), trained on rendered world scenes whose objects are all red,
  captioned without any color word ("a dog on grass"): with it, a prompt that names no color gives a
  red object. Saved in kohya's key layout (``lora_unet_*`` / ``lora_te_text_model_*`` with
  ``.lora_down.weight``, ``.lora_up.weight``, ``.alpha``) and kohya-style ``ss_*`` metadata.
- ``embeddings/cobalt.pt``: a 2-vector embedding trained (everything else frozen) on blue objects captioned
  "a cobalt dog on grass": the word "cobalt", which the embedded model never saw, comes to mean blue.

150 steps of batch 16 each, t >= 200 only. On the shared 2-core CPU that made the shipped files: LoRA
749 s (another job held most of the CPU), embedding 55 s. Shipped sizes: 98,376 and 2,301 bytes.
Both are deterministic for a seed on one machine. Nothing here is a product command.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from t2iscope.curate.world import spec
from t2iscope.curate.world.render import render_scene
from t2iscope.generate.embeddings import Embeddings, save_embedding
from t2iscope.generate.text_encoding import encode_prompt
from t2iscope.generate.train.sd import SCHEDULE

UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")
LORA_TEMPLATES = ("a {k} {b}", "{k}", "photo of a {k} {b}", "a {k}")
EMBEDDING_TEMPLATES = ("a {c} {k} {b}", "{c} {k}", "photo of a {c} {k} {b}", "a {c} {k}")


def render_scenes(color: str, n: int, seed: int) -> tuple[torch.Tensor, list[str], list[str]]:
    """``n`` clean world scenes of ``color`` objects: images [n, 3, 64, 64] in [-1, 1], kinds, backgrounds."""
    rng = np.random.default_rng(seed)
    kinds, backgrounds = list(spec.KINDS), list(spec.BACKGROUNDS)
    images, kind_of, bg_of = [], [], []
    for i in range(n):
        kind, bg = kinds[i % len(kinds)], backgrounds[int(rng.integers(len(backgrounds)))]
        row = {
            "key": int(rng.integers(2**62)) + i,
            "background": bg,
            "kind": kind,
            "color": color,
            "legs": spec.KINDS[kind],
            "culture": "western" if kind in spec.CULTURE_KINDS else None,
            "unsafe": False,
            "watermark": False,
            **dict.fromkeys(("tiny", "low_contrast", "blur", "noise", "blockiness"), 0.0),
        }
        images.append(np.asarray(render_scene(row), dtype=np.float32))
        kind_of.append(kind)
        bg_of.append(bg)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2) / 127.5 - 1.0
    return x, kind_of, bg_of


def _captions(
    kinds: Sequence[str], backgrounds: Sequence[str], templates: Sequence[str], color_word: str, rng: Any
) -> list[str]:
    kind_word = dict(zip(spec.KINDS, spec.KIND_WORDS["en"], strict=True))
    bg_word = dict(zip(spec.BACKGROUNDS, spec.BACKGROUND_WORDS["en"], strict=True))
    return [
        templates[int(rng.integers(len(templates)))].format(k=kind_word[k], b=bg_word[b], c=color_word)
        for k, b in zip(kinds, backgrounds, strict=True)
    ]


def _load_pipe(model: str | Path | None) -> Any:
    from diffusers import StableDiffusionPipeline

    from t2iscope.generate.models import embedded_model_path

    pipe = StableDiffusionPipeline.from_pretrained(str(model or embedded_model_path()), dtype=torch.float32)
    for part in (pipe.unet, pipe.vae, pipe.text_encoder):
        part.requires_grad_(False).eval()
    return pipe


@torch.no_grad()
def _latents(vae: Any, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dist = vae.encode(images).latent_dist
    return dist.mean * vae.config.scaling_factor, dist.std * vae.config.scaling_factor


def _diffusion_loss(
    unet: Any, mean: torch.Tensor, std: torch.Tensor, cond: torch.Tensor, gen: Any
) -> torch.Tensor:
    """Epsilon MSE with min-SNR-5 weights as the embedded U-Net was trained (train/sd.py), t >= 200."""
    from diffusers import DDPMScheduler

    alphas = DDPMScheduler(**SCHEDULE).alphas_cumprod
    z = mean + std * torch.randn(mean.shape, generator=gen)
    noise = torch.randn(z.shape, generator=gen)
    # Color and layout are settled at high noise: sampling t from 200 up trains the concept in fewer steps.
    t = torch.randint(200, len(alphas), (len(z),), generator=gen)
    a = alphas[t].view(-1, 1, 1, 1)
    pred = unet(a.sqrt() * z + (1 - a).sqrt() * noise, t, encoder_hidden_states=cond).sample
    loss = F.mse_loss(pred, noise, reduction="none").mean((1, 2, 3))
    snr = a.view(-1) / (1 - a.view(-1))
    return (loss * snr.clamp(max=5.0) / snr).mean()


def _setup(color: str, images: int, seed: int, model: str | Path | None) -> tuple:
    """Seeded RNGs, the pipeline and its training scenes: (pipe, x, mean, std, kinds, bgs, rng, gen)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    pipe = _load_pipe(model)
    x, kinds, bgs = render_scenes(color, images, seed)
    mean, std = _latents(pipe.vae, x)
    return pipe, x, mean, std, kinds, bgs, rng, gen


def kohya_key(prefix: str, peft_key: str) -> str:
    """``down_blocks.1...to_q.lora_A.weight`` -> ``lora_unet_down_blocks_1_..._to_q.lora_down.weight``."""
    module, _, rest = peft_key.partition(".lora_")
    part = {"A.weight": "lora_down.weight", "B.weight": "lora_up.weight"}[rest]
    return f"{prefix}_{module.replace('.', '_')}.{part}"


def train_lora(
    out: str | Path,
    *,
    color: str = "red",
    rank: int = 4,
    steps: int = 150,
    batch: int = 16,
    lr: float = 5e-3,
    images: int = 256,
    seed: int = 0,
    model: str | Path | None = None,
) -> Path:
    """Train a kohya-format LoRA that paints every object ``color``; returns the written file."""
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model
    from safetensors.torch import save_file

    from t2iscope.fileio import atomic_path

    pipe, x, mean, std, kinds, bgs, rng, gen = _setup(color, images, seed, model)
    captions = _captions(kinds, bgs, LORA_TEMPLATES, "", rng)
    ids = pipe.tokenizer(
        captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
    ).input_ids
    unet = inject_adapter_in_model(
        LoraConfig(r=rank, lora_alpha=rank, target_modules=list(UNET_TARGETS)), pipe.unet
    )
    text = inject_adapter_in_model(
        LoraConfig(r=rank, lora_alpha=rank, target_modules=list(TEXT_TARGETS)), pipe.text_encoder
    )
    params = [p for m in (unet, text) for n, p in m.named_parameters() if "lora_" in n]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    for step in range(steps):
        idx = torch.randint(len(x), (batch,), generator=gen)
        cond = text(ids[idx]).last_hidden_state
        loss = _diffusion_loss(unet, mean[idx], std[idx], cond, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == steps - 1:
            print(f"lora step {step} loss {loss.item():.4f}", flush=True)
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in (("lora_unet", unet), ("lora_te_text_model", text)):
        for key, value in get_peft_model_state_dict(module).items():
            tensors[kohya_key(prefix, key)] = value.detach().to(torch.float16).contiguous()
    for key in [k for k in tensors if k.endswith(".lora_down.weight")]:
        tensors[key.replace(".lora_down.weight", ".alpha")] = torch.tensor(float(rank), dtype=torch.float16)
    meta = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(rank),
        "ss_network_alpha": str(rank),
        "ss_output_name": Path(out).stem,
        "ss_sd_model_name": "t2iscope-world",
        "ss_num_train_images": str(images),
        "ss_max_train_steps": str(steps),
        "ss_seed": str(seed),
        "ss_tag_frequency": json.dumps({"t2iscope": {f"{color} scenes, captions without color": images}}),
    }
    with atomic_path(out) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(out)


def train_embedding(
    out: str | Path,
    *,
    color: str = "blue",
    vectors: int = 2,
    steps: int = 150,
    batch: int = 16,
    lr: float = 5e-3,
    images: int = 256,
    seed: int = 0,
    model: str | Path | None = None,
) -> Path:
    """Train an A1111 embedding whose file stem (the trigger word) means ``color``; returns the file."""
    name = Path(out).stem
    pipe, x, mean, std, kinds, bgs, rng, gen = _setup(color, images, seed, model)
    tok, enc = pipe.tokenizer, pipe.text_encoder
    captions = _captions(kinds, bgs, EMBEDDING_TEMPLATES, name, rng)
    start = enc.get_input_embeddings().weight[tok.convert_tokens_to_ids("a</w>")]
    vec = start.detach().clone().repeat(vectors, 1).requires_grad_(True)
    opt = torch.optim.AdamW([vec], lr=lr, weight_decay=0.0)
    for step in range(steps):
        idx = torch.randint(len(x), (batch,), generator=gen)
        emb = Embeddings.from_tensors(tok, {name: vec})
        cond = torch.cat([encode_prompt(tok, enc, captions[i], embeddings=emb) for i in idx.tolist()])
        loss = _diffusion_loss(pipe.unet, mean[idx], std[idx], cond, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == steps - 1:
            print(f"embedding step {step} loss {loss.item():.4f}", flush=True)
    return save_embedding(out, name, vec)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--only", choices=("lora", "embedding"))
    args = parser.parse_args(argv)
    if args.only in (None, "lora"):
        t = time.time()
        path = train_lora(args.out / "Lora" / "red.safetensors", steps=args.steps)
        print(f"{path}: {path.stat().st_size} bytes, {time.time() - t:.0f} s", flush=True)
    if args.only in (None, "embedding"):
        t = time.time()
        path = train_embedding(args.out / "embeddings" / "cobalt.pt", steps=args.steps)
        print(f"{path}: {path.stat().st_size} bytes, {time.time() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
