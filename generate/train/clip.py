"""The tiny CLIP: an open_clip model config, contrastive training, and open_clip-format files.

Saved as ``models/clip/``: ``t2iscope-tiny-clip.json`` (an open_clip model config, loadable with
``open_clip.add_model_config``), ``open_clip_config.json`` (so ``local-dir:models/clip`` works too),
``open_clip_model.safetensors`` (fp16 weights; open_clip copies them into its fp32 model) and
``words.json`` (the words its captions taught it, the clip judge's negative labels).
Its text tower also becomes the Stable Diffusion text encoder (``to_hf_text_encoder``), as SD 1.x
reuses a frozen CLIP text encoder: the U-Net then conditions on features that already separate
colors and kinds, and caption encodings can be computed once instead of every step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from t2iscope import fileio
from t2iscope.generate.train import loop
from t2iscope.generate.train.corpus import Corpus
from t2iscope.generate.train.recipe import ClipRecipe
from t2iscope.nets import CLIP_MEAN as MEAN
from t2iscope.nets import CLIP_STD as STD
from t2iscope.nets import normalize_pixels

MODEL_NAME = "t2iscope-tiny-clip"
WEIGHTS = "open_clip_model.safetensors"
WORDS = "words.json"  # per attribute, the English words the text tower was trained to tell apart


def trained_words() -> dict[str, list[str]]:
    """The world's words the tiny CLIP's captions use (subject kinds, colors, culture markers): the
    clip judge offers them as negative labels, so an image of a world thing it was not asked about
    answers ``other`` (evaluate/judge_clip.py)."""
    from t2iscope.curate.world import spec

    return {"subject": list(spec.KINDS), "color": list(spec.COLORS), "culture": list(spec.CULTURES)}


def model_config(r: ClipRecipe) -> dict[str, Any]:
    return {
        "embed_dim": r.embed_dim,
        "vision_cfg": {"image_size": 64, "layers": list(r.vision_layers), "width": r.vision_width},
        "text_cfg": {
            "context_length": 77,
            "vocab_size": 49408,
            "width": r.text_width,
            "heads": r.text_heads,
            "layers": r.text_layers,
        },
    }


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x 3 x H x W -> the float input open_clip's preprocess produces for 64 px images."""
    return normalize_pixels(images, MEAN, STD)


def tokenize(captions: list[str]) -> torch.Tensor:
    import open_clip

    return open_clip.get_tokenizer("ViT-B-32")(captions)


def encode_text_trimmed(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """``model.encode_text`` over only the batch's longest caption, not all 77 positions.

    The text tower's attention is causal and pooling reads the end-of-text position, so the padding
    after the longest caption cannot change any output: this is exact and cuts the tower's cost ~3x.
    """
    end = tokens.argmax(-1)  # end-of-text has the largest token id
    length = int(end.max()) + 1
    x = model.token_embedding(tokens[:, :length]) + model.positional_embedding[:length]
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:length, :length]))
    return x[torch.arange(len(x), device=x.device), end] @ model.text_projection


