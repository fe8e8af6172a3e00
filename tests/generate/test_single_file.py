"""Single-file checkpoints as A1111 users have them: no --model-config, offline, with A1111's model hash.

Checkpoints here are randomly initialised diffusers components written back in the original LDM
key layout (``model.diffusion_model.*``, ``first_stage_model.*``, ``cond_stage_model.transformer.*``
for SD 1.x, ``cond_stage_model.model.*`` for SD 2.x): small ones for every run, a full SD 1.5
sized one in a ``slow`` test. They load through exactly the code a real checkpoint does.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel

from t2iscope.errors import ConfigError, DataError
from t2iscope.generate import checkpoints
from t2iscope.generate.models import load_model
from t2iscope.generate.params import Params
from t2iscope.generate.txt2img import txt2img

# Dimensions of the small checkpoints: LDM's 32-group norms need channels in multiples of 32.
SMALL = {
    "unet": {
        "block_out_channels": [32, 64],
        "layers_per_block": 1,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "cross_attention_dim": 64,
    },
    "vae": {"block_out_channels": [32, 32, 32, 32], "layers_per_block": 1},
    "text_encoder": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2},
}


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test writes the hash cache and config folders into one session-private cache folder."""
    root = tmp_path_factory.getbasetemp() / "t2iscope-cache"
    monkeypatch.setenv("T2ISCOPE_CACHE", str(root))
    return root


def random_components(family: str, small: bool = True, seed: int = 0) -> tuple[Any, Any, Any]:
    """(unet, vae, text encoder) of ``family``'s shipped configs (``SMALL`` dimensions when small)."""
    configs = checkpoints.shipped_configs(family)
    if small:
        for component, values in SMALL.items():
            configs[component].update(values)
        heads = 8 if family == "sd1" else [1, 1]
        configs["unet"]["attention_head_dim"] = heads
        configs["text_encoder"]["num_attention_heads"] = 1
    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_config(configs["unet"])
    vae = AutoencoderKL.from_config(configs["vae"])
    text = CLIPTextModel(CLIPTextConfig(**configs["text_encoder"]))
    return unet, vae, text


def write_checkpoint(
    path: Path, family: str, small: bool = True, dtype: torch.dtype | None = None
) -> tuple[Any, Any, Any]:
    parts = random_components(family, small)
    save_file(checkpoints.ldm_state_dict(*parts, family, dtype=dtype), str(path))
    return parts


@pytest.fixture(scope="module")
def sd1_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[Any, Any, Any]]:
    path = tmp_path_factory.mktemp("ckpt") / "v1-5-small-emaonly.safetensors"
    return path, write_checkpoint(path, "sd1")


@pytest.fixture(scope="module")
def sd2_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[Any, Any, Any]]:
    path = tmp_path_factory.mktemp("ckpt") / "v2-1-small.safetensors"
    return path, write_checkpoint(path, "sd2")


class LightningCallback:
    """What Lightning leaves in old .ckpt files: not a tensor, so only unrestricted unpickling reads it."""


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k].float(), sb[k].float()), k


def test_sd1_file_loads_and_generates_without_a_config(sd1_file):
    path, (unet, vae, text) = sd1_file
    model = load_model(path, device="cpu")
    assert model.model_id == "v1-5-small-emaonly"
    assert model.model_hash == hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    pipe = model.pipe
    assert pipe.scheduler.config.prediction_type == "epsilon"
    assert pipe.tokenizer.pad_token == "<|endoftext|>"
    for loaded, original in ((pipe.unet, unet), (pipe.vae, vae), (pipe.text_encoder, text)):
        _same_weights(loaded, original)
    image = txt2img(model, [Params("a red dog", seed=1, steps=2, width=64, height=64)])[0]
    assert image.size == (64, 64)
    assert np.asarray(image).std() > 0


