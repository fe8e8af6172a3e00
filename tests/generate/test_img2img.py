"""img2img: strength is the fraction of the schedule re-noised (SD's script semantics)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from t2iscope.errors import ConfigError, DataError
from t2iscope.generate.img2img import img2img
from t2iscope.generate.params import Params, load_image
from t2iscope.generate.txt2img import txt2img


@pytest.fixture(scope="module")
def init(tiny_model) -> Image.Image:
    (image,) = txt2img(tiny_model, [Params("a blue house", seed=4, steps=2)])
    return image


# A1111's arithmetic: t_enc = int(min(strength, 0.999) * steps); k-diffusion samplers then make
# t_enc + 1 calls, its DDIM t_enc - 1 (sd_samplers_kdiffusion / sd_samplers_timesteps sample_img2img)
@pytest.mark.parametrize(
    ("sampler", "strength", "calls"),
    [("Euler", 0.6, 4), ("Euler", 0.4, 3), ("Euler", 1.0, 5), ("DDIM", 0.6, 2), ("DDIM", 1.0, 3)],
)
def test_strength_is_the_fraction_of_steps_run(tiny_model, init, unet_calls, sampler, strength, calls):
    with unet_calls(tiny_model) as shapes:
        (out,) = img2img(tiny_model, [Params("a red dog", seed=1, steps=5, sampler=sampler)], init, strength)
    assert len(shapes) == calls
    assert out.size == init.size


def test_strength_zero_returns_the_input(tiny_model, init):
    (out,) = img2img(tiny_model, [Params("a red dog", seed=1, steps=10)], init, 0.0)
    assert np.array_equal(np.asarray(out), np.asarray(init))


def test_low_strength_keeps_more_of_the_input_than_high(tiny_model, init):
    """Two seeds from the same input agree more when less of the schedule is re-noised."""

    def seed_spread(strength: float) -> float:
        batch = [Params("a red dog", seed=s, steps=10, sampler="DDIM") for s in (1, 2)]
        a, b = img2img(tiny_model, batch, init, strength)
        return float(np.abs(np.asarray(a, float) - np.asarray(b, float)).mean())

    assert seed_spread(0.2) < seed_spread(1.0)


def test_resizes_to_requested_size(tiny_model, init):
    (out,) = img2img(tiny_model, [Params("x", seed=1, steps=2, width=32, height=48)], init, 0.5)
    assert out.size == (32, 48)


def test_bad_inputs(tiny_model, init, tmp_path):
    with pytest.raises(ConfigError, match=r"strength must be a finite number from 0 to 1, got 1\.5"):
        img2img(tiny_model, [Params("x", seed=1)], init, 1.5)
    with pytest.raises(ConfigError, match="image size 60x60: each side must be a multiple of 8"):
        img2img(tiny_model, [Params("x", seed=1)], init.resize((60, 60)), 0.5)
    with pytest.raises(
        ConfigError, match="image size 2056x64: each side must be a multiple of 8 from 8 to 2048"
    ):
        img2img(tiny_model, [Params("x", seed=1)], init.resize((2056, 64)), 0.5)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"bad\.png: not a readable image"):
        load_image(bad, "--image")
    with pytest.raises(DataError, match="no such file"):
        load_image(tmp_path / "missing.png", "--image")
