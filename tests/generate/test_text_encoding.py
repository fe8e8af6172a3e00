"""Weighted, chunked prompt encoding on a tiny random CLIPTextModel with CLIP's real tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import CLIPTextModel, CLIPTokenizer

from t2iscope.errors import ConfigError
from t2iscope.generate.text_encoding import apply_emphasis, encode_prompt, encode_prompt_pair, prompt_chunks
from t2iscope.generate.tokenizer_files import write_clip_tokenizer_files


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip_tokenizer_files(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir: Path) -> CLIPTokenizer:
    return CLIPTokenizer.from_pretrained(tokenizer_dir)


@pytest.fixture(scope="module")
def open_clip_tokenizer():
    import open_clip

    return open_clip.get_tokenizer("ViT-B-32")


def _plain(tokenizer: CLIPTokenizer, encoder: CLIPTextModel, prompt: str) -> torch.Tensor:
    """What diffusers' StableDiffusionPipeline.encode_prompt computes for a prompt."""
    ids = tokenizer(prompt, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    return encoder(ids.input_ids).last_hidden_state


# --- tokenizer files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "a photo of a cat",
        "A (((house:1.3)) [on] a hill, sun, (((sky))).",
        "Ünïcödé café 東京 42x 3.14 don't stop",
        "red, green; blue! #hashtag @user",
    ],
)
def test_token_ids_match_open_clip(tokenizer: CLIPTokenizer, open_clip_tokenizer, text: str) -> None:
    ours = tokenizer(text).input_ids
    theirs = open_clip_tokenizer([text])[0].tolist()
    assert ours == theirs[: len(ours)]
    assert set(theirs[len(ours) :]) <= {0}  # open_clip pads with 0


def test_tokenizer_files_shape(tokenizer: CLIPTokenizer, tokenizer_dir: Path) -> None:
    assert len(tokenizer) == 49408
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (49406, 49407, 49407)
    assert tokenizer.model_max_length == 77
    assert {p.name for p in tokenizer_dir.iterdir()} >= {"vocab.json", "merges.txt", "tokenizer_config.json"}


# --- encoding ------------------------------------------------------------------------------------


@torch.no_grad()
def test_unweighted_short_prompt_equals_diffusers(tokenizer, encoder) -> None:
    prompt = "a red cat sitting on a green hill at sunset"
    z = encode_prompt(tokenizer, encoder, prompt)
    assert z.shape == (1, 77, 32)
    assert torch.equal(z, _plain(tokenizer, encoder, prompt))


@torch.no_grad()
def test_sd2_style_pad_token_equals_diffusers(tokenizer_dir: Path, encoder) -> None:
    """SD 2.x pads with "!" after the end token; chunks must pad the same way."""
    sd2_tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir, pad_token="!")
    assert sd2_tokenizer.pad_token_id != sd2_tokenizer.eos_token_id
    prompt = "a small blue house"
    chunk = prompt_chunks(sd2_tokenizer, prompt)[0]
    assert chunk.tokens[-1] == sd2_tokenizer.pad_token_id
    assert torch.equal(encode_prompt(sd2_tokenizer, encoder, prompt), _plain(sd2_tokenizer, encoder, prompt))


@torch.no_grad()
def test_clip_skip_uses_penultimate_layer_with_final_norm(tokenizer, encoder) -> None:
    prompt = "a dog"
    ids = tokenizer(prompt, padding="max_length", max_length=77, return_tensors="pt").input_ids
    hidden = encoder(ids, output_hidden_states=True).hidden_states[-2]
    expected = getattr(encoder, "text_model", encoder).final_layer_norm(hidden)
    assert torch.allclose(encode_prompt(tokenizer, encoder, prompt, clip_skip=2), expected)
    assert not torch.allclose(expected, _plain(tokenizer, encoder, prompt))


