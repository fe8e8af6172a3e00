"""Tiny random weight folders in the shipped layout, for loader and scorer tests (any test imports it)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from t2iscope.nets import AestheticMLP, WatermarkCNN
from t2iscope.weights import AESTHETIC, WATERMARK

EMBED = 16
CLIP_CFG = {
    "embed_dim": EMBED,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
}
WATERMARK_WIDTH = 4


def save_folder(
    folder: Path, module: torch.nn.Module, config: dict, weights: str = "model.safetensors"
) -> Path:
    """``folder/config.json`` + the module's state dict (safetensors, or torch.save for .pth)."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in module.state_dict().items()}
    if weights.endswith(".safetensors"):
        save_file(state, str(folder / weights))
    else:
        torch.save(state, folder / weights)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def write_tiny_models(root: Path, seed: int = 0) -> Path:
    """``root/{clip,aesthetic,watermark}``: a 32 px ViT open_clip folder and two heads over it."""
    import open_clip

    torch.manual_seed(seed)
    (root / "clip").mkdir(parents=True)
    save_file(open_clip.CLIP(**CLIP_CFG).state_dict(), str(root / "clip" / "open_clip_model.safetensors"))
    (root / "clip" / "open_clip_config.json").write_text(json.dumps({"model_cfg": CLIP_CFG}))
    save_folder(
        root / "aesthetic",
        AestheticMLP(EMBED),
        {"architecture": AESTHETIC, "clip": "../clip", "embed_dim": EMBED},
    )
    save_folder(
        root / "watermark",
        WatermarkCNN(WATERMARK_WIDTH),
        {"architecture": WATERMARK, "width": WATERMARK_WIDTH, "input_size": 32},
    )
    return root