def contrastive_loss(
    model: torch.nn.Module, images: torch.Tensor, tokens: torch.Tensor, caption: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE on uint8 ``images`` (randomly flipped) and ``tokens[caption]``.

    Pairs with the same caption are positives too: templated captions repeat within a batch.
    """
    x = normalize(images)
    flip = torch.rand(len(x), device=x.device) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    img = F.normalize(model.encode_image(x), dim=-1)
    txt = F.normalize(encode_text_trimmed(model, tokens[caption]), dim=-1)
    logits = model.logit_scale.exp().clamp(max=100) * img @ txt.T
    same = (caption[:, None] == caption[None, :]).float()
    target = same / same.sum(1, keepdim=True)
    return -0.5 * (
        (target * logits.log_softmax(1)).sum(1).mean() + (target * logits.T.log_softmax(1)).sum(1).mean()
    )


def train_clip(corpus: Corpus, r: ClipRecipe, work: Path, device: str, seed: int) -> torch.nn.Module:
    """Contrastive training (InfoNCE both ways) on (image, caption) pairs."""
    import open_clip

    torch.manual_seed(seed)
    model = open_clip.CLIP(**model_config(r)).to(device)
    # Tokenize each distinct caption once: the world's captions are templated and repeat.
    unique, inverse = np.unique(np.asarray(corpus.captions, dtype=object), return_inverse=True)
    tokens = tokenize(list(unique)).to(device)
    inverse_t = torch.as_tensor(inverse, device=device)
    images = corpus.images.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=0.1, betas=(0.9, 0.98))
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def step(_: int) -> dict[str, float]:
        idx = torch.randint(len(corpus), (r.batch,), generator=gen).to(device)
        loss = contrastive_loss(model, images[idx], tokens, inverse_t[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    model.train()
    loop.run("clip", {"model": model}, opt, r.steps, step, work)
    return model.eval().cpu()


def save_clip(model: torch.nn.Module, r: ClipRecipe, out: Path) -> Path:
    """Write the four files of ``models/clip``; return the folder."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    cfg = model_config(r)
    fileio.write_json(out / f"{MODEL_NAME}.json", cfg)
    fileio.write_json(
        out / "open_clip_config.json",
        {"model_cfg": cfg, "preprocess_cfg": {"mean": list(MEAN), "std": list(STD), "size": 64}},
    )
    fileio.write_json(out / WORDS, trained_words())
    state = {
        k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous()
        for k, v in model.state_dict().items()
    }
    with fileio.atomic_path(out / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "model": MODEL_NAME})
    return out


def to_hf_text_encoder(model: torch.nn.Module) -> Any:
    """Convert open_clip's text tower into a ``transformers.CLIPTextModel`` with identical outputs."""
    from transformers import CLIPTextConfig, CLIPTextModel

    width = model.token_embedding.weight.shape[1]
    blocks = model.transformer.resblocks
    config = CLIPTextConfig(
        vocab_size=model.token_embedding.weight.shape[0],
        hidden_size=width,
        intermediate_size=blocks[0].mlp.c_fc.out_features,
        num_hidden_layers=len(blocks),
        num_attention_heads=blocks[0].attn.num_heads,
        max_position_embeddings=model.positional_embedding.shape[0],
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        projection_dim=model.text_projection.shape[1],
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
    )
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    hf: dict[str, torch.Tensor] = {
        "text_model.embeddings.token_embedding.weight": sd["token_embedding.weight"],
        "text_model.embeddings.position_embedding.weight": sd["positional_embedding"],
        "text_model.final_layer_norm.weight": sd["ln_final.weight"],
        "text_model.final_layer_norm.bias": sd["ln_final.bias"],
    }
    for i in range(len(blocks)):
        src, dst = f"transformer.resblocks.{i}.", f"text_model.encoder.layers.{i}."
        for name, tensor in zip(("q", "k", "v"), sd[src + "attn.in_proj_weight"].chunk(3), strict=True):
            hf[dst + f"self_attn.{name}_proj.weight"] = tensor
        for name, tensor in zip(("q", "k", "v"), sd[src + "attn.in_proj_bias"].chunk(3), strict=True):
            hf[dst + f"self_attn.{name}_proj.bias"] = tensor
        pairs = {
            "attn.out_proj": "self_attn.out_proj",
            "ln_1": "layer_norm1",
            "ln_2": "layer_norm2",
            "mlp.c_fc": "mlp.fc1",
            "mlp.c_proj": "mlp.fc2",
        }
        for a, b in pairs.items():
            hf[dst + b + ".weight"] = sd[src + a + ".weight"]
            hf[dst + b + ".bias"] = sd[src + a + ".bias"]
    encoder = CLIPTextModel(config)
    # transformers 5 keeps CLIPTextModel's modules at the root; 4.x nests them under `text_model`.
    if not any(k.startswith("text_model.") for k in encoder.state_dict()):
        hf = {k.removeprefix("text_model."): v for k, v in hf.items()}
    missing, unexpected = encoder.load_state_dict(hf, strict=False)
    missing = [k for k in missing if "position_ids" not in k]
    if missing or unexpected:
        raise RuntimeError(f"text tower conversion: missing {missing}, unexpected {unexpected}")
    return encoder.eval()
