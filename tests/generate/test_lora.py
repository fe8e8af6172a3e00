"""LoRA tags: A1111's parse, kohya files through diffusers/peft, hashes, no leak between prompts.

Images come from the embedded model through diffusers' own pipeline call with our conditioning, so
these checks hold whatever sampling loop txt2img uses.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from network_images import SEEDS, color_share, generate
from safetensors import safe_open
from safetensors.torch import save_file

from t2iscope.errors import ConfigError, DataError
from t2iscope.generate.extra_networks import (
    ExtraNetwork,
    LoraRequest,
    activate_loras,
    batch_networks,
    infotext_hashes,
    lora_requests,
    parse_extra_networks,
    set_loras,
)
from t2iscope.generate.text_encoding import encode_prompt_pair

FIXTURES = Path(__file__).parent / "fixtures" / "networks" / "Lora"  # A1111: models/Lora
RED = FIXTURES / "red.safetensors"
KINDS = ("ball", "cup", "car", "house", "dog", "bird")


# --- parsing --------------------------------------------------------------------------------------


def test_parse_removes_every_tag() -> None:
    text, tags = parse_extra_networks("a dog <lora:red:0.8>, <lora:b:1:0.5> grass <hypernet:x:1>")
    assert text == "a dog ,  grass "
    assert tags == [
        ExtraNetwork("lora", ("red", "0.8")),
        ExtraNetwork("lora", ("b", "1", "0.5")),
        ExtraNetwork("hypernet", ("x", "1")),
    ]


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("<lora:a>", LoraRequest("a", 1.0, 1.0)),
        ("<lora:a:0.7>", LoraRequest("a", 0.7, 0.7)),
        ("<lora:a:0.7:0.2>", LoraRequest("a", 0.7, 0.2)),
        ("<lora:a:0.7:unet=0.1>", LoraRequest("a", 0.7, 0.1)),
        ("<lora:a:te=0:1>", LoraRequest("a", 0.0, 0.0)),  # "1" is the te positional; te= wins; unet = te
        ("<lyco:a:-1e-1>", LoraRequest("a", -0.1, -0.1)),
    ],
)
def test_multipliers_as_a1111_reads_them(tag: str, expected: LoraRequest) -> None:
    assert lora_requests(parse_extra_networks(tag)[1]) == [expected]


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("<lora:a:lots>", "te multiplier must be a number, got 'lots'"),
        ("<lora:a:1:nan>", "unet multiplier must be finite"),
        ("<lora:a:1:1:8>", "dyn"),
        ("<lora:a:foo=1>", "unknown LoRA argument 'foo'"),
    ],
)
def test_bad_tags(tag: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        lora_requests(parse_extra_networks(tag)[1])


def test_unknown_kind_warns_and_is_dropped() -> None:
    with pytest.warns(UserWarning, match="unknown extra network 'hypernet'"):
        assert lora_requests(parse_extra_networks("<hypernet:x:1>")[1]) == []


def test_batch_shares_one_lora_set() -> None:
    cleaned, reqs = batch_networks(["a <lora:red:1> dog", "a cat<lora:red:1>"])
    assert cleaned == ["a  dog", "a cat"] and reqs == [LoraRequest("red", 1.0, 1.0)]
    with pytest.raises(ConfigError, match="split the batch"):
        batch_networks(["a <lora:red:1> dog", "a cat"])


# --- files, hashes, errors ------------------------------------------------------------------------


def test_fixture_is_kohya_format_and_small() -> None:
    assert RED.stat().st_size < 300_000
    with safe_open(str(RED), "pt") as f:
        keys = list(f.keys())
        meta = f.metadata()
    assert keys and all(k.startswith(("lora_unet_", "lora_te_text_model_")) for k in keys)
    assert {k.rsplit(".", 2)[-2] + "." + k.rsplit(".", 1)[-1] for k in keys if "weight" in k} == {
        "lora_down.weight",
        "lora_up.weight",
    }
    assert any(k.endswith(".alpha") for k in keys) and any(k.startswith("lora_te_") for k in keys)
    assert meta["ss_network_module"] == "networks.lora"


def test_hash_is_a1111_addnet_short_hash(tmp_path: Path) -> None:
    data = RED.read_bytes()
    header = 8 + int.from_bytes(data[:8], "little")
    expected = hashlib.sha256(data[header:]).hexdigest()[:12]
    copy = tmp_path / "red.safetensors"
    with safe_open(str(RED), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)
    save_file(tensors, str(copy), metadata={"other": "metadata"})
    from t2iscope.generate.extra_networks import resolve_loras

    (file,) = resolve_loras([LoraRequest("red", 1, 1)], FIXTURES)
    assert file.shorthash == expected
    (edited,) = resolve_loras([LoraRequest("red", 1, 1)], tmp_path)
    assert edited.shorthash == expected  # metadata is not hashed
    assert infotext_hashes([file]) == {"Lora hashes": f"red: {expected}"}


# --- on the embedded model ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded(embedded_model):
    yield embedded_model
    set_loras(embedded_model.pipe, [], None)  # the session's model leaves this module without LoRAs


PROMPTS = [f"a {k}" for k in KINDS for _ in SEEDS]


@pytest.fixture(scope="module")
def base_images(embedded) -> np.ndarray:
    set_loras(embedded.pipe, [], None)
    return generate(embedded.pipe, PROMPTS)


def test_red_lora_makes_objects_red(embedded, base_images) -> None:
    set_loras(embedded.pipe, [LoraRequest("red", 1.0, 1.0)], FIXTURES)
    try:
        tuned = generate(embedded.pipe, PROMPTS)
    finally:
        set_loras(embedded.pipe, [], None)
    base, red = color_share(base_images, "red"), color_share(tuned, "red")
    print(f"red share: base {base.mean():.3f} -> lora {red.mean():.3f}")
    assert red.mean() > base.mean() + 0.3, (base.mean(), red.mean())
    assert (red > base).mean() >= 0.75


def test_kohya_file_reaches_unet_and_text_encoder(embedded) -> None:
    with activate_loras(embedded.pipe, [LoraRequest("red", 1.0, 0.5)], FIXTURES) as files:
        adapters = embedded.pipe.get_list_adapters()
        assert [f.name for f in files] == ["red"]
        assert adapters["unet"] == adapters["text_encoder"] == [files[0].adapter]
    assert not any(embedded.pipe.get_list_adapters().values())


def test_zero_multiplier_and_next_prompt_equal_the_base_exactly(embedded) -> None:
    # Same batch shape throughout: BLAS kernels may round differently for another batch size.
    set_loras(embedded.pipe, [], None)
    base = generate(embedded.pipe, PROMPTS[:2])
    set_loras(embedded.pipe, [LoraRequest("red", 0.0, 0.0)], FIXTURES)
    assert np.array_equal(generate(embedded.pipe, PROMPTS[:2]), base)
    set_loras(embedded.pipe, [LoraRequest("red", 1.0, 1.0)], FIXTURES)
    with_lora = generate(embedded.pipe, PROMPTS[:2])
    set_loras(embedded.pipe, [], None)  # what the caller does for the next prompt, which has no tag
    assert not np.array_equal(with_lora, base)
    assert np.array_equal(generate(embedded.pipe, PROMPTS[:2]), base)


def test_text_encoder_part_changes_conditioning(embedded) -> None:
    pipe = embedded.pipe
    plain = encode_prompt_pair(pipe.tokenizer, pipe.text_encoder, "a dog", "")[0]
    set_loras(pipe, [LoraRequest("red", 1.0, 0.0)], FIXTURES)
    try:
        te_only = encode_prompt_pair(pipe.tokenizer, pipe.text_encoder, "a dog", "")[0]
    finally:
        set_loras(pipe, [], None)
    assert not torch.allclose(plain, te_only)
    assert torch.equal(plain, encode_prompt_pair(pipe.tokenizer, pipe.text_encoder, "a dog", "")[0])


def test_missing_and_bad_files(embedded, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"LoRA 'nope' not found: no nope\.safetensors under"):
        set_loras(embedded.pipe, [LoraRequest("nope", 1, 1)], FIXTURES)
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(DataError, match=r"junk\.safetensors: not a safetensors file") as info:
        set_loras(embedded.pipe, [LoraRequest("junk", 1, 1)], tmp_path)
    assert "\n" not in str(info.value)
    save_file({"foo.weight": torch.zeros(2, 2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(DataError, match=r"other\.safetensors: "):
        set_loras(embedded.pipe, [LoraRequest("other", 1, 1)], tmp_path)
    assert not any(embedded.pipe.get_list_adapters().values())
    shutil.copy(RED, tmp_path / "sub.safetensors")
    (tmp_path / "deep").mkdir()
    shutil.copy(RED, tmp_path / "deep" / "found.safetensors")
    (file,) = set_loras(embedded.pipe, [LoraRequest("found", 1, 1)], tmp_path)
    set_loras(embedded.pipe, [], None)
    assert file.path == tmp_path / "deep" / "found.safetensors"
    assert json.dumps(infotext_hashes([file]))
