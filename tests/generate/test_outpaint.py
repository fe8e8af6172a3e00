"""Outpainting: the canvas grows, the original stays, the new area is painted and the seam is smooth."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from t2iscope.errors import ConfigError
from t2iscope.generate.outpaint import OutpaintOptions, extend_canvas, outpaint
from t2iscope.generate.params import Params
from t2iscope.generate.txt2img import txt2img

PARAMS = [Params("a red dog on grass", seed=2, steps=4, sampler="DPM++ 2M")]


@pytest.fixture(scope="module")
def source(tiny_model) -> Image.Image:
    (image,) = txt2img(tiny_model, [Params("a blue house", seed=4, steps=2)])
    return image


def _col_steps(arr: np.ndarray) -> np.ndarray:
    """Mean absolute difference between each pair of neighbouring columns."""
    return np.abs(np.diff(arr.astype(float), axis=1)).mean(axis=(0, 2))


def test_extends_right_and_keeps_the_original(tiny_model, source):
    opts = OutpaintOptions(right=32, mask_blur=4)
    (out,) = outpaint(tiny_model, PARAMS, source, opts)
    assert out.size == (96, 64)
    arr, src = np.asarray(out, dtype=np.int16), np.asarray(source, dtype=np.int16)
    # the original, away from the seam overlap (mask_blur px, then the blur's reach), is unchanged
    assert np.array_equal(arr[:, :48], src[:, :48])
    # the new area is painted: not the edge-stretch fill it started from
    canvas, _ = extend_canvas(source, opts, PARAMS[0].seed)
    assert np.abs(arr[:, 68:] - np.asarray(canvas, dtype=np.int16)[:, 68:]).mean() > 5
    # no hard step at the seam: within the spread of ordinary neighbouring-column differences
    steps = _col_steps(arr)
    assert steps[63] <= 3 * np.median(steps)


def test_extends_several_sides(tiny_model, source):
    (out,) = outpaint(tiny_model, PARAMS, source, OutpaintOptions(left=8, top=16, bottom=8))
    assert out.size == (72, 88)
    inner = np.asarray(out, dtype=np.int16)[16 + 16 : 16 + 48, 8 + 16 : 8 + 64]
    assert np.array_equal(inner, np.asarray(source, dtype=np.int16)[16:48, 16:64])


def test_canvas_mask_covers_new_area_and_seam(source):
    canvas, mask = extend_canvas(source, OutpaintOptions(right=16, mask_blur=4), seed=0)
    m = np.asarray(mask)
    assert canvas.size == mask.size == (80, 64)
    assert (m[:, 64:] == 255).all() and (m[:, 60:64] == 255).all() and (m[:, :60] == 0).all()


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (OutpaintOptions(), "at least one > 0"),
        (OutpaintOptions(left=-8, right=8), "left must be an integer from 0 to 2048, got -8"),
        (OutpaintOptions(right=1_000_000), "right must be an integer from 0 to 2048, got 1000000"),
        (OutpaintOptions(right=2000), "extended size 2064x64 is over 2048 pixels a side"),
        (OutpaintOptions(right=8, mask_blur=65), "mask_blur must be an integer from 0 to 64, got 65"),
        (
            OutpaintOptions(right=8, strength=float("nan")),
            "strength must be a finite number from 0 to 1, got nan",
        ),
        (OutpaintOptions(right=12), "not a multiple of 8"),
    ],
)
def test_bad_extensions(tiny_model, source, opts, message):
    with pytest.raises(ConfigError, match=message):
        outpaint(tiny_model, PARAMS, source, opts)
