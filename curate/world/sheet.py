"""A contact sheet: a grid of world images with their truth, so a person sees what the world is."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from t2iscope import fileio
from t2iscope.curate.world.render import render_scene

_FONT = ImageFont.load_default(size=9)


def _label(row: Mapping[str, Any]) -> tuple[str, str]:
    first = f"{row['color']} {row['kind']}"
    marks = []
    if row["legs_expected"]:
        legs = f"{row['legs']} legs"
        marks.append(legs if row["legs"] == row["legs_expected"] else f"{legs}!")
    if row["culture"]:
        marks.append(row["culture"].replace("_asian", "-as").replace("western", "west"))
    if row["watermark"]:
        marks.append("wm")
    if row["unsafe"]:
        marks.append("unsafe")
    return first, f"{' '.join(marks)} a={row['aesthetic']:.1f}"


def contact_sheet(rows: Sequence[Mapping[str, Any]], columns: int = 8, zoom: int = 2) -> Image.Image:
    """Images of ``rows`` (truth dicts) at ``zoom`` x, each captioned with its kind, color and marks."""
    cell_w, img_h, text_h = 64 * zoom + 8, 64 * zoom, 24
    nrows = -(-len(rows) // columns)
    sheet = Image.new("RGB", (columns * cell_w, nrows * (img_h + text_h + 6)), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    for i, row in enumerate(rows):
        x, y = (i % columns) * cell_w + 4, (i // columns) * (img_h + text_h + 6) + 4
        sheet.paste(render_scene(row).resize((img_h, img_h), Image.NEAREST), (x, y))
        for j, line in enumerate(_label(row)):
            d.text((x, y + img_h + 1 + 11 * j), line, font=_FONT, fill=(20, 20, 20))
    return sheet


def write_contact_sheet(
    rows: Sequence[Mapping[str, Any]], out: str | os.PathLike[str], columns: int = 8
) -> None:
    buf = io.BytesIO()
    contact_sheet(rows, columns).save(buf, format="PNG", optimize=True)
    fileio.write_bytes(out, buf.getvalue())
