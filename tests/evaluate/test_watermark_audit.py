"""Watermark robustness on real photographs: the stock dwtDct behaves as its README says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from t2iscope.evaluate.audits.watermark import (
    chance_threshold,
    pick_threshold,
    readme_comparison,
    robustness_rows,
)
from t2iscope.evaluate.images import skimage_photos
from t2iscope.evaluate.tables import tidy

GRID = {"none": (0.0,), "noise": (5.0,), "rotate": (30.0,), "resize": (0.5,), "resize_restore": (0.5,)}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    images = [*skimage_photos(256, 3), ("small", skimage_photos(128, 1)[0][1])]
    return tidy(robustness_rows(images, ["dwtDct", "dwtDctFixed"], GRID, "skimage"), "watermark", "decoder")


def value(t: pd.DataFrame, method: str, metric: str, attack: str | None = None) -> pd.Series:
    sel = (t["method"] == method) & (t["metric"] == metric)
    if attack is not None:
        sel &= t["attack"] == attack
    return t[sel].iloc[0]


def test_chance_threshold_is_binomial_tail() -> None:
    t = chance_threshold(32, 0.01)
    k = round(t * 32)
    assert binom.sf(k - 1, 32, 0.5) <= 0.01 < binom.sf(k - 2, 32, 0.5)


def test_pick_threshold_respects_fpr_on_null() -> None:
    null = np.array([0.5] * 95 + [0.9] * 5)  # 5% of unmarked images decode at 0.9
    t = pick_threshold(null, 100, 0.01)
    assert t > 0.9 and (null >= t).mean() <= 0.01
    assert pick_threshold(np.array([0.5] * 100), 100, 0.01) == chance_threshold(100, 0.01)


def test_unattacked_marks_are_read_and_unmarked_are_not(table: pd.DataFrame) -> None:
    for method in ("dwtDct", "dwtDctFixed"):
        assert value(table, method, "detection_rate", "none")["value"] == 1.0
        # not 1.0: the README warns decoding is not exact even unattacked; far above chance (0.5)
        assert value(table, method, "bit_accuracy", "none")["value"] > 0.8
        fpr = value(table, method, "fpr")
        assert fpr["value"] <= 0.01 + 1e-9 and fpr["n"] == 3  # the unattacked unmarked photos (WAVES)


def test_readme_failures_reproduce(table: pd.DataFrame) -> None:
    assert value(table, "dwtDct", "detection_rate", "rotate")["value"] == 0.0
    assert value(table, "dwtDct", "detection_rate", "noise")["value"] == 1.0
    # a 50% resize leaves 128 px: too small for the decoder, counted as a decode error, not dropped
    err = value(table, "dwtDct", "decode_error", "resize")
    assert err["value"] == 1.0 and err["n"] == 3
    assert value(table, "dwtDct", "detection_rate", "resize_restore")["n"] == 3
    cmp = readme_comparison(table)
    rows = cmp[(cmp["method"] == "dwtDct")].set_index("readme_attack")
    assert rows.loc["Rotate 30 degress", "agrees"] and rows.loc["Noise", "agrees"]


def test_quality_and_skips(table: pd.DataFrame) -> None:
    stock, fixed = value(table, "dwtDct", "psnr"), value(table, "dwtDctFixed", "psnr")
    assert 30 < stock["value"] < fixed["value"]  # the corrected encoder costs less quality
    assert stock["ci_low"] <= stock["value"] <= stock["ci_high"]
    skip = table[(table["metric"] == "skipped") & (table["method"] == "dwtDct")].iloc[0]
    assert skip["value"] == 1 and "256" in skip["note"]
