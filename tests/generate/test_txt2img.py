"""txt2img on the tiny model: every parameter reaches the image; bad parameters fail before work."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from t2iscope.errors import ConfigError
from t2iscope.generate.params import Params
from t2iscope.generate.txt2img import txt2img

BASE = Params("a red dog", seed=1, steps=2, cfg_scale=7.0, sampler="DPM++ 2M")


def _gen(model, **changes) -> np.ndarray:
    (image,) = txt2img(model, [dataclasses.replace(BASE, **changes)])
    return np.asarray(image, dtype=np.int16)


def _differs(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape != b.shape or not np.array_equal(a, b)


def test_deterministic_and_native_size(tiny_model):
    a, b = _gen(tiny_model), _gen(tiny_model)
    assert a.shape == (64, 64, 3)
    assert np.array_equal(a, b)


@pytest.mark.parametrize(
    "change",
    [
        {"seed": 2},
        {"steps": 3},
        {"cfg_scale": 2.0},
        {"cfg_rescale": 0.7},
        {"negative_prompt": "blurry, blue"},
        {"prompt": "a (red:1.6) dog"},  # emphasis reaches the conditioning
        {"prompt": "a red BREAK dog"},
    ],
)
def test_every_parameter_changes_the_image(tiny_model, change):
    assert _differs(_gen(tiny_model), _gen(tiny_model, **change))


def test_width_and_height(tiny_model):
    assert _gen(tiny_model, width=96, height=32).shape == (32, 96, 3)


def test_prompt_longer_than_75_tokens(tiny_model):
    long = ", ".join(["a red dog on green grass"] * 20)
    short = _gen(tiny_model, prompt="a red dog on green grass")
    assert _differs(_gen(tiny_model, prompt=long), short)


def test_batch_with_different_prompt_lengths(tiny_model):
    long = Params(", ".join(["a red dog"] * 40), seed=1, steps=2)
    images = txt2img(tiny_model, [long, dataclasses.replace(long, prompt="a cup", seed=2)])
    assert len(images) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"steps": 0}, "steps must be an integer from 1 to 150, got 0"),
        ({"steps": 151}, "steps must be an integer from 1 to 150, got 151"),
        ({"cfg_scale": -1.0}, "cfg_scale must be a finite number from 0 to 30, got -1.0"),
        ({"cfg_scale": float("nan")}, "cfg_scale must be a finite number from 0 to 30, got nan"),
        ({"width": 100}, "width must be a multiple of 8 from 8 to 2048 pixels, got 100"),
        ({"width": 100_000}, "width must be a multiple of 8 from 8 to 2048 pixels, got 100000"),
        ({"height": 0}, "height must be a multiple of 8 from 8 to 2048 pixels, got 0"),
        ({"sampler": "Euler z"}, "unknown sampler"),
        ({"seed": -5}, "seed must be"),
        ({"batch_size": 0}, "batch_size"),
        ({"seed": 2**32}, "seed must be -1 \\(random\\) or an integer from 0 to 4294967295, got 4294967296"),
        ({"seed": 2**32 - 1, "batch_size": 2}, "goes past the largest seed 4294967295"),
    ],
)
def test_bad_parameters(change, message):
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(BASE, **change).check()


def test_batch_must_share_settings(tiny_model):
    with pytest.raises(ConfigError, match="share"):
        txt2img(tiny_model, [BASE, dataclasses.replace(BASE, steps=5)])


def test_cfg_rescale_must_be_a_fraction(tiny_model):
    with pytest.raises(ConfigError, match=r"cfg_rescale must be a finite number from 0 to 1, got 1\.5"):
        _gen(tiny_model, cfg_rescale=1.5)
