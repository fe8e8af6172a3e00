"""One way to turn any decoded image into the RGB (or mask) pixels the product works on.

Every image t2iscope reads (img2img, inpaint and outpaint images and masks, the audits' generated
images, curation's downloaded pixels) goes through :func:`to_rgb`, so a file means the same thing
everywhere. PIL's plain ``convert("RGB")`` gets several kinds of real files wrong:

- 16-bit images (``I;16`` grey PNGs, 32-bit ``I``) are clipped at 255, so most pixels turn white;
  here they are scaled to 8 bits (value / 257, as PNG's own sample depth scaling does).
- Transparency becomes black; A1111 flattens transparent inputs onto a background colour, white by
  default (its "Background color for transparent images" setting), and so does this.
- EXIF orientation is ignored; here the image is turned upright first, as viewers show it.
- Palette images with a transparent index and ``LA``/``PA`` images lose their alpha; they are read
  with it. CMYK goes through PIL's CMYK->RGB conversion.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

WHITE = (255, 255, 255)
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ORIENTATION = 0x0112  # EXIF tag


def to_rgb(image: Image.Image, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """``image`` upright, 8 bits per channel, alpha flattened onto ``background``: mode ``RGB``.

    Raises nothing beyond PIL's own errors for a broken file (callers name the file).
    """
    if image.getexif().get(_ORIENTATION, 1) != 1:  # exif_transpose copies even an upright image
        image = ImageOps.exif_transpose(image)
    if image.mode in _SIXTEEN_BIT:
        grey = np.asarray(image, dtype=np.float64)
        # 16-bit samples fill 0..65535; an 8-bit image stored as "I" stays within 0..255
        scale = 257.0 if grey.max(initial=0) > 255 else 1.0
        image = Image.fromarray(np.clip(np.rint(grey / scale), 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, background)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def to_mask(image: Image.Image) -> Image.Image:
    """A mask image as mode ``L`` (white = masked): upright, 8 bits, transparent parts unmasked
    (flattened onto black, as an eraser-drawn mask means)."""
    return to_rgb(image, background=(0, 0, 0)).convert("L")
