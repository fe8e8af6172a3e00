"""Outputs: upscaled just enough to carry SD's invisible watermark, with A1111 infotext."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from imwatermark import WatermarkDecoder
from PIL import Image
from skimage import data

from t2iscope.errors import ConfigError
from t2iscope.generate.output import OutputOptions, finish, save
from t2iscope.generate.params import Params
from t2iscope.generate.pnginfo import parse_parameters, read_parameters
from t2iscope.generate.txt2img import txt2img

P = Params("a (red) dog", negative_prompt="blurry", seed=12, steps=3, cfg_scale=6.5, sampler="DPM++ 2M")


@pytest.fixture(scope="module")
def image(tiny_model) -> Image.Image:
    (out,) = txt2img(tiny_model, [P])
    return out


@pytest.fixture(scope="module")
def photo64() -> Image.Image:
    """A natural picture at the embedded model's 64x64 (the random tiny model makes only noise)."""
    return Image.fromarray(data.astronaut()).resize((64, 64), Image.Resampling.LANCZOS)


def _bits_read(path, method: str = "dwtDct", nbits: int = 136) -> np.ndarray:
    with Image.open(path) as saved:
        bgr = np.ascontiguousarray(np.asarray(saved.convert("RGB"))[:, :, ::-1])
    return np.unpackbits(np.frombuffer(WatermarkDecoder("bytes", nbits).decode(bgr, method), np.uint8))


def test_default_is_sds_dwtdct_mark_after_the_upscale(photo64, tmp_path):
    path = tmp_path / "x.png"
    assert save(path, photo64, P, "tiny", OutputOptions()) == 4
    with Image.open(path) as saved:
        assert saved.size == (256, 256)
    sent = np.unpackbits(np.frombuffer(b"StableDiffusionV1", np.uint8))
    # stock dwtDct on an upscaled 64px picture reads back most, not all, bits (see the note in output.py)
    assert (_bits_read(path) == sent).mean() > 0.9
    plain = tmp_path / "plain.png"
    save(plain, photo64, P, "tiny", OutputOptions(watermark=None, upscale=4))
    assert (_bits_read(plain) == sent).mean() < 0.8


def test_dwtdctsvd_mark_reads_back_exactly(photo64, tmp_path):
    path = tmp_path / "x.png"
    save(path, photo64, P, "tiny", OutputOptions(watermark="dwtDctSvd"))
    assert np.packbits(_bits_read(path, "dwtDctSvd")).tobytes() == b"StableDiffusionV1"


def test_infotext_is_a1111_format(image, tmp_path):
    path = tmp_path / "x.png"
    save(path, image, P, "tiny-sd", OutputOptions())
    text = read_parameters(path)
    assert text.splitlines()[1] == "Negative prompt: blurry"
    got = parse_parameters(text)
    assert got["prompt"] == "a (red) dog"
    assert got["Steps"] == 3 and got["Sampler"] == "DPM++ 2M" and got["CFG scale"] == 6.5
    assert got["Seed"] == 12 and got["Size"] == "64x64" and got["Model"] == "tiny-sd"
    assert got["Output scale"] == 4 and got["Watermark"] == "dwtDct"
    assert "CFG rescale" not in got  # plain CFG, as SD: left out like A1111 leaves out unset fields
    save(path, image, dataclasses.replace(P, cfg_rescale=0.7), "tiny-sd", OutputOptions())
    assert parse_parameters(read_parameters(path))["CFG rescale"] == 0.7


def test_no_watermark_keeps_model_pixels(image):
    out, scale = finish(image, OutputOptions(watermark=None))
    assert scale == 1 and np.array_equal(np.asarray(out), np.asarray(image))
    assert finish(image, OutputOptions(watermark=None, upscale=2))[0].size == (128, 128)


def test_scale_is_the_smallest_that_fits():
    opts = OutputOptions()
    assert opts.scale_for(64, 64) == 4
    assert opts.scale_for(96, 64) == 4  # 288x192 would be under 256*256 pixels
    assert opts.scale_for(512, 512) == 1


def test_bad_output_options():
    with pytest.raises(ConfigError, match="unknown watermark method"):
        OutputOptions(watermark="lsb").check()
    with pytest.raises(ConfigError, match="upscale"):
        OutputOptions(upscale=0).check()
