"""Models load from local paths only; every wrong path is a one-line error saying what was expected."""

from __future__ import annotations

import pytest
import torch

from t2iscope.errors import ConfigError, DataError
from t2iscope.generate.models import load_model


def test_loads_a_local_diffusers_folder(tiny_model, tiny_sd_path):
    assert tiny_model.model_id == tiny_sd_path.name
    assert tiny_model.native_size == 64
    assert tiny_model.device == torch.device("cpu")
    assert tiny_model.dtype == torch.float32


def test_hub_id_is_refused_with_a_hint():
    with pytest.raises(ConfigError, match="hub ids are not supported"):
        load_model("runwayml/stable-diffusion-v1-5", device="cpu")


def test_folder_without_model_index(tmp_path):
    with pytest.raises(ConfigError, match=r"no model_index\.json"):
        load_model(tmp_path, device="cpu")


def test_unknown_file_type(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"unknown file type '.bin'"):
        load_model(path, device="cpu")


def test_broken_single_file_is_a_data_error(tmp_path, tiny_sd_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="could not load"):
        load_model(path, device="cpu", config=tiny_sd_path)


def test_single_file_needs_a_config_folder(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"x")
    with pytest.raises(ConfigError, match="model-config"):
        load_model(path, device="cpu", config=tmp_path)


def test_missing_embedded_model_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("T2ISCOPE_MODELS", str(tmp_path))
    with pytest.raises(ConfigError, match="generate train"):
        load_model(None, device="cpu")


def test_bad_device():
    with pytest.raises(ConfigError, match="device"):
        load_model(None, device="tpu")
