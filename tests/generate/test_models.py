"""Models load from local paths only; every wrong path is a one-line error saying what was expected."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor

from t2iscope.errors import ConfigError, DataError
from t2iscope.generate.models import gpu_path, load_model
from t2iscope.generate.params import Params
from t2iscope.generate.txt2img import txt2img


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
    with pytest.raises(DataError, match=r"broken\.safetensors: not a readable checkpoint"):
        load_model(path, device="cpu", config=tiny_sd_path)


def test_single_file_config_override_must_be_a_family_or_a_folder(tmp_path):
    """A single file needs no config (tests/generate/test_single_file.py); an override that is
    neither a family nor a diffusers folder is refused before the file is read."""
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"--model-config .*expected a family \(sd1, sd2, sd2-v\)"):
        load_model(path, device="cpu", config=tmp_path)


def test_single_file_whose_kind_cannot_be_inferred_is_one_line(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    save_file({"some.other.weight": torch.zeros(2)}, str(path))
    with pytest.raises(ConfigError, match=r"model\.safetensors: not a Stable Diffusion 1\.x/2\.x checkpoint"):
        load_model(path, device="cpu")


def test_folders_and_the_embedded_model_have_no_model_hash(tiny_model):
    assert tiny_model.model_hash is None


def test_missing_embedded_model_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("T2ISCOPE_MODELS", str(tmp_path))
    with pytest.raises(ConfigError, match="generate train"):
        load_model(None, device="cpu")


def test_bad_device():
    with pytest.raises(ConfigError, match="device"):
        load_model(None, device="tpu")


def test_gpu_path_settings_keep_the_image(tiny_sd_path):
    """channels_last + SDPA (what CUDA gets, besides fp16) change memory layout, not the result."""
    params = Params("a red dog", seed=3, steps=3, cfg_scale=7.0, sampler="Euler a")
    plain = load_model(tiny_sd_path, device="cpu")
    plain.pipe.unet.set_attn_processor(AttnProcessor())
    fast = load_model(tiny_sd_path, device="cpu")
    gpu_path(fast.pipe)
    assert fast.pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    a, b = (np.asarray(txt2img(m, [params])[0], np.int16) for m in (plain, fast))
    assert np.abs(a - b).max() <= 2
