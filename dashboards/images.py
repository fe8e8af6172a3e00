"""Image lookup and safe decoding for thumbnails and galleries.

A corrupt or missing file must cost one placeholder, not the page: ``read_image`` returns None
instead of raising, and the page says which file could not be read.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import streamlit as st
from PIL import Image, UnidentifiedImageError

THUMB = 128  # longest side of a thumbnail, pixels


def hash_hex(value: int) -> str:
    """A row's int64 ``hash`` as the 16 hex digits used in world image names."""
    return f"{int(value) & 0xFFFFFFFFFFFFFFFF:016x}"


def world_image(worlds: Sequence[str], value: int) -> Path | None:
    """The rendered image of the row with this hash in any of the worlds, if one was written."""
    name = f"{hash_hex(value)}.png"
    for world in worlds:
        hits = list((Path(world) / "images").glob(f"*/{name}"))
        if hits:
            return hits[0]
    return None


@st.cache_data(max_entries=2000, show_spinner=False)
def read_image(path: str, max_side: int = 0) -> bytes | None:
    """PNG bytes of the image at ``path`` (downscaled to ``max_side`` if given); None if unreadable."""
    try:
        with Image.open(path) as im:
            im.load()
            im = im.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    if max_side and max(im.size) > max_side:
        im.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()