def test_sd2_file_is_detected_as_sd2(sd2_file):
    path, (unet, vae, text) = sd2_file
    assert checkpoints.detect(checkpoints.read_state_dict(path)) == "sd2"
    loaded = checkpoints.load_pipeline(path, family="sd2")
    assert loaded.family == "sd2"
    pipe = loaded.pipe
    assert pipe.unet.config.use_linear_projection
    assert pipe.unet.config.cross_attention_dim == 64
    assert pipe.tokenizer.pad_token == "!"
    assert pipe.tokenizer("!").input_ids[1] == 0  # OpenCLIP pads with id 0
    for loaded_part, original in ((pipe.unet, unet), (pipe.vae, vae), (pipe.text_encoder, text)):
        _same_weights(loaded_part, original)
    v = checkpoints.load_pipeline(path, family="sd2-v").pipe
    assert v.scheduler.config.prediction_type == "v_prediction"
    assert v.unet.config.sample_size == 96


def test_sd2_without_override_runs_a1111s_v_test(sd2_file):
    """On random weights A1111's v-test may say either; the family follows it and the configs agree."""
    path, _ = sd2_file
    loaded = checkpoints.load_pipeline(path)
    assert loaded.family in ("sd2", "sd2-v")
    expected = "v_prediction" if loaded.family == "sd2-v" else "epsilon"
    assert loaded.pipe.scheduler.config.prediction_type == expected
    assert loaded.pipe.unet.config.sample_size == (96 if loaded.family == "sd2-v" else 64)


def test_model_config_family_override_through_load_model(sd2_file):
    model = load_model(sd2_file[0], device="cpu", config="sd2-v")
    assert model.pipe.scheduler.config.prediction_type == "v_prediction"
    assert model.native_size == 768


def test_v_test_follows_a1111s_rule():
    class Fake(torch.nn.Module):
        def __init__(self, shift: float) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))
            self.shift = shift
            self.config = type("C", (), {"cross_attention_dim": 8, "in_channels": 4})()

        def forward(self, x, t, encoder_hidden_states):
            assert t.tolist() == [999] and x.shape == (1, 4, 8, 8)
            assert encoder_hidden_states.shape == (1, 2, 8)
            return type("O", (), {"sample": x + self.shift})()

    assert checkpoints.is_v_prediction(Fake(-1.5))
    assert not checkpoints.is_v_prediction(Fake(0.0))


def _layout(family: str) -> dict[str, tuple[int, ...]]:
    return checkpoints.shapes_of(checkpoints.ldm_state_dict(*random_components(family), family))


def test_detect_by_key_layout():
    assert checkpoints.detect(_layout("sd1")) == "sd1"
    assert checkpoints.detect(_layout("sd2")) == "sd2"


@pytest.mark.parametrize(("family", "layout"), [("sd1", "sd1"), ("sd2", "sd2"), ("sd2-v", "sd2")])
def test_full_size_layouts_infer_the_shipped_configs(family, layout):
    """Real SD 1.5 / 2.x shapes (components built on the meta device: shapes, no memory) are
    detected and give back exactly the shipped configs: nothing is read from shapes wrongly."""
    with torch.device("meta"):
        parts = random_components(family, small=False)
    shapes = checkpoints.shapes_of(checkpoints.ldm_state_dict(*parts, family))
    assert shapes["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"] == (
        320,
        768 if family == "sd1" else 1024,
    )
    assert checkpoints.detect(shapes) == layout
    assert checkpoints.component_configs(family, shapes) == checkpoints.shipped_configs(family)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: {**s, "conditioner.embedders.1.model.ln_final.weight": (1280,)},
            r"^x\.safetensors: an SDXL checkpoint; SDXL is not supported yet",
        ),
        (
            lambda s: {**s, "model.diffusion_model.input_blocks.0.0.weight": (320, 9, 3, 3)},
            "inpainting model",
        ),
        (
            lambda s: {k: v for k, v in s.items() if not k.startswith("cond_stage_model.")},
            "no text encoder",
        ),
        (
            lambda s: {k: v for k, v in s.items() if not k.startswith("first_stage_model.")},
            "no VAE",
        ),
        (lambda s: {"down_blocks.0.resnets.0.conv1.weight": (1,)}, "diffusers' own layout"),
    ],
)
def test_detect_refuses_other_layouts_in_one_line(change, message):
    with pytest.raises(ConfigError, match=message) as info:
        checkpoints.detect(change(_layout("sd1")), "x.safetensors")
    assert "\n" not in str(info.value)


