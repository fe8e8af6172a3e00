"""Weighted, chunked prompt encoding for any ``CLIPTokenizer`` + ``CLIPTextModel`` (SD 1.x and 2.x).

This is A1111's ``FrozenCLIPEmbedderWithCustomWords`` behaviour (modules/sd_hijack_clip.py) on top
of transformers, so prompts written for A1111 condition the U-Net the same way:

1. the prompt is split into weighted runs by :func:`~t2iscope.generate.prompt_syntax.parse_prompt_attention`;
2. tokens are packed into chunks of 75 (the text encoder's 77 positions minus BOS/EOS). ``BREAK``
   closes the current chunk; when a chunk fills up and a comma sits within the last
   ``comma_backtrack`` tokens, the text after that comma moves to the next chunk so phrases are not cut;
3. every chunk is encoded as ``BOS + tokens + EOS + padding`` (padding after the first EOS uses the
   tokenizer's pad token: EOS for SD 1.x, "!" for SD 2.x, as diffusers pads);
4. each token's output vector is multiplied by its weight, then the chunk is rescaled so its mean
   equals the unweighted mean (A1111's "Original" emphasis: ``z *= original_mean / new_mean``);
5. the chunks are concatenated along the sequence axis: ``[1, 77 * k, dim]``.

With all weights 1.0 and at most 75 tokens the result is exactly diffusers' ``encode_prompt``
(``text_encoder(input_ids).last_hidden_state``). ``clip_skip`` follows diffusers: ``clip_skip=1`` takes
the penultimate layer's hidden states through the final layer norm (A1111's "Clip skip: 2").
Textual-inversion embeddings are not supported. Gradients follow the caller's grad mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from t2iscope.errors import ConfigError
from t2iscope.generate.prompt_syntax import BREAK, BREAK_WEIGHT, parse_prompt_attention

COMMA_BACKTRACK = 20  # A1111's default `comma_padding_backtrack`


@dataclass(frozen=True)
class PromptChunk:
    """One text-encoder window: ``chunk_length + 2`` token ids (BOS .. EOS/pad) and their weights."""

    tokens: tuple[int, ...]
    weights: tuple[float, ...]


def _special_ids(tokenizer: Any) -> tuple[int, int, int, int | None]:
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if bos is None or eos is None:
        raise ConfigError("tokenizer has no bos/eos token: a CLIPTokenizer is required")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    comma = tokenizer.convert_tokens_to_ids(",</w>")
    if tokenizer.convert_ids_to_tokens(comma) != ",</w>":
        comma = None
    return bos, eos, pad, comma


def prompt_chunks(
    tokenizer: Any,
    prompt: str,
    *,
    chunk_length: int = 75,
    comma_backtrack: int = COMMA_BACKTRACK,
) -> list[PromptChunk]:
    """Tokenize ``prompt`` into weighted chunks exactly as A1111's ``tokenize_line`` does."""
    bos, eos, pad, comma = _special_ids(tokenizer)
    parsed = parse_prompt_attention(prompt)
    tokenized = tokenizer(
        [text for text, _ in parsed], add_special_tokens=False, truncation=False, verbose=False
    )["input_ids"]

    chunks: list[PromptChunk] = []
    tokens: list[int] = []
    weights: list[float] = []
    last_comma = -1

    def close_chunk() -> None:
        nonlocal tokens, weights, last_comma
        fill = chunk_length - len(tokens)
        body = [bos, *tokens, eos] + [pad] * fill
        chunks.append(PromptChunk(tuple(body), tuple([1.0, *weights, 1.0] + [1.0] * fill)))
        tokens, weights, last_comma = [], [], -1

    for ids, (text, weight) in zip(tokenized, parsed, strict=True):
        if text == BREAK and weight == BREAK_WEIGHT:
            close_chunk()
            continue
        for token in ids:
            if token == comma:
                last_comma = len(tokens)
            elif (
                comma_backtrack > 0
                and len(tokens) == chunk_length
                and last_comma != -1
                and len(tokens) - last_comma <= comma_backtrack
            ):
                cut = last_comma + 1
                moved_tokens, moved_weights = tokens[cut:], weights[cut:]
                tokens, weights = tokens[:cut], weights[:cut]
                close_chunk()
                tokens, weights = moved_tokens, moved_weights
            if len(tokens) == chunk_length:
                close_chunk()
            tokens.append(token)
            weights.append(weight)
    if tokens or not chunks:
        close_chunk()
    return chunks


