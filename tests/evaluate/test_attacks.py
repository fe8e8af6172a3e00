"""Every registered attack honours the contract: image in, RGB image out, deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from t2iscope.errors import ConfigError
from t2iscope.evaluate.attacks import ATTACKS, DEFAULT_GRID, grid_pairs


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))


@pytest.mark.parametrize("name", ATTACKS.names())
def test_attack_contract(name: str, photo: Image.Image) -> None:
    strength = DEFAULT_GRID[name][-1]
    out = ATTACKS.get(name)(photo, strength)
    again = ATTACKS.get(name)(photo, strength)
    assert out.mode == "RGB"
    assert np.array_equal(np.asarray(out), np.asarray(again))
    assert out is not photo
    if name != "none":
        same_size = out.size == photo.size
        assert not same_size or not np.array_equal(np.asarray(out), np.asarray(photo))


def test_geometry(photo: Image.Image) -> None:
    assert ATTACKS.get("resize")(photo, 0.5).size == (64, 48)
    assert ATTACKS.get("resize_restore")(photo, 0.5).size == photo.size
    assert ATTACKS.get("crop")(photo, 0.5).size == (64, 48)
    assert ATTACKS.get("rotate")(photo, 30).size == photo.size


def test_strength_orders_damage(photo: Image.Image) -> None:
    base = np.asarray(photo, dtype=float)

    def err(name: str, s: float) -> float:
        return float(np.abs(np.asarray(ATTACKS.get(name)(photo, s), dtype=float) - base).mean())

    assert err("jpeg", 50) > err("jpeg", 95)
    assert err("noise", 20) > err("noise", 2)
    assert err("blur", 2) > err("blur", 0.5)


def test_grid_rejects_unknown_attack() -> None:
    assert ("jpeg", 50.0) in grid_pairs(DEFAULT_GRID)
    with pytest.raises(ConfigError, match="unknown attack 'sharpen'"):
        grid_pairs({"sharpen": (1,)})
