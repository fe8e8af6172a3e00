"""Model scores for post-download stages: the aesthetic head and the watermark classifier.

Both follow LAION's recipe: a small MLP over L2-normalised CLIP image embeddings (the
improved-aesthetic-predictor shape; LAION's watermark model is a separate CNN, ours shares the
CLIP tower so one embedding pass feeds both heads). Everything loads from local folders:

- ``models/clip/``: open_clip ``local-dir`` layout (``open_clip_config.json`` + weights);
- ``models/<head>/config.json`` (``embed_dim``, optional ``clip`` folder name, ``activation``,
  ``output``) + one ``*.safetensors`` of Linear layers, applied in the order of their key index.

The curate area must not import ``t2iscope.generate``, so the loading lives here.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from t2iscope.errors import ConfigError, DataError
from t2iscope.paths import models_dir


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise ConfigError(
            f"{what} not found at {path}; train it with `t2iscope generate train` "
            "or point T2ISCOPE_MODELS at a folder that has it"
        )
    return path


@dataclass
class ClipImageEncoder:
    """open_clip image tower + its preprocessing, loaded once per run."""

    model: Any
    preprocess: Any

    @classmethod
    def load(cls, folder: Path) -> ClipImageEncoder:
        import open_clip

        _need(folder, "CLIP model folder")
        model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{folder}")
        model.eval()
        return cls(model, preprocess)

    def embed(self, images: Sequence[Any]) -> np.ndarray:
        """L2-normalised image embeddings, float32 [n, dim]."""
        import torch

        with torch.inference_mode():
            batch = torch.stack([self.preprocess(im) for im in images])
            feats = self.model.encode_image(batch).float()
            feats = feats / feats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return feats.numpy()


_ACTIVATIONS = {"none": lambda x: x, "relu": lambda x: np.maximum(x, 0.0)}


@dataclass
class MlpHead:
    """Linear layers (LAION's MLP has no nonlinearity between them) + optional sigmoid output."""

    layers: list[tuple[np.ndarray, np.ndarray]]
    embed_dim: int
    activation: str
    output: str  # "score" (aesthetic, ~1..10) or "sigmoid" (probability)
    clip: str

    @classmethod
    def load(cls, folder: Path, default_output: str) -> MlpHead:
        from safetensors.numpy import load_file

        config_path = _need(folder / "config.json", f"{folder.name} head config")
        try:
            config = json.loads(config_path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{config_path}: not valid JSON ({exc.msg})") from None
        weights = sorted(folder.glob("*.safetensors"))
        if not weights:
            raise ConfigError(f"{folder}: no *.safetensors weights for the {folder.name} head")
        tensors = load_file(str(weights[0]))
        layers = []
        for key in sorted((k for k in tensors if k.endswith("weight")), key=_layer_index):
            bias = tensors.get(key[: -len("weight")] + "bias")
            w = tensors[key].astype(np.float32)
            layers.append((w, np.zeros(w.shape[0], np.float32) if bias is None else bias.astype(np.float32)))
        activation = str(config.get("activation", "none")).lower()
        if activation not in _ACTIVATIONS:
            raise ConfigError(f"{config_path}: activation {activation!r}; valid: {', '.join(_ACTIVATIONS)}")
        embed_dim = int(config.get("embed_dim", layers[0][0].shape[1]))
        if layers[0][0].shape[1] != embed_dim:
            raise ConfigError(
                f"{config_path}: embed_dim {embed_dim} but first layer takes {layers[0][0].shape[1]}"
            )
        output = str(config.get("output", default_output))
        return cls(layers, embed_dim, activation, output, str(config.get("clip", "clip")))

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        x = embeddings.astype(np.float32)
        for i, (w, b) in enumerate(self.layers):
            x = x @ w.T + b
            if i < len(self.layers) - 1:
                x = _ACTIVATIONS[self.activation](x)
        x = x.reshape(len(x), -1)[:, 0]
        return 1.0 / (1.0 + np.exp(-x)) if self.output == "sigmoid" else x


def _layer_index(key: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", key)) or (0,)


class ImageScorer:
    """Scores encoded images with one head; the CLIP encoder is shared between heads."""

    _encoders: dict[Path, ClipImageEncoder] = {}  # noqa: RUF012 (process-wide cache by folder)

    def __init__(self, head: str, default_output: str, root: Path | None = None) -> None:
        root = root or models_dir()
        self.head = MlpHead.load(root / head, default_output)
        clip_dir = root / self.head.clip
        if clip_dir not in self._encoders:
            self._encoders[clip_dir] = ClipImageEncoder.load(clip_dir)
        self.encoder = self._encoders[clip_dir]

    def __call__(self, encoded: Sequence[bytes]) -> np.ndarray:
        from PIL import Image

        images = [Image.open(io.BytesIO(b)).convert("RGB") for b in encoded]
        if not images:
            return np.zeros(0, np.float32)
        return self.head(self.encoder.embed(images)).astype(np.float32)


def aesthetic_scorer(root: Path | None = None) -> ImageScorer:
    return ImageScorer("aesthetic", "score", root)


def watermark_scorer(root: Path | None = None) -> ImageScorer:
    return ImageScorer("watermark", "sigmoid", root)
