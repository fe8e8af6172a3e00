"""Rendering: deterministic 64x64 scenes whose kind, color, culture and legs can be read back."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import ImageFilter
from scipy import ndimage

from t2iscope.curate.world import spec
from t2iscope.curate.world.render import DARK_MAX, render_scene

CLEAN = {"blur": 0.0, "noise": 0.0, "low_contrast": 0.0, "blockiness": 0.0, "tiny": 0.0}


def scene(**kw: object) -> dict:
    row = {
        "key": 12345,
        "kind": "dog",
        "color": "red",
        "background": "grass",
        "culture": None,
        "legs": 4,
        "legs_expected": 4,
        "watermark": False,
        "unsafe": False,
        **CLEAN,
    }
    row.update(kw)
    return row


def count_legs(img) -> int:
    dark = np.asarray(img).max(axis=2) < DARK_MAX
    return ndimage.label(dark, structure=np.ones((3, 3)))[1]


def test_size_mode_and_determinism() -> None:
    a, b = render_scene(scene()), render_scene(scene())
    assert a.size == (spec.IMAGE_SIZE, spec.IMAGE_SIZE) and a.mode == "RGB"
    assert a.tobytes() == b.tobytes()
    assert render_scene(scene(key=99)).tobytes() != a.tobytes()  # the key seeds the jitter


@pytest.mark.parametrize("kind", [k for k in spec.KINDS if spec.KINDS[k] > 0])
@pytest.mark.parametrize("legs_delta", [-1, 0, 1, 2])
def test_legs_are_countable_dark_components(kind: str, legs_delta: int) -> None:
    expected = spec.KINDS[kind]
    legs = max(1, expected + legs_delta)
    for key in range(12):
        for tiny in (0.0, 0.5):
            row = scene(kind=kind, legs=legs, legs_expected=expected, key=key, tiny=tiny, culture="western")
            assert count_legs(render_scene(row)) == legs, (kind, legs, key, tiny)


@pytest.mark.parametrize("kind", ["ball", "cup", "house"])
def test_legless_kinds_have_no_dark_pixels(kind: str) -> None:
    assert count_legs(render_scene(scene(kind=kind, legs=0, legs_expected=0, culture="western"))) == 0


@pytest.mark.parametrize("color", list(spec.COLORS))
def test_object_color_is_the_dominant_saturated_color(color: str) -> None:
    arr = np.asarray(render_scene(scene(kind="ball", color=color, legs=0))).astype(int)
    saturated = arr.max(axis=2) - arr.min(axis=2) > 100
    assert saturated.sum() > 200
    palette = np.array(list(spec.COLORS.values()))
    nearest = np.argmin(((arr[saturated][:, None, :] - palette[None]) ** 2).sum(-1), axis=1)
    assert np.bincount(nearest, minlength=len(palette)).argmax() == list(spec.COLORS).index(color)


@pytest.mark.parametrize("kind", spec.CULTURE_KINDS)
def test_cultures_render_differently(kind: str) -> None:
    images = [
        np.asarray(render_scene(scene(kind=kind, culture=c, legs=2 if kind == "person" else 0)))
        for c in spec.CULTURES
    ]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert (images[i] != images[j]).any(axis=2).sum() > 20


def test_kinds_render_differently() -> None:
    shapes = {}
    for kind, legs in spec.KINDS.items():
        arr = np.asarray(render_scene(scene(kind=kind, legs=legs, legs_expected=legs, culture="western")))
        shapes[kind] = (arr.max(axis=2) - arr.min(axis=2)) > 100
    kinds = list(shapes)
    for i, a in enumerate(kinds):
        for b in kinds[i + 1 :]:
            assert (shapes[a] ^ shapes[b]).sum() > 40, (a, b)


def test_watermark_and_hazard_frame_change_the_image() -> None:
    clean = np.asarray(render_scene(scene())).astype(int)
    marked = np.asarray(render_scene(scene(watermark=True))).astype(int)
    assert (np.abs(clean - marked).sum(axis=2) > 30).sum() > 100
    unsafe = np.asarray(render_scene(scene(unsafe=True))).astype(int)
    border = np.ones((64, 64), bool)
    border[6:-6, 6:-6] = False
    assert (np.abs(clean - unsafe).sum(axis=2) > 60)[border].mean() > 0.5


def test_degradations_lower_detail() -> None:
    def detail(img) -> float:
        gray = np.asarray(img.convert("L"), dtype=float)
        return float(np.abs(np.diff(gray, axis=1)).mean())

    def spread(img) -> float:
        return float(np.asarray(img.convert("L"), dtype=float).std())

    clean = render_scene(scene())
    assert detail(render_scene(scene(blur=1.0))) < 0.8 * detail(clean)
    assert spread(render_scene(scene(low_contrast=1.0))) < 0.6 * spread(clean)
    noisy = render_scene(scene(noise=1.0))
    assert detail(noisy.filter(ImageFilter.MedianFilter(3))) < detail(noisy)
    assert render_scene(scene(blockiness=1.0)).tobytes() != clean.tobytes()
    tiny = np.asarray(render_scene(scene(kind="ball", legs=0, tiny=1.0))).astype(int)
    big = np.asarray(render_scene(scene(kind="ball", legs=0))).astype(int)
    sat = lambda a: ((a.max(axis=2) - a.min(axis=2)) > 100).sum()  # noqa: E731
    assert sat(tiny) < 0.5 * sat(big)
