"""One reading of every image file (t2iscope.pixels), through each place that reads images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from t2iscope.curate.scorers import decode
from t2iscope.evaluate.images import load_image as audit_image
from t2iscope.generate.params import load_image as input_image


def _gradient16(path: Path) -> Path:
    """A 16-bit grey PNG, dark to light: PIL's convert("RGB") clips it almost all white."""
    Image.fromarray(np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)).save(path)
    return path


def test_sixteen_bit_png_keeps_its_tones_everywhere(tmp_path: Path) -> None:
    path = _gradient16(tmp_path / "g16.png")
    with Image.open(path) as im:
        assert im.mode == "I;16" and np.asarray(im.convert("RGB")).mean() > 250  # the fault
    for image in (input_image(path, "--image"), audit_image(path)):
        pixels = np.asarray(image)
        assert image.mode == "RGB" and abs(pixels.mean() - 127.5) < 1 and pixels.min() == 0
    assert abs(decode(path.read_bytes(), 64).mean() - 127.5) < 1  # curation pixels


def test_transparency_is_flattened_onto_white_and_a_mask_s_onto_black(tmp_path: Path) -> None:
    """A1111 flattens transparent inputs onto its background colour, white by default."""
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 4, 8))
    rgba.save(tmp_path / "a.png")
    image = np.asarray(input_image(tmp_path / "a.png", "--image"))
    assert image[0, 0].tolist() == [0, 0, 255] and image[0, 7].tolist() == [255, 255, 255]
    mask = np.asarray(input_image(tmp_path / "a.png", "--mask", "L"))
    assert mask[0, 7] == 0 and mask[0, 0] > 0  # transparent: not masked
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    palette.save(tmp_path / "p.png", transparency=1)
    assert np.asarray(audit_image(tmp_path / "p.png"))[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    """A phone JPEG stored sideways with Orientation 6 (rotate 90 clockwise to view) is read upright."""
    stored = Image.new("RGB", (40, 20), (0, 0, 0))
    stored.paste((255, 255, 255), (0, 0, 20, 20))  # left half white as stored
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "o.jpg", exif=exif, quality=95)
    upright = np.asarray(input_image(tmp_path / "o.jpg", "--image"))
    assert upright.shape == (40, 20, 3)
    assert upright[:20].mean() > 200 and upright[20:].mean() < 50  # white on top after turning


def test_cmyk_jpeg_reads_as_rgb(tmp_path: Path) -> None:
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg")  # full magenta + yellow: red
    pixels = np.asarray(audit_image(tmp_path / "c.jpg"))
    assert pixels[..., 0].mean() > 200 and pixels[..., 1].mean() < 60 and pixels[..., 2].mean() < 60


@pytest.mark.parametrize("data", [b"", b"not an image", b"\x89PNG\r\n\x1a\n broken"])
def test_unreadable_files_are_one_line_errors(tmp_path: Path, data: bytes) -> None:
    from t2iscope.errors import DataError

    (tmp_path / "x.png").write_bytes(data)
    with pytest.raises(DataError, match=r"^--image .*x\.png: not a readable image"):
        input_image(tmp_path / "x.png", "--image")
    assert decode(data, 8) is None and decode(io.BytesIO(data).getvalue(), 8) is None
