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

from t2iscope.curate.world.layout import hash_hex

MAX_SIDE = 512  # images are sent to the browser at most this large: pages stay light


def world_image(worlds: Sequence[str], value: int) -> Path | None:
    """The rendered image of the row with this hash in any of the worlds, if one was written."""
    name = f"{hash_hex(int(value))}.png"
    for world in worlds:
        hits = list((Path(world) / "images").glob(f"*/{name}"))
        if hits:
            return hits[0]
    return None


@st.cache_data(max_entries=2000, show_spinner=False)
def read_image(path: str) -> bytes | None:
    """PNG bytes of the image at ``path``, at most MAX_SIDE pixels a side; None if unreadable."""
    try:
        with Image.open(path) as im:
            im.load()
            im = im.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    im.thumbnail((MAX_SIDE, MAX_SIDE))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()
