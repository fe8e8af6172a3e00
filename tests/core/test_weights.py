"""The one weight loader: architecture by marker file or config, one-line errors, per-process cache."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from tiny_weights import EMBED, save_folder, write_tiny_models

from t2iscope.errors import ConfigError, DataError
from t2iscope.nets import AestheticMLP
from t2iscope.weights import (
    AESTHETIC,
    ARCHITECTURES,
    OPEN_CLIP,
    WATERMARK,
    AestheticModel,
    OpenClip,
    WatermarkModel,
    inspect_folder,
    load_model,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_models(tmp_path_factory.mktemp("models"))


@pytest.fixture
def copy(tiny: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny models, free to break."""
    return Path(shutil.copytree(tiny, tmp_path / "models"))


def _one_line_error(exc: pytest.ExceptionInfo[Exception], names: Path) -> str:
    message = str(exc.value)
    assert "\n" not in message and str(names) in message, message
    return message


def test_each_folder_gets_its_architecture(tiny: Path) -> None:
    assert isinstance(load_model(tiny / "clip"), OpenClip)
    aes = load_model(tiny / "aesthetic")
    assert isinstance(aes, AestheticModel) and aes.clip is load_model(tiny / "clip")
    assert isinstance(load_model(tiny / "watermark"), WatermarkModel)
    assert [inspect_folder(tiny / n).architecture for n in ("clip", "aesthetic", "watermark")] == [
        OPEN_CLIP,
        AESTHETIC,
        WATERMARK,
    ]


def test_every_architecture_loader_is_documented() -> None:
    for name in ARCHITECTURES:
        assert ARCHITECTURES.get(name).load.__doc__, name


def test_scores_have_the_documented_shapes(tiny: Path) -> None:
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    aes, wm = load_model(tiny / "aesthetic"), load_model(tiny / "watermark")
    assert aes.input_size == wm.input_size == 32
    assert aes.clip.embed(images).shape == (3, EMBED)
    assert torch.allclose(aes.clip.embed(images).norm(dim=-1), torch.ones(3))
    assert aes.score(images).shape == wm.score(images).shape == (3,)
    assert ((wm.score(images) >= 0) & (wm.score(images) <= 1)).all()


def test_loaded_once_per_process_and_again_after_retraining(copy: Path) -> None:
    first = load_model(copy / "watermark")
    assert load_model(copy / "watermark") is first
    assert load_model(copy / ".." / copy.name / "watermark") is first  # keyed by the resolved path
    weights = copy / "watermark" / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert load_model(copy / "watermark") is not first


def test_head_reloads_when_its_clip_changes(copy: Path) -> None:
    first = load_model(copy / "aesthetic")
    weights = copy / "clip" / "open_clip_model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    again = load_model(copy / "aesthetic")
    assert again is not first and again.clip is load_model(copy / "clip")


def test_laion_pth_state_dict_loads(tiny: Path, tmp_path: Path) -> None:
    """LAION publishes its heads as torch-saved state dicts with these keys."""
    head = AestheticMLP(EMBED)
    folder = save_folder(
        tmp_path / "laion", head, {"architecture": AESTHETIC, "clip": str(tiny / "clip")}, "head.pth"
    )
    loaded = load_model(folder).head
    for key, value in head.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_old_clip_reference_spelling_still_loads(copy: Path) -> None:
    """Heads trained before the fix say "../clip (t2iscope-tiny-clip)"; they must keep loading."""
    config = copy / "aesthetic" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "clip": "../clip (t2iscope-tiny-clip)"}))
    assert inspect_folder(copy / "aesthetic").references["clip"] == copy / "aesthetic" / ".." / "clip"


def test_not_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_model(tmp_path / "nothing")
    assert "not a model folder" in _one_line_error(exc, tmp_path / "nothing")


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"clip": "../clip"}, "no 'architecture' field; valid: diffusers-stable-diffusion, "),
        ({"architecture": "laion-mlp-v3"}, "unknown model architecture 'laion-mlp-v3'; valid: "),
        ({"architecture": AESTHETIC, "clip": "../vit-l-14"}, "field 'clip': model folder"),
        ({"architecture": AESTHETIC}, "field 'clip' must name a model folder"),
        ({"architecture": WATERMARK, "width": "32"}, "field 'width': expected a positive integer"),
        ({"architecture": WATERMARK, "mean": [0.5]}, "field 'mean': expected 3 numbers"),
    ],
)
def test_bad_config_is_one_line_naming_it(copy: Path, config: dict, expected: str) -> None:
    path = copy / "aesthetic" / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError) as exc:
        load_model(copy / "aesthetic")
    assert expected in _one_line_error(exc, path)


def test_config_that_is_not_json(copy: Path) -> None:
    (copy / "watermark" / "config.json").write_text("{architecture: cnn")
    with pytest.raises(DataError) as exc:
        load_model(copy / "watermark")
    assert "not valid JSON" in _one_line_error(exc, copy / "watermark" / "config.json")


@pytest.mark.parametrize("folder", ["aesthetic", "watermark", "clip"])
def test_missing_weights(copy: Path, folder: str) -> None:
    for f in (copy / folder).glob("*.safetensors"):
        f.unlink()
    with pytest.raises(ConfigError) as exc:
        load_model(copy / folder)
    assert "no weights" in _one_line_error(exc, copy / folder)


def test_weights_of_another_architecture(copy: Path) -> None:
    shutil.copy(copy / "watermark" / "model.safetensors", copy / "aesthetic" / "model.safetensors")
    with pytest.raises(DataError) as exc:
        load_model(copy / "aesthetic")
    message = _one_line_error(exc, copy / "aesthetic" / "model.safetensors")
    assert f"do not fit '{AESTHETIC}' (missing layers.0.bias" in message


def test_corrupt_weights(copy: Path) -> None:
    (copy / "watermark" / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(DataError) as exc:
        load_model(copy / "watermark")
    assert "cannot read weights" in _one_line_error(exc, copy / "watermark" / "model.safetensors")


def test_expect_names_the_folder_and_both_architectures(tiny: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_model(tiny / "watermark", expect=AESTHETIC)
    assert f"'{WATERMARK}' model, expected '{AESTHETIC}'" in _one_line_error(exc, tiny / "watermark")


def test_marker_files_win_over_a_transformers_config(copy: Path) -> None:
    """Hub open_clip folders also carry a transformers config.json (no 'architecture' key)."""
    (copy / "clip" / "config.json").write_text(json.dumps({"architectures": ["CLIPModel"]}))
    assert inspect_folder(copy / "clip").architecture == OPEN_CLIP


def test_broken_diffusers_folder(tmp_path: Path) -> None:
    from t2iscope.paths import models_dir

    folder = Path(shutil.copytree(models_dir() / "sd", tmp_path / "sd"))
    shutil.rmtree(folder / "unet")
    with pytest.raises(DataError) as exc:
        load_model(folder)
    assert "cannot load as a diffusers Stable Diffusion folder" in _one_line_error(exc, folder)
