"""Model scores for post-download stages: the aesthetic head, the watermark classifier, CLIP score.

The models come from ``t2iscope.weights.load_model`` (``models/aesthetic``, ``models/watermark``,
``models/clip`` or any open_clip folder; ``T2ISCOPE_MODELS`` overrides), the same loader training,
measurement and the judges use. The heads' images go through the same decode and pixel conventions
(``t2iscope.nets``), so a row's score here equals what ``t2iscope generate train measure``
computes for that image; CLIP score takes the model's own open_clip preprocess, as LAION's and
DataComp's similarity columns did. Loading is cached per process: a Ray worker that builds a
scorer loads the weights once.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from t2iscope.curate.operators.model_score import DEVICE_ENV
from t2iscope.nets import rgb_pixels
from t2iscope.weights import (
    AESTHETIC,
    OPEN_CLIP,
    WATERMARK,
    ImageScoreModel,
    OpenClip,
    load_model,
    model_folder,
)

BATCH = 256  # images decoded and scored at a time: bounds memory on large shards


def open_image(blob: bytes | None) -> Image.Image | None:
    """The decoded image of an encoded one, or None if it is missing or undecodable."""
    if blob is None:
        return None
    try:
        im = Image.open(io.BytesIO(blob))
        im.load()
    except (OSError, ValueError, Image.DecompressionBombError):  # PIL's errors for broken files
        return None
    return im


def decode(blob: bytes | None, size: int) -> np.ndarray | None:
    """``size x size x 3`` uint8 RGB of an encoded image, or None if it is missing or undecodable."""
    im = open_image(blob)
    return None if im is None else rgb_pixels(im, size)


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


class ClipScorer:
    """``scorer(encoded images, captions) -> float32 [n]``: cosine similarity in [-1, 1] of each
    image's and its caption's L2-normalised CLIP embeddings, ``batch`` rows at a time.

    Images take the model's open_clip preprocess (shorter side resized, centre crop); captions
    its tokenizer (cut at 77 tokens). A missing or undecodable image, or a caption that is
    missing or blank, scores NaN, which the stage drops as ``clip_score_missing``.
    """

    def __init__(self, clip: OpenClip, batch: int = BATCH) -> None:
        self.clip = clip
        self.batch = batch

    @torch.no_grad()
    def __call__(self, encoded: Sequence[bytes | None], texts: Sequence[str | None]) -> np.ndarray:
        out = np.full(len(encoded), np.nan, dtype=np.float32)
        device = next(self.clip.model.parameters()).device
        for start in range(0, len(encoded), self.batch):
            images = [open_image(b) for b in encoded[start : start + self.batch]]
            captions = texts[start : start + self.batch]
            pairs = enumerate(zip(images, captions, strict=True))
            ok = [i for i, (im, t) in pairs if im is not None and t is not None and t.strip()]
            if ok:
                pixels = torch.stack([self.clip.preprocess(images[i]) for i in ok]).to(device)
                image = F.normalize(self.clip.model.encode_image(pixels).float(), dim=-1).cpu()
                text = self.clip.embed_text([captions[i] for i in ok], self.batch)
                out[start + np.asarray(ok)] = (image * text).sum(-1).numpy()
        return out


def _device(device: str | None) -> str:
    """``device``, else ``$T2ISCOPE_SCORE_DEVICE`` (model_score.DEVICE_ENV), else cpu."""
    return device or os.environ.get(DEVICE_ENV, "cpu")


def clip_scorer(folder: str | Path | None = None, device: str | None = None) -> ClipScorer:
    """Image-caption CLIP score with the open_clip model in ``folder`` (default: the embedded
    ``models/clip``)."""
    folder = folder if folder is not None else model_folder("clip")
    return ClipScorer(load_model(folder, _device(device), expect=OPEN_CLIP))


def aesthetic_scorer(root: str | Path | None = None, device: str | None = None) -> ImageScorer:
    """LAION aesthetic score (CLIP embedding -> MLP) of each image, from ``root/aesthetic``."""
    return ImageScorer(load_model(model_folder("aesthetic", root), _device(device), expect=AESTHETIC))


def watermark_scorer(root: str | Path | None = None, device: str | None = None) -> ImageScorer:
    """P(watermark) in [0, 1] of each image, from ``root/watermark``."""
    return ImageScorer(load_model(model_folder("watermark", root), _device(device), expect=WATERMARK))
