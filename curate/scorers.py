"""Model scores for post-download stages: the aesthetic head and the watermark classifier.

The models come from ``t2iscope.weights.load_model`` (``models/aesthetic``, ``models/watermark``;
``T2ISCOPE_MODELS`` overrides), the same loader training, measurement and the judges use, and
images go through the same decode and pixel conventions (``t2iscope.nets``), so a row's score here
equals what ``t2iscope generate train measure`` computes for that image. Loading is cached per
process: a Ray worker that builds a scorer loads the weights once.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from t2iscope.nets import rgb_pixels
from t2iscope.weights import AESTHETIC, WATERMARK, ImageScoreModel, load_model, model_folder

BATCH = 256  # images decoded and scored at a time: bounds memory on large shards


def decode(blob: bytes | None, size: int) -> np.ndarray | None:
    """``size x size x 3`` uint8 RGB of an encoded image, or None if it is missing or undecodable."""
    if blob is None:
        return None
    try:
        with Image.open(io.BytesIO(blob)) as im:
            return rgb_pixels(im, size)
    except (OSError, ValueError, Image.DecompressionBombError):  # PIL's errors for broken files
        return None


class ImageScorer:
    """``scorer(list of encoded images) -> float32 [n]`` with one loaded model, batched.

    A missing or undecodable image scores NaN, which the threshold stages drop as ``<score>_missing``.
    """

    def __init__(self, model: ImageScoreModel, batch: int = BATCH) -> None:
        self.model = model
        self.batch = batch

    def __call__(self, encoded: Sequence[bytes | None]) -> np.ndarray:
        out = np.full(len(encoded), np.nan, dtype=np.float32)
        size = self.model.input_size
        for start in range(0, len(encoded), self.batch):
            pixels = [decode(b, size) for b in encoded[start : start + self.batch]]
            ok = [i for i, p in enumerate(pixels) if p is not None]
            if ok:
                images = torch.from_numpy(np.stack([pixels[i] for i in ok])).permute(0, 3, 1, 2)
                out[start + np.asarray(ok)] = self.model.score(images, self.batch).numpy()
        return out


def aesthetic_scorer(root: str | Path | None = None, device: str = "cpu") -> ImageScorer:
    """LAION aesthetic score (CLIP embedding -> MLP) of each image, from ``root/aesthetic``."""
    return ImageScorer(load_model(model_folder("aesthetic", root), device, expect=AESTHETIC))


def watermark_scorer(root: str | Path | None = None, device: str = "cpu") -> ImageScorer:
    """P(watermark) in [0, 1] of each image, from ``root/watermark``."""
    return ImageScorer(load_model(model_folder("watermark", root), device, expect=WATERMARK))