def test_sdxl_file_is_refused_by_load_model(tmp_path):
    path = tmp_path / "sd_xl_base_1.0.safetensors"
    save_file({"conditioner.embedders.1.model.ln_final.weight": torch.zeros(4)}, str(path))
    with pytest.raises(ConfigError, match="SDXL is not supported yet"):
        load_model(path, device="cpu")


def test_family_override_must_fit_the_layout(sd1_file):
    with pytest.raises(ConfigError, match="key layout of sd1, not of sd2"):
        load_model(sd1_file[0], device="cpu", config="sd2")


def test_model_hash_is_a1111s_short_hash_and_cached(tmp_path, _cache):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x00" * 3_000_000 + b"tail")
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert checkpoints.model_hash(path) == expected[:10]
    cache = json.loads((_cache / "hashes.json").read_text())
    entry = cache["sha256"][str(path.resolve())]
    assert entry == {"size": path.stat().st_size, "mtime_ns": path.stat().st_mtime_ns, "sha256": expected}
    # Served from the cache: a planted value with the same (path, size, mtime) is what comes back.
    entry["sha256"] = "ab" * 32
    (_cache / "hashes.json").write_text(json.dumps(cache))
    assert checkpoints.model_hash(path) == "ab" * 5
    # A changed file (new mtime) is hashed again.
    path.write_bytes(b"other")
    assert checkpoints.model_hash(path) == hashlib.sha256(b"other").hexdigest()[:10]


def test_broken_file_is_one_data_error_line_naming_it(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match=r"broken\.safetensors: not a readable checkpoint") as info:
        load_model(path, device="cpu")
    assert "\n" not in str(info.value)


def test_ckpt_pickle_is_read_safely_and_unsafe_ones_refused(tmp_path, sd1_file):
    state = checkpoints.read_state_dict(sd1_file[0])
    good = tmp_path / "model.ckpt"
    torch.save({"state_dict": state, "global_step": 1}, good)
    assert checkpoints.detect(checkpoints.read_state_dict(good)) == "sd1"

    bad = tmp_path / "unsafe.ckpt"
    torch.save({"state_dict": state, "callbacks": LightningCallback()}, bad)
    with pytest.raises(DataError, match=r"unsafe\.ckpt: .*unsafe unpickling"):
        load_model(bad, device="cpu")


def test_a_wrong_config_folder_is_a_data_error(sd1_file, tiny_sd_path):
    """--model-config FOLDER still overrides; weights that do not fit it are one line naming the file."""
    with pytest.raises(DataError, match=r"v1-5-small-emaonly\.safetensors: U-Net weights do not fit"):
        load_model(sd1_file[0], device="cpu", config=tiny_sd_path)


@pytest.mark.slow
def test_full_size_sd15_checkpoint(tmp_path, capsys):
    """A random SD 1.5-sized checkpoint (fp16 LDM layout, ~2 GB) loads through the same path, and
    the configs inferred from its shapes are exactly the shipped sd1 ones."""
    path = tmp_path / "v1-5-random-emaonly.safetensors"
    write_checkpoint(path, "sd1", small=False, dtype=torch.float16)
    state = checkpoints.read_state_dict(path)
    assert checkpoints.detect(state) == "sd1"
    assert checkpoints.component_configs("sd1", state) == checkpoints.shipped_configs("sd1")
    del state
    start = time.perf_counter()
    model = load_model(path, device="cpu")
    loaded = time.perf_counter() - start
    assert model.native_size == 512
    assert sum(p.numel() for p in model.pipe.unet.parameters()) == 859_520_964
    start = time.perf_counter()
    model_hash = checkpoints.model_hash(path)
    cached = time.perf_counter() - start
    with capsys.disabled():
        print(
            f"\nSD 1.5 random checkpoint: {path.stat().st_size / 1e9:.2f} GB, load+hash {loaded:.1f} s, "
            f"cached hash {cached * 1000:.1f} ms"
        )
    assert model_hash == model.model_hash
    image = txt2img(model, [Params("a red dog", seed=1, steps=1, width=64, height=64)])[0]
    assert image.size == (64, 64)
