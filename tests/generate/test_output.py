"""Outputs: upscaled just enough to carry SD's invisible watermark, with A1111 infotext."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from imwatermark import WatermarkDecoder
from PIL import Image
from skimage import data

from t2iscope.errors import ConfigError
from t2iscope.generate.output import OutputOptions, finish, infotext, save
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


# Issue 17: every A1111 setting in the infotext with A1111's key, order and condition
def _fields(p: Params, size=(64, 64), **kw) -> dict:
    return parse_parameters(infotext(p, size, "tiny-sd", 1, OutputOptions(watermark=None), **kw))


def test_defaults_write_only_the_schedule_type_a1111_always_writes():
    got = _fields(P)
    assert (got["Sampler"], got["Schedule type"]) == ("DPM++ 2M", "Karras")  # Automatic, resolved
    absent = {
        "Variation seed", "Variation seed strength", "Clip skip", "Emphasis", "Hires upscale", "Hires steps",
        "Hires upscaler", "Denoising strength", "Model hash",
    }  # fmt: skip
    assert not absent & set(got)
    assert _fields(dataclasses.replace(P, sampler="Euler a"))["Schedule type"] == "Uniform"
    assert _fields(dataclasses.replace(P, scheduler="Exponential"))["Schedule type"] == "Exponential"


@pytest.mark.parametrize("sampler", ["DDIM", "PLMS", "UniPC", "PNDM"])
def test_samplers_with_their_own_timesteps_write_no_schedule_type(sampler):
    got = _fields(dataclasses.replace(P, sampler=sampler, scheduler="Karras"))
    assert "Schedule type" not in got and got["Sampler"] == ("PLMS" if sampler == "PNDM" else sampler)


def test_old_sampler_names_are_written_as_a1111_writes_them_now():
    got = _fields(dataclasses.replace(P, sampler="DPM++ 2M Karras"))
    assert (got["Sampler"], got["Schedule type"]) == ("DPM++ 2M", "Karras")


def test_every_new_setting_in_a1111s_words_and_order():
    p = dataclasses.replace(
        P, subseed=5, subseed_strength=0.3, clip_skip=2, emphasis="No norm", enable_hr=True, hr_scale=2.0,
        hr_upscaler="Latent", hr_second_pass_steps=10, denoising_strength=0.6,
    )  # fmt: skip
    text = infotext(
        p, (128, 128), "v1-5-pruned-emaonly", 1, OutputOptions(watermark=None), model_hash="6ce0161689",
        extra={"Lora hashes": "a: 0123456789ab", "TI hashes": None},
    )  # fmt: skip
    line = text.splitlines()[-1]
    assert line == (
        "Steps: 3, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 12, Size: 64x64, "
        "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Variation seed: 5, "
        "Variation seed strength: 0.3, Denoising strength: 0.6, Clip skip: 2, Hires upscale: 2.0, "
        'Hires steps: 10, Hires upscaler: Latent, Emphasis: No norm, Lora hashes: "a: 0123456789ab"'
    )
    got = parse_parameters(text)
    assert got["Size"] == "64x64"  # A1111's Size is the first pass; the image is hr_scale times larger
    assert "TI hashes" not in got  # None is left out, as A1111 does


def test_hires_steps_only_when_set_and_first_pass_size_without_a_requested_size():
    p = dataclasses.replace(P, enable_hr=True, hr_scale=1.5)
    got = _fields(p, size=(96, 96))
    assert got["Size"] == "64x64" and got["Hires upscale"] == 1.5 and "Hires steps" not in got
    assert got["Denoising strength"] == 0.7 and got["Hires upscaler"] == "Latent"
    # img2img's strength stays its own Denoising strength
    assert _fields(P, strength=0.4)["Denoising strength"] == 0.4


def test_every_key_written_is_one_the_reader_knows():
    from t2iscope.generate.pnginfo import _PARAM, A1111_KEYS

    p = dataclasses.replace(
        P, subseed=5, subseed_strength=0.3, clip_skip=2, emphasis="No norm", enable_hr=True,
        hr_second_pass_steps=10, cfg_rescale=0.5,
    )  # fmt: skip
    text = infotext(p, (128, 128), "m", 4, OutputOptions(), 0.5, model_hash="0123456789",
                    extra={"Lora hashes": "x", "TI hashes": "y"})  # fmt: skip
    keys = {k.strip() for k, _ in _PARAM.findall(text.splitlines()[-1])}
    assert keys <= A1111_KEYS, keys - A1111_KEYS