@torch.no_grad()
def test_weight_scales_its_tokens_then_mean_is_restored(tokenizer, encoder) -> None:
    plain = encode_prompt(tokenizer, encoder, "a red cat")
    weighted = encode_prompt(tokenizer, encoder, "a (red:1.5) cat")
    assert torch.allclose(weighted.mean(), plain.mean(), atol=1e-6)
    ratio = weighted / plain  # token 0 is BOS, then "a", "red", "cat"
    factor = ratio[0, 0, 0]
    assert torch.allclose(ratio[0, 2], 1.5 * factor * torch.ones(32), rtol=1e-4)
    others = torch.cat([ratio[0, :2], ratio[0, 3:]])
    assert torch.allclose(others, factor * torch.ones_like(others), rtol=1e-4)
    assert not torch.isclose(factor, torch.tensor(1.0))


def test_long_prompt_is_chunked_without_losing_tokens(tokenizer) -> None:
    prompt = " ".join(["cat dog bird"] * 40)  # 120 single-token words
    chunks = prompt_chunks(tokenizer, prompt, comma_backtrack=0)
    assert len(chunks) == 2
    for chunk in chunks:
        assert len(chunk.tokens) == 77 and len(chunk.weights) == 77
        assert chunk.tokens[0] == tokenizer.bos_token_id
    body = [t for c in chunks for t in c.tokens[1:] if t != tokenizer.eos_token_id]
    assert body == tokenizer(prompt, add_special_tokens=False).input_ids


@torch.no_grad()
def test_long_prompt_shape_and_chunks_are_independent(tokenizer, encoder) -> None:
    prompt = " ".join(["cat"] * 100)
    z = encode_prompt(tokenizer, encoder, prompt)
    assert z.shape == (1, 154, 32)
    assert torch.equal(z[:, :77], _plain(tokenizer, encoder, " ".join(["cat"] * 75)))
    assert torch.equal(z[:, 77:], _plain(tokenizer, encoder, " ".join(["cat"] * 25)))


@torch.no_grad()
def test_break_starts_a_new_chunk(tokenizer, encoder) -> None:
    z = encode_prompt(tokenizer, encoder, "a red cat BREAK a blue dog")
    assert z.shape == (1, 154, 32)
    assert torch.equal(z[:, :77], _plain(tokenizer, encoder, "a red cat"))
    assert torch.equal(z[:, 77:], _plain(tokenizer, encoder, "a blue dog"))


def test_comma_backtracking_moves_the_last_phrase(tokenizer) -> None:
    comma = tokenizer.convert_tokens_to_ids(",</w>")
    prompt = " ".join(["cat"] * 70) + ", " + " ".join(["dog"] * 10)
    moved = prompt_chunks(tokenizer, prompt)
    assert moved[0].tokens[71] == comma and set(moved[0].tokens[72:]) == {tokenizer.eos_token_id}
    assert moved[1].tokens[1:11] == tuple(tokenizer.convert_tokens_to_ids(["dog</w>"] * 10))
    kept = prompt_chunks(tokenizer, prompt, comma_backtrack=0)
    assert kept[0].tokens[72:76] == tuple(tokenizer.convert_tokens_to_ids(["dog</w>"] * 4))


@torch.no_grad()
def test_pair_pads_the_shorter_with_empty_chunks(tokenizer, encoder) -> None:
    prompt = " ".join(["cat"] * 100)
    cond, uncond = encode_prompt_pair(tokenizer, encoder, prompt, "blurry")
    assert cond.shape == uncond.shape == (1, 154, 32)
    assert torch.equal(cond, encode_prompt(tokenizer, encoder, prompt))
    assert torch.equal(uncond[:, :77], encode_prompt(tokenizer, encoder, "blurry"))
    # The padding chunk is encoded in a batch of 4 here and alone there: on some CPUs (AVX-512 BLAS
    # kernels) the batched matmul differs in the last bits, so equality is to float32 precision.
    torch.testing.assert_close(uncond[:, 77:], encode_prompt(tokenizer, encoder, ""), rtol=0, atol=1e-5)


