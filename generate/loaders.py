"""Load the shipped embedded models through the same public loaders full-size checkpoints use.

- CLIP: ``open_clip.add_model_config`` + ``open_clip.create_model_and_transforms(name, pretrained=FILE)``.
- Stable Diffusion: ``diffusers.StableDiffusionPipeline.from_pretrained(FOLDER)``.
- Aesthetic head: LAION's improved-aesthetic-predictor MLP (same state-dict keys, so LAION's
  published ``.pth`` heads load into ``AestheticMLP`` for users with real CLIP weights).
- Watermark classifier: two logits, ``pwatermark = softmax(logits)[:, 0]`` as in
  LAION-5B-WatermarkDetection.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from t2iscope.errors import DataError
from t2iscope.paths import models_dir

CLIP_NAME = "t2iscope-tiny-clip"
CLIP_WEIGHTS = "open_clip_model.safetensors"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class AestheticMLP(nn.Module):
    """LAION improved-aesthetic-predictor: an MLP on L2-normalised CLIP image embeddings."""

    def __init__(self, input_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.layers = nn.Sequential(
            nn.Linear(input_size, 1024),
            nn.Dropout(0.2),
            nn.Linear(1024, 128),
            nn.Dropout(0.2),
            nn.Linear(128, 64),
            nn.Dropout(0.1),
            nn.Linear(64, 16),
            nn.Linear(16, 1),
        )

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.layers(embedding)


class WatermarkCNN(nn.Module):
    """A small CNN with LAION-5B-WatermarkDetection's output: logits for (watermark, clear)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveMaxPool2d(1),  # a mark anywhere in the frame counts
            nn.Flatten(),
            nn.Linear(2 * w, 2),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    @staticmethod
    def preprocess(images_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 N x 3 x 64 x 64 -> ImageNet-normalised float, as LAION's detector expects."""
        x = images_uint8.float() / 255.0
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    @torch.no_grad()
    def pwatermark(self, images_uint8: torch.Tensor) -> torch.Tensor:
        return self(self.preprocess(images_uint8)).softmax(-1)[:, 0]


def _folder(root: str | Path | None, name: str) -> Path:
    folder = Path(root if root is not None else models_dir()) / name
    if not folder.is_dir():
        raise DataError(f"{folder}: model folder missing (train it with `t2iscope generate train all`)")
    return folder


def load_clip(root: str | Path | None = None, device: str = "cpu") -> tuple[nn.Module, Any, Any]:
    """(model, preprocess, tokenizer) of the shipped tiny CLIP, via open_clip's public API."""
    import open_clip

    folder = _folder(root, "clip")
    open_clip.add_model_config(folder / f"{CLIP_NAME}.json")
    model, _, preprocess = open_clip.create_model_and_transforms(
        CLIP_NAME, pretrained=str(folder / CLIP_WEIGHTS), device=device
    )
    return model.eval(), preprocess, open_clip.get_tokenizer(CLIP_NAME)


def load_aesthetic(root: str | Path | None = None) -> tuple[AestheticMLP, dict[str, Any]]:
    """(head, config); feed it L2-normalised embeddings of the CLIP named in config['clip']."""
    from safetensors.torch import load_file

    folder = _folder(root, "aesthetic")
    config = json.loads((folder / "config.json").read_text())
    head = AestheticMLP(config["embed_dim"])
    head.load_state_dict(load_file(folder / "model.safetensors"))
    return head.eval(), config


def load_watermark(root: str | Path | None = None) -> tuple[WatermarkCNN, dict[str, Any]]:
    from safetensors.torch import load_file

    folder = _folder(root, "watermark")
    config = json.loads((folder / "config.json").read_text())
    model = WatermarkCNN(config["width"])
    model.load_state_dict(load_file(folder / "model.safetensors"))
    return model.eval(), config


def load_sd(root: str | Path | None = None, device: str = "cpu") -> Any:
    """The stock diffusers pipeline over ``models/sd``."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(_folder(root, "sd")))
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
