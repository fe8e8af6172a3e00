"""Image lookup and safe decoding for thumbnails and galleries.

Only files inside the runs folder are ever served: a path that comes from a table (a manifest's
``image_path``) or a link in a run folder is resolved, symlinks followed, and refused when it
leaves the folder. A corrupt, missing or oversized file must cost one placeholder, not the page:
``read_image`` returns None instead of raising, and the page says which file could not be read.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import streamlit as st
from PIL import Image

from t2iscope.curate.world.layout import hash_hex

MAX_SIDE = 512  # images are sent to the browser at most this large: pages stay light
MAX_PIXELS = 64 * 1024 * 1024  # a larger image is not decoded: a small PNG can claim gigapixels


def inside(root: str | os.PathLike[str], base: str | os.PathLike[str], value: Any) -> Path | None:
    """``value`` (a file name from a table) resolved against ``base``, if it stays inside ``root``.

    Symlinks are followed and ``..`` collapsed before the check, so neither an absolute path, a
    ``../`` walk nor a link out of the runs folder gets through.
    """
    if not isinstance(value, str) or not value or "\0" in value:
        return None
    try:
        path = (Path(base) / value).resolve()
        top = Path(root).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return None
    return path if path.is_relative_to(top) else None


def world_image(worlds: Sequence[str], value: Any, root: str | os.PathLike[str]) -> Path | None:
    """The rendered image of the row with this hash in any of the worlds, if one was written there."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        return None  # a hash column of text, NaN or inf (a foreign table) names no image
    name = f"{hash_hex(int(value))}.png"
    for world in worlds:
        for hit in sorted((Path(world) / "images").glob(f"*/{name}")):
            if served := inside(root, hit.parent, hit.name):
                return served
    return None


@st.cache_data(max_entries=2000, show_spinner=False)
def read_image(path: str) -> bytes | None:
    """PNG bytes of the image at ``path``, at most MAX_SIDE pixels a side; None if unreadable.

    Only a regular file is opened (a FIFO would block the page), and only up to MAX_PIXELS.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                return None
            im.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG decodes at a fraction of its size
            im.load()
            im = im.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):  # UnidentifiedImageError is an OSError
        return None
    im.thumbnail((MAX_SIDE, MAX_SIDE))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()