@torch.no_grad()
def test_dtype_and_device_are_applied(tokenizer, encoder) -> None:
    z = encode_prompt(tokenizer, encoder, "a cat", device="cpu", dtype=torch.float64)
    assert z.dtype == torch.float64 and z.device.type == "cpu"


# --- clip skip and emphasis modes (A1111's settings) -----------------------------------------------


@torch.no_grad()
def test_clip_skip_one_is_the_last_layer_and_range_is_checked(tokenizer, encoder) -> None:
    prompt = "a dog"
    assert torch.equal(
        encode_prompt(tokenizer, encoder, prompt, clip_skip=1), _plain(tokenizer, encoder, prompt)
    )
    assert not torch.allclose(
        encode_prompt(tokenizer, encoder, prompt, clip_skip=2), encode_prompt(tokenizer, encoder, prompt)
    )
    for bad in (0, 3, 1.0, True):  # the encoder has 2 layers
        with pytest.raises(ConfigError, match=r"clip_skip must be an integer from 1 to 2"):
            encode_prompt(tokenizer, encoder, prompt, clip_skip=bad)


@torch.no_grad()
def test_no_norm_multiplies_without_restoring_the_mean(tokenizer, encoder) -> None:
    plain = encode_prompt(tokenizer, encoder, "a red cat")
    weights = torch.ones(77)
    weights[2] = 1.5
    expected = plain[0] * weights[:, None]
    got = encode_prompt(tokenizer, encoder, "a (red:1.5) cat", emphasis="No norm")[0]
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    original = encode_prompt(tokenizer, encoder, "a (red:1.5) cat", emphasis="Original")[0]
    torch.testing.assert_close(original, expected * (plain.mean() / expected.mean()))
    assert not torch.allclose(original, got)
    z = torch.randn(77, 8)
    w = torch.rand(77) + 0.5
    assert torch.equal(apply_emphasis(z, w, "No norm"), z * w[:, None])
    assert torch.allclose(apply_emphasis(z, w, "Original").mean(), z.mean(), atol=1e-6)
    assert torch.equal(apply_emphasis(z, w, "Ignore"), z) and torch.equal(apply_emphasis(z, w, "None"), z)


@torch.no_grad()
def test_ignore_parses_brackets_and_none_reads_them_literally(tokenizer, encoder) -> None:
    assert torch.equal(
        encode_prompt(tokenizer, encoder, "a ((red:1.5)) [cat]", emphasis="Ignore"),
        encode_prompt(tokenizer, encoder, "a red cat"),
    )
    (literal,) = prompt_chunks(tokenizer, "a (red:1.5) cat BREAK dog", emphasis="None")
    body = [t for t in literal.tokens[1:] if t != tokenizer.eos_token_id]
    assert body == tokenizer("a (red:1.5) cat BREAK dog", add_special_tokens=False).input_ids
    assert set(literal.weights) == {1.0}
    assert len(prompt_chunks(tokenizer, "a BREAK b", emphasis="Ignore")) == 2
    with pytest.raises(ConfigError, match="emphasis must be one of Original, No norm, Ignore, None; got 'x'"):
        encode_prompt(tokenizer, encoder, "a", emphasis="x")


@torch.no_grad()
def test_pair_takes_clip_skip_and_emphasis(tokenizer, encoder) -> None:
    cond, uncond = encode_prompt_pair(
        tokenizer, encoder, "a (red:1.4) cat", "dog", clip_skip=2, emphasis="No norm"
    )
    assert torch.equal(
        cond, encode_prompt(tokenizer, encoder, "a (red:1.4) cat", clip_skip=2, emphasis="No norm")
    )
    assert torch.equal(uncond, encode_prompt(tokenizer, encoder, "dog", clip_skip=2))
