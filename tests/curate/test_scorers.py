"""Model scores: LAION's MLP-head shape on normalised CLIP embeddings, loaded from local folders."""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from PIL import Image
from safetensors.numpy import save_file

from t2iscope.curate.operators import OPERATORS, PIXELS, StageContext, load_all
from t2iscope.curate.scorers import MlpHead, aesthetic_scorer, watermark_scorer
from t2iscope.errors import ConfigError

load_all()
EMBED = 16
CLIP_CFG = {
    "embed_dim": EMBED,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
}


def _head(folder: Path, sizes: list[int], rng: np.random.Generator, **config: object) -> list[np.ndarray]:
    """LAION's improved-aesthetic-predictor keys: layers.0/2/4 Linear with Dropout between."""
    folder.mkdir(parents=True)
    tensors, arrays = {}, []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        w, bias = rng.normal(size=(b, a)).astype(np.float32), rng.normal(size=b).astype(np.float32)
        tensors[f"layers.{2 * i}.weight"], tensors[f"layers.{2 * i}.bias"] = w, bias
        arrays += [w, bias]
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"embed_dim": sizes[0], "clip": "clip", **config}))
    return arrays


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import open_clip
    from safetensors.torch import save_file as save_torch

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    model = open_clip.CLIP(**CLIP_CFG)
    (root / "clip").mkdir()
    save_torch(model.state_dict(), str(root / "clip" / "open_clip_model.safetensors"))
    (root / "clip" / "open_clip_config.json").write_text(json.dumps({"model_cfg": CLIP_CFG}))
    rng = np.random.default_rng(0)
    _head(root / "aesthetic", [EMBED, 8, 1], rng)
    _head(root / "watermark", [EMBED, 4, 1], rng, output="sigmoid")
    return root


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, format="PNG")
    return buf.getvalue()


def test_missing_model_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"{tmp_path}/aesthetic/config.json"):
        aesthetic_scorer(tmp_path)


def test_head_is_laion_linear_stack(tmp_path: Path) -> None:
    w1, b1, w2, b2 = _head(tmp_path / "h", [EMBED, 8, 1], np.random.default_rng(1))
    x = np.random.default_rng(2).normal(size=(5, EMBED)).astype(np.float32)
    expected = ((x @ w1.T + b1) @ w2.T + b2)[:, 0]
    np.testing.assert_allclose(MlpHead.load(tmp_path / "h", "score")(x), expected, rtol=1e-5)


def test_scorers_on_images(models: Path) -> None:
    images = [_png((220, 30, 30)), _png((30, 70, 220)), _png((220, 30, 30))]
    aes = aesthetic_scorer(models)(images)
    wm = watermark_scorer(models)(images)
    assert aes.shape == (3,) and aes[0] == pytest.approx(aes[2]) and aes[0] != pytest.approx(aes[1])
    assert ((wm > 0) & (wm < 1)).all()


def test_stage_uses_model_after_download(models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T2ISCOPE_MODELS", str(models))
    table = pa.table({"image": [_png((220, 30, 30)), _png((30, 70, 220))], "AESTHETIC_SCORE": [9.0, 9.0]})
    scores = aesthetic_scorer(models)([_png((220, 30, 30)), _png((30, 70, 220))])
    threshold = float(np.mean(scores))
    res = OPERATORS.get("aesthetic").fn(table, StageContext("shards", PIXELS), min_score=threshold)
    assert res.columns["aesthetic_score"].to_pylist() == pytest.approx(scores.tolist())
    assert list(res.keep) == [bool(s >= threshold) for s in scores]
    assert set(res.reason.drop_null().to_pylist()) == {f"aesthetic_score<{threshold:g}"}
