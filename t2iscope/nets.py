"""The torch modules and pixel conventions of the embedded scorers, shared by every area.

Training (``generate/train``), measurement, the curation scorers and the judges all build their
inputs here, so a score computed while curating equals the one ``generate train measure`` reports
for the same image:

- images are uint8 tensors ``N x 3 x S x S`` (RGB), decoded and resized by :func:`rgb_pixels`;
- CLIP input is ``(x / 255 - mean) / std`` with OpenAI CLIP's statistics, the embedding is
  L2-normalised (:func:`clip_embeddings`), as LAION's improved-aesthetic-predictor expects;
- the watermark CNN takes 64 x 64 input normalised with ImageNet statistics, as
  LAION-5B-WatermarkDetection does, and ``pwatermark = softmax(logits)[:, 0]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from t2iscope.pixels import to_rgb

# OpenAI CLIP's pixel statistics (open_clip's defaults when a config has no preprocess_cfg).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def rgb_pixels(image: Image.Image, size: int) -> np.ndarray:
    """``size x size x 3`` uint8 RGB: the image converted and resized (bicubic) to a square.

    Squashing rather than cropping undoes the world server's resize to each row's original aspect.
    Any mode is read as :func:`t2iscope.pixels.to_rgb` reads it (16-bit, alpha, EXIF orientation).
    """
    return np.asarray(to_rgb(image).resize((size, size), Image.Resampling.BICUBIC))


def normalize_pixels(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 ``N x 3 x H x W`` -> float32 ``(x / 255 - mean) / std`` per channel, on the same device."""
    x = images.float() / 255.0
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


@torch.no_grad()
def clip_embeddings(
    clip: nn.Module,
    images: torch.Tensor,
    device: str = "cpu",
    batch: int = 512,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
) -> torch.Tensor:
    """L2-normalised ``clip.encode_image`` of uint8 ``N x 3 x S x S`` images: float32 ``N x D`` on CPU.

    ``S`` must be the tower's input size. Runs ``batch`` images at a time; moves ``clip`` to ``device``.
    """
    clip = clip.to(device).eval()
    out = [
        F.normalize(
            clip.encode_image(normalize_pixels(images[i : i + batch].to(device), mean, std)).float(), dim=-1
        ).cpu()
        for i in range(0, len(images), batch)
    ]
    return torch.cat(out)


class AestheticMLP(nn.Module):
    """LAION improved-aesthetic-predictor: an MLP on L2-normalised CLIP image embeddings.

    State-dict keys ``layers.{0,2,4,6,7}.{weight,bias}`` are LAION's, so their published heads
    (e.g. ``sac+logos+ava1-l14-linearMSE.pth``, input 768) load unchanged. ``N x input_size`` -> ``N x 1``.
    """

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


class PixelCNN(nn.Module):
    """A CNN over uint8 pixels normalised by ``mean``/``std`` (recorded in the weight folder's config,
    not part of the state dict); subclasses build ``self.net``."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    net: nn.Sequential

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def preprocess(self, images_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 ``N x 3 x H x W`` -> the normalised float input the CNN was trained on."""
        return normalize_pixels(images_uint8, self.mean, self.std)


class WatermarkCNN(PixelCNN):
    """A small CNN with LAION-5B-WatermarkDetection's output: logits for (watermark, clear)."""

    def __init__(
        self, width: int = 32, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
    ) -> None:
        super().__init__()
        self.mean, self.std = tuple(mean), tuple(std)
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

    @torch.no_grad()
    def pwatermark(self, images_uint8: torch.Tensor) -> torch.Tensor:
        """P(watermark) in [0, 1], float32 ``N``, for uint8 ``N x 3 x 64 x 64`` on the model's device."""
        return self(self.preprocess(images_uint8)).softmax(-1)[:, 0]


class LegsCNN(PixelCNN):
    """A small CNN that counts visible legs: logits over ``0 .. classes - 1`` legs.

    Conv-BatchNorm-ReLU blocks down to 8 x 8, then the mean over positions: a count is a sum of
    local evidence wherever the legs are.
    """

    def __init__(
        self,
        width: int = 32,
        classes: int = 11,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.mean, self.std, self.classes = tuple(mean), tuple(std), classes
        w = width

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.net = nn.Sequential(
            *block(3, w // 2),
            nn.MaxPool2d(2),  # 32 x 32
            *block(w // 2, w),
            *block(w, w),
            nn.MaxPool2d(2),  # 16 x 16
            *block(w, 2 * w),
            *block(2 * w, 2 * w),
            nn.MaxPool2d(2),  # 8 x 8
            *block(2 * w, 2 * w),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(2 * w, classes),
        )

    @torch.no_grad()
    def probabilities(self, images_uint8: torch.Tensor) -> torch.Tensor:
        """P(legs = k), float32 ``N x classes``, for uint8 ``N x 3 x S x S`` on the model's device."""
        return self(self.preprocess(images_uint8)).softmax(-1)
