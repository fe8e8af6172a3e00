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
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import streamlit as st
from PIL import Image

from t2iscope.curate.download import IMAGE_EXTENSIONS
from t2iscope.curate.world.layout import hash_hex
from t2iscope.pixels import to_rgb

MAX_SIDE = 512  # images are sent to the browser at most this large: pages stay light
MAX_PIXELS = 64 * 1024 * 1024  # a larger image is not decoded: a small PNG can claim gigapixels
MAX_BYTES = 64 * 1024 * 1024  # a larger encoded image in a download's shard is not read


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
    except OSError:
        return None
    return _thumbnail(path)


@st.cache_data(max_entries=200, show_spinner=False)
def stored_image(shard: str, key: str) -> bytes | None:
    """PNG thumbnail (as :func:`read_image`) of the image img2dataset stored under ``key`` in the
    shard whose metadata is ``shard`` (``images/attempt-N/NNNNN.parquet``): a ``<key>.<ext>`` member
    of ``NNNNN.tar`` beside it (webdataset), else that parquet's ``jpg`` column (parquet format).

    None when it is missing, not a regular member, larger than MAX_BYTES or unreadable.
    """
    path = Path(shard)
    tar = path.with_suffix(".tar")
    try:
        if tar.is_file():
            with tarfile.open(tar) as archive:
                names = [f"{key}.{ext}" for ext in IMAGE_EXTENSIONS]
                member = next((m for m in archive if m.name in names), None)
                if member is None or not member.isfile() or member.size > MAX_BYTES:
                    return None
                blob = archive.extractfile(member).read()  # type: ignore[union-attr]
        else:
            found = pq.read_table(path, columns=["jpg"], filters=[("key", "==", key)]).column(0)
            blob = found[0].as_py() if len(found) else None
    except (OSError, tarfile.TarError, pa.ArrowException, KeyError):  # KeyError: no jpg/key column
        return None
    return _thumbnail(io.BytesIO(blob)) if isinstance(blob, bytes) and len(blob) <= MAX_BYTES else None


def _thumbnail(source: str | io.BytesIO) -> bytes | None:
    """PNG bytes of an image file or buffer, at most MAX_SIDE a side; None if unreadable or too large."""
    try:
        with Image.open(source) as im:
            if im.width * im.height > MAX_PIXELS:
                return None
            im.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG decodes at a fraction of its size
            im.load()
            im = to_rgb(im)  # the one reading of an image file (t2iscope.pixels)
    except (OSError, ValueError, Image.DecompressionBombError):  # UnidentifiedImageError is an OSError
        return None
    im.thumbnail((MAX_SIDE, MAX_SIDE))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()
