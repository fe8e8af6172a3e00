"""Model scores: LAION's MLP head on normalised CLIP embeddings and the watermark CNN, from local folders."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from PIL import Image
from tiny_weights import EMBED, write_tiny_models

from t2iscope.curate.operators import OPERATORS, PIXELS, StageContext, load_all
from t2iscope.curate.scorers import aesthetic_scorer, watermark_scorer
from t2iscope.errors import ConfigError
from t2iscope.weights import load_model

load_all()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_models(tmp_path_factory.mktemp("models"))


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, format="PNG")
    return buf.getvalue()


def test_missing_model_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"{tmp_path}/aesthetic/config.json"):
        aesthetic_scorer(tmp_path)


def test_head_is_laion_linear_stack(models: Path) -> None:
    from safetensors.torch import load_file

    state = load_file(models / "aesthetic" / "model.safetensors")
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(5, EMBED)).astype(np.float32))
    expected = x
    for i in (0, 2, 4, 6, 7):  # LAION's Linear layers; Dropout between them is off in eval
        expected = expected @ state[f"layers.{i}.weight"].T + state[f"layers.{i}.bias"]
    with torch.no_grad():
        got = load_model(models / "aesthetic").head(x)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_scorers_on_images(models: Path) -> None:
    images = [_png((220, 30, 30)), _png((30, 70, 220)), _png((220, 30, 30))]
    aes = aesthetic_scorer(models)(images)
    wm = watermark_scorer(models)(images)
    assert aes.shape == (3,) and aes[0] == pytest.approx(aes[2]) and aes[0] != pytest.approx(aes[1])
    assert ((wm > 0) & (wm < 1)).all()
    assert aes.dtype == wm.dtype == np.float32


def test_undecodable_images_score_nan_and_are_dropped(models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T2ISCOPE_MODELS", str(models))
    images = [_png((220, 30, 30)), b"not an image", None]
    scores = watermark_scorer(models)(images)
    assert np.isfinite(scores[0]) and np.isnan(scores[1:]).all()
    res = OPERATORS.get("watermark").fn(
        pa.table({"image": images}), StageContext("shards", PIXELS), source="model"
    )
    assert list(res.keep) == [bool(scores[0] < 0.8), False, False]
    assert res.reason.to_pylist()[1:] == ["watermark_score_missing"] * 2


def test_stage_uses_model_after_download(models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T2ISCOPE_MODELS", str(models))
    table = pa.table({"image": [_png((220, 30, 30)), _png((30, 70, 220))], "AESTHETIC_SCORE": [9.0, 9.0]})
    scores = aesthetic_scorer(models)([_png((220, 30, 30)), _png((30, 70, 220))])
    threshold = float(np.mean(scores))
    res = OPERATORS.get("aesthetic").fn(table, StageContext("shards", PIXELS), min_score=threshold)
    assert res.columns["aesthetic_score"].to_pylist() == pytest.approx(scores.tolist())
    assert list(res.keep) == [bool(s >= threshold) for s in scores]
    assert set(res.reason.drop_null().to_pylist()) == {f"aesthetic_score<{threshold:g}"}


def test_batches_give_the_same_scores(models: Path) -> None:
    """Batching is an implementation detail: one image at a time gives the same numbers."""
    from t2iscope.curate.scorers import ImageScorer

    rng = np.random.default_rng(0)
    images = [_png(tuple(int(v) for v in rng.integers(0, 255, 3))) for _ in range(7)]
    model = load_model(models / "aesthetic")
    together = ImageScorer(model, batch=4)(images)
    alone = np.concatenate([ImageScorer(model, batch=1)([b]) for b in images])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)
