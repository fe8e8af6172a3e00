"""Inpainting for 4-channel checkpoints: the mask decides what changes; blur, fills, only-masked."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from t2iscope.errors import ConfigError
from t2iscope.generate.inpaint import FILLS, InpaintOptions, fill_masked, inpaint
from t2iscope.generate.params import Params
from t2iscope.generate.txt2img import txt2img

PARAMS = [Params("a red ball", seed=1, steps=4, sampler="Euler a")]


@pytest.fixture(scope="module")
def scene(tiny_model) -> tuple[Image.Image, Image.Image]:
    (image,) = txt2img(tiny_model, [Params("a blue house", seed=4, steps=2)])
    mask = Image.new("L", image.size, 0)
    mask.paste(255, (24, 24, 40, 40))
    return image, mask


def _arr(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_only_the_masked_area_changes(tiny_model, scene):
    image, mask = scene
    (out,) = inpaint(tiny_model, PARAMS, image, mask, InpaintOptions(strength=1.0, mask_blur=0))
    keep = _arr(mask) == 0
    assert np.array_equal(_arr(out)[keep], _arr(image)[keep])
    assert np.abs(_arr(out)[~keep] - _arr(image)[~keep]).mean() > 3


def test_mask_blur_feathers_past_the_mask_edge(tiny_model, scene):
    image, mask = scene
    ring = (slice(20, 23), slice(24, 40))  # 1-3 px above the mask
    sharp, soft = (
        inpaint(tiny_model, PARAMS, image, mask, InpaintOptions(strength=1.0, mask_blur=blur))[0]
        for blur in (0, 4)
    )
    assert np.array_equal(_arr(sharp)[ring], _arr(image)[ring])
    assert not np.array_equal(_arr(soft)[ring], _arr(image)[ring])
    assert np.array_equal(_arr(soft)[:8], _arr(image)[:8])  # far away: untouched


def test_fill_modes_differ(tiny_model, scene):
    image, mask = scene
    outs = {
        fill: _arr(inpaint(tiny_model, PARAMS, image, mask, InpaintOptions(strength=0.5, fill=fill))[0])
        for fill in FILLS
    }
    assert len({o.tobytes() for o in outs.values()}) == len(FILLS)


def test_fill_uses_surrounding_colours():
    image = Image.new("RGB", (32, 32), (200, 30, 30))
    image.paste((0, 0, 255), (8, 8, 24, 24))
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (8, 8, 24, 24))
    filled = np.asarray(fill_masked(image, mask))
    assert np.abs(filled[16, 16].astype(int) - (200, 30, 30)).max() <= 2


def test_only_masked_runs_at_model_size_and_keeps_the_rest(tiny_model, scene, unet_calls):
    image, _ = scene
    big = image.resize((128, 128))
    mask = Image.new("L", big.size, 0)
    mask.paste(255, (80, 80, 96, 96))
    opts = InpaintOptions(strength=1.0, mask_blur=0, only_masked=True, padding=8)
    with unet_calls(tiny_model) as shapes:
        (out,) = inpaint(tiny_model, PARAMS, big, mask, opts)
    assert out.size == big.size
    assert {s[-2:] for s in shapes} == {(16, 16)}  # 64x64 pixels: the crop was upscaled to model size
    assert np.array_equal(_arr(out)[:70], _arr(big)[:70])  # outside box + padding
    assert np.abs(_arr(out)[80:96, 80:96] - _arr(big)[80:96, 80:96]).mean() > 3
    with unet_calls(tiny_model) as shapes:
        inpaint(tiny_model, PARAMS, big, mask, InpaintOptions(strength=1.0, mask_blur=0))
    assert {s[-2:] for s in shapes} == {(32, 32)}  # whole picture


def test_steps_follow_strength(tiny_model, scene, unet_calls):
    image, mask = scene
    with unet_calls(tiny_model) as shapes:
        inpaint(
            tiny_model, [Params("x", seed=1, steps=10, sampler="Euler")], image, mask, InpaintOptions(0.4)
        )
    assert len(shapes) == 5  # A1111's t_enc + 1 = int(0.4 * 10) + 1


def test_bad_inputs(tiny_model, scene):
    image, mask = scene
    with pytest.raises(ConfigError, match="mask size 32x32 does not match image size 64x64"):
        inpaint(tiny_model, PARAMS, image, mask.resize((32, 32)), InpaintOptions())
    with pytest.raises(ConfigError, match="fill must be one of"):
        InpaintOptions(fill="blur").check()
    with pytest.raises(ConfigError, match="strength"):
        InpaintOptions(strength=-0.1).check()
    with pytest.raises(ConfigError, match="mask_blur must be an integer from 0 to 64, got 1000"):
        InpaintOptions(mask_blur=1000).check()
    with pytest.raises(ConfigError, match="padding must be an integer from 0 to 256, got -1"):
        InpaintOptions(padding=-1).check()
    with pytest.raises(ConfigError, match="image size 2056x64: each side must be a multiple of 8"):
        big = image.resize((2056, 64))
        inpaint(tiny_model, PARAMS, big, mask.resize((2056, 64)), InpaintOptions())


def test_cfg_rescale_reaches_the_masked_area(tiny_model, scene):
    image, mask = scene
    opts = InpaintOptions(strength=1.0, mask_blur=0)
    runs = [[Params("a red ball", seed=1, steps=4, cfg_rescale=r)] for r in (0.0, 0.9)]
    plain, rescaled = (_arr(inpaint(tiny_model, batch, image, mask, opts)[0]) for batch in runs)
    keep = _arr(mask) == 0
    assert np.array_equal(plain[keep], rescaled[keep])
    assert not np.array_equal(plain[~keep], rescaled[~keep])
