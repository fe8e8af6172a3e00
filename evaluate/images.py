"""Image inputs for audits: checked loading, and the image sets the watermark audit runs on.

``load_image`` turns a missing or corrupt file into a DataError naming it, so audits can count
it as a skip instead of crashing or silently dropping it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from t2iscope.errors import ConfigError, DataError
from t2iscope.pixels import to_rgb

# Natural photographs shipped inside scikit-image (no download needed).
SKIMAGE_PHOTOS: tuple[str, ...] = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "camera",
    "moon",
    "coins",
    "clock",
    "brick",
    "grass",
    "gravel",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def load_image(path: str | Path) -> Image.Image:
    """Open an image fully as RGB; raise DataError naming the file if it is missing or corrupt."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: image file not found")
    try:
        with Image.open(p) as im:
            return to_rgb(im)  # 16-bit, alpha and EXIF orientation read as everywhere (t2iscope.pixels)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{p}: unreadable image ({type(exc).__name__})") from None


def square(img: Image.Image, size: int) -> Image.Image:
    """Centre-crop to a square and resize to ``size`` (bicubic): one geometry for every source."""
    w, h = img.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    return img.crop(box).resize((size, size), Image.Resampling.BICUBIC)


def skimage_photos(size: int, limit: int | None = None) -> list[tuple[str, Image.Image]]:
    """scikit-image's bundled photographs as RGB squares (grey ones replicated to 3 channels)."""
    import skimage.data

    out = []
    for name in SKIMAGE_PHOTOS[:limit]:
        arr = np.asarray(getattr(skimage.data, name)())
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        out.append((f"skimage:{name}", square(Image.fromarray(arr[..., :3].astype(np.uint8)), size)))
    return out


def folder_images(folder: str | Path, size: int, limit: int | None = None) -> list[tuple[str, Image.Image]]:
    """Images under ``folder`` (recursively, sorted), squared to ``size``; e.g. a world's images/."""
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"{root}: image folder not found")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not paths:
        raise DataError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    return [(str(p), square(load_image(p), size)) for p in paths]