def _chunk_length(text_encoder: Any) -> int:
    return int(text_encoder.config.max_position_embeddings) - 2


def _encode_chunks(
    text_encoder: Any,
    chunks: Sequence[PromptChunk],
    *,
    device: torch.device | str | None,
    dtype: torch.dtype | None,
    clip_skip: int | None,
) -> torch.Tensor:
    """Run all chunks through the encoder as one batch and apply emphasis; returns ``[k, 77, dim]``."""
    device = device if device is not None else text_encoder.device
    ids = torch.tensor([c.tokens for c in chunks], dtype=torch.long, device=device)
    if clip_skip:
        hidden = text_encoder(ids, output_hidden_states=True).hidden_states[-(clip_skip + 1)]
        # transformers < 5 nests the layers under `.text_model`; 5.x puts them on the model itself.
        z = getattr(text_encoder, "text_model", text_encoder).final_layer_norm(hidden)
    else:
        z = text_encoder(ids).last_hidden_state
    weights = torch.tensor([c.weights for c in chunks], dtype=z.dtype, device=z.device)
    out = []
    for zc, wc in zip(z, weights, strict=True):
        if bool((wc != 1.0).any()):
            original_mean = zc.mean()
            zc = zc * wc[:, None]
            new_mean = zc.mean()
            if new_mean != 0:
                zc = zc * (original_mean / new_mean)
        out.append(zc)
    z = torch.stack(out)
    return z.to(dtype) if dtype is not None else z


def encode_prompt(
    tokenizer: Any,
    text_encoder: Any,
    prompt: str,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    clip_skip: int | None = None,
    comma_backtrack: int = COMMA_BACKTRACK,
) -> torch.Tensor:
    """Encode an A1111-syntax prompt into ``[1, 77 * k, dim]`` conditioning (see module docstring)."""
    chunks = prompt_chunks(
        tokenizer, prompt, chunk_length=_chunk_length(text_encoder), comma_backtrack=comma_backtrack
    )
    z = _encode_chunks(text_encoder, chunks, device=device, dtype=dtype, clip_skip=clip_skip)
    return z.reshape(1, -1, z.shape[-1])


def encode_prompt_pair(
    tokenizer: Any,
    text_encoder: Any,
    prompt: str,
    negative: str,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    clip_skip: int | None = None,
    comma_backtrack: int = COMMA_BACKTRACK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode prompt and negative prompt to the same length for classifier-free guidance.

    The shorter one is padded with empty-prompt chunks, as A1111 pads cond/uncond, so both come back
    as ``[1, 77 * k, dim]`` with the same ``k`` and can be concatenated into one U-Net batch.
    """
    length = _chunk_length(text_encoder)
    pos = prompt_chunks(tokenizer, prompt, chunk_length=length, comma_backtrack=comma_backtrack)
    neg = prompt_chunks(tokenizer, negative, chunk_length=length, comma_backtrack=comma_backtrack)
    k = max(len(pos), len(neg))
    empty = prompt_chunks(tokenizer, "", chunk_length=length)[0]
    pos += [empty] * (k - len(pos))
    neg += [empty] * (k - len(neg))
    z = _encode_chunks(text_encoder, pos + neg, device=device, dtype=dtype, clip_skip=clip_skip)
    return z[:k].reshape(1, -1, z.shape[-1]), z[k:].reshape(1, -1, z.shape[-1])
