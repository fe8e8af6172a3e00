"""Textual inversion: A1111 embedding files by name in prompts, on a tiny encoder and the embedded model."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from network_images import color_share, generate
from transformers import CLIPTokenizer

from t2iscope.errors import ConfigError, DataError
from t2iscope.generate.embeddings import Embeddings, load_embeddings, save_embedding
from t2iscope.generate.extra_networks import infotext_hashes
from t2iscope.generate.text_encoding import encode_prompt, encode_prompt_pair, prompt_chunks, used_embeddings
from t2iscope.generate.tokenizer_files import write_clip_tokenizer_files

FIXTURES = Path(__file__).parent / "fixtures" / "networks" / "embeddings"  # A1111: embeddings/


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> CLIPTokenizer:
    return CLIPTokenizer.from_pretrained(write_clip_tokenizer_files(tmp_path_factory.mktemp("tokenizer")))


def _with_inputs_embeds(
    tokenizer, encoder, words: list[str], replace: dict[int, torch.Tensor]
) -> torch.Tensor:
    """Reference: token embeddings of BOS + words + EOS + pad, ``replace`` rows swapped, then the encoder."""
    ids = tokenizer(" ".join(words), padding="max_length", max_length=77, return_tensors="pt").input_ids
    captured = {}

    def hook(_m, _a, out):
        out = out.clone()
        for at, vec in replace.items():
            out[0, at] = vec
        captured["x"] = out
        return out

    handle = encoder.get_input_embeddings().register_forward_hook(hook)
    try:
        return encoder(ids).last_hidden_state
    finally:
        handle.remove()


@torch.no_grad()
def test_embedding_vectors_replace_the_name_tokens(tokenizer, encoder) -> None:
    vec = torch.randn(2, 32)
    emb = Embeddings.from_tensors(tokenizer, {"my-style": vec})
    name_tokens = len(tokenizer("my-style", add_special_tokens=False).input_ids)
    assert name_tokens > 1  # a multi-token name is found as one word
    (chunk,) = prompt_chunks(tokenizer, "a my-style cat", embeddings=emb)
    assert [at for at, _ in chunk.fixes] == [2]
    assert chunk.tokens[:5] == (tokenizer.bos_token_id, tokenizer.convert_tokens_to_ids("a</w>"), 0, 0,
                                tokenizer.convert_tokens_to_ids("cat</w>"))  # fmt: skip
    z = encode_prompt(tokenizer, encoder, "a my-style cat", embeddings=emb)
    # Reference: the same window with "x x" in the embedding's place and its vectors swapped in.
    ref = _with_inputs_embeds(tokenizer, encoder, ["a", "! !", "cat"], {2: vec[0], 3: vec[1]})
    torch.testing.assert_close(z, ref)
    assert not torch.allclose(z, encode_prompt(tokenizer, encoder, "a my-style cat"))


@torch.no_grad()
def test_weight_applies_to_embedding_positions(tokenizer, encoder) -> None:
    emb = Embeddings.from_tensors(tokenizer, {"mystyle": torch.randn(3, 32)})
    (chunk,) = prompt_chunks(tokenizer, "a (mystyle:1.3) cat", embeddings=emb)
    assert chunk.weights[2:5] == (1.3, 1.3, 1.3) and chunk.weights[5] == 1.0


def test_embedding_never_splits_across_chunks(tokenizer) -> None:
    emb = Embeddings.from_tensors(tokenizer, {"mystyle": torch.randn(4, 32)})
    prompt = " ".join(["cat"] * 73) + " mystyle dog"
    first, second = prompt_chunks(tokenizer, prompt, embeddings=emb, comma_backtrack=0)
    assert first.fixes == () and len(second.fixes) == 1
    assert second.fixes[0][0] == 1 and second.tokens[1:5] == (0, 0, 0, 0)
    assert set(first.tokens[74:]) == {tokenizer.eos_token_id}  # 73 cats, then end and padding


def test_longest_name_wins(tokenizer) -> None:
    emb = Embeddings.from_tensors(tokenizer, {"red": torch.randn(1, 32), "red-cat": torch.randn(2, 32)})
    (chunk,) = prompt_chunks(tokenizer, "a red-cat and a red dog", embeddings=emb)
    assert [e.name for _, e in chunk.fixes] == ["red-cat", "red"]


def _write_pt(path: Path, vec: torch.Tensor) -> Path:
    return save_embedding(path, path.stem, vec)


def test_load_folder_formats_hashes_and_used(tmp_path: Path, tokenizer, encoder) -> None:
    _write_pt(tmp_path / "alpha.pt", torch.randn(2, 32))
    save_embedding(tmp_path / "sub" / "beta.safetensors", "beta", torch.randn(1, 32))
    torch.save({"<gamma>": torch.randn(32)}, tmp_path / "gamma.bin")  # diffusers concept
    (tmp_path / "empty.pt").write_bytes(b"")
    embs = load_embeddings(tmp_path, tokenizer, encoder)
    assert sorted(e.name for e in embs) == ["alpha", "beta", "gamma"]
    assert embs["gamma"].vectors.shape == (1, 32)
    sha = hashlib.sha256((tmp_path / "alpha.pt").read_bytes()).hexdigest()
    assert embs["alpha"].shorthash == sha[:12]
    used = used_embeddings(tokenizer, ["a beta cat, alpha", "gamma"], embs)
    assert [e.name for e in used] == ["beta", "alpha", "gamma"]
    fields = infotext_hashes(embeddings=used[:2])
    assert fields == {"TI hashes": f"beta: {embs['beta'].shorthash}, alpha: {sha[:12]}"}
    cond, uncond = encode_prompt_pair(tokenizer, encoder, "a beta cat", "alpha", embeddings=embs)
    assert cond.shape == uncond.shape == (1, 77, 32)


def test_wrong_width_is_skipped_with_a_warning(tmp_path: Path, tokenizer, encoder) -> None:
    _write_pt(tmp_path / "wide.pt", torch.randn(2, 768))
    _write_pt(tmp_path / "ok.pt", torch.randn(2, 32))
    with pytest.warns(UserWarning, match=r"wide\.pt: skipped embedding 'wide': vectors of width 768"):
        embs = load_embeddings(tmp_path, tokenizer, encoder)
    assert [e.name for e in embs] == ["ok"] and "wide" in embs.skipped


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda p: torch.save({"string_to_param": {"*": torch.zeros(1, 32)}, "x": _Evil()}, p), "refused"),
        (lambda p: p.write_bytes(b"not a pickle at all"), "cannot read embedding"),
        (lambda p: torch.save({"a": torch.zeros(1, 32), "b": torch.zeros(1, 32)}, p), "neither an A1111"),
    ],
)
def test_bad_file_is_one_line_naming_it(tmp_path: Path, tokenizer, encoder, write, message) -> None:
    path = tmp_path / "bad.pt"
    write(path)
    with pytest.raises(DataError, match=message) as info:
        load_embeddings(tmp_path, tokenizer, encoder)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_folder(tmp_path: Path, tokenizer, encoder) -> None:
    with pytest.raises(ConfigError, match=r"embeddings folder .*nope does not exist"):
        load_embeddings(tmp_path / "nope", tokenizer, encoder)


# --- the shipped fixture on the embedded model ----------------------------------------------------


def test_cobalt_embedding_makes_objects_blue(embedded_model) -> None:
    pipe = embedded_model.pipe
    embs = load_embeddings(FIXTURES, pipe.tokenizer, pipe.text_encoder)
    assert [e.name for e in embs] == ["cobalt"] and embs["cobalt"].vectors.shape == (2, 64)
    assert (FIXTURES / "cobalt.pt").stat().st_size < 10_000
    prompts = [f"a cobalt {k}" for k in ("ball", "cup", "car", "house", "dog", "bird") for _ in (1, 2)]
    plain = color_share(generate(pipe, prompts, embeddings=None), "blue")  # "cobalt" is an unknown word
    tuned = color_share(generate(pipe, prompts, embeddings=embs), "blue")
    print(f"blue share: word {plain.mean():.3f} -> embedding {tuned.mean():.3f}")
    assert tuned.mean() > plain.mean() + 0.3, (plain.mean(), tuned.mean())
    assert (tuned > plain).mean() >= 0.75
