"""Weighted, chunked prompt encoding for any ``CLIPTokenizer`` + ``CLIPTextModel`` (SD 1.x and 2.x).

This is A1111's ``FrozenCLIPEmbedderWithCustomWords`` behaviour (modules/sd_hijack_clip.py) on top
of transformers, so prompts written for A1111 condition the U-Net the same way:

1. the prompt is split into weighted runs by :func:`~t2iscope.generate.prompt_syntax.parse_prompt_attention`;
2. tokens are packed into chunks of 75 (the text encoder's 77 positions minus BOS/EOS). ``BREAK``
   closes the current chunk; when a chunk fills up and a comma sits within the last
   ``comma_backtrack`` tokens, the text after that comma moves to the next chunk so phrases are not cut;
3. every chunk is encoded as ``BOS + tokens + EOS + padding`` (padding after the first EOS uses the
   tokenizer's pad token: EOS for SD 1.x, "!" for SD 2.x, as diffusers pads);
4. each token's output vector is multiplied by its weight, then (``emphasis``, A1111's
   modules/sd_emphasis.py) the chunk is rescaled so its mean equals the unweighted mean
   ("Original": ``z *= original_mean / new_mean``), or not ("No norm"); "Ignore" parses the
   brackets but applies no weight, "None" reads the prompt as literal text (brackets and BREAK too);
5. the chunks are concatenated along the sequence axis: ``[1, 77 * k, dim]``.

Textual inversion (``embeddings``, see ``t2iscope.generate.embeddings``): while tokens are packed,
a run of tokens that spells an embedding's name is replaced by that many placeholder positions as the
embedding has vectors (A1111's ``find_embedding_at_position``); an embedding that would not fit in the
current chunk starts the next one, so it never splits. The placeholders' token embeddings are replaced
by the embedding's vectors before the transformer runs (position embeddings are added as for words).

``clip_skip`` is A1111's "Clip skip" setting: 1 = the last layer's output (``last_hidden_state``),
``n`` > 1 = the hidden states ``n`` layers from the end through the final layer norm (A1111's
``CLIP_stop_at_last_layers``; diffusers' ``clip_skip`` is this value minus 1).

With all weights 1.0, clip skip 1, no embedding and at most 75 tokens the result is exactly diffusers'
``encode_prompt`` (``text_encoder(input_ids).last_hidden_state``). Gradients follow the caller's grad
mode (they reach in-memory embedding vectors, which is how ``train.networks`` trains them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from t2iscope.errors import ConfigError
from t2iscope.generate.limits import DEFAULT_CLIP_SKIP, DEFAULT_EMPHASIS, EMPHASIS_MODES, MAX_CLIP_SKIP
from t2iscope.generate.prompt_syntax import BREAK, BREAK_WEIGHT, parse_prompt_attention

if TYPE_CHECKING:
    from t2iscope.generate.embeddings import Embedding, Embeddings

COMMA_BACKTRACK = 20  # A1111's default `comma_padding_backtrack`
PLACEHOLDER_TOKEN = 0  # the token id A1111 puts where an embedding's vectors go


@dataclass(frozen=True)
class PromptChunk:
    """One text-encoder window: ``chunk_length + 2`` token ids (BOS .. EOS/pad) and their weights.

    ``fixes`` holds ``(position, embedding)`` pairs: the embedding's vectors replace the token
    embeddings at ``position .. position + n - 1`` of the window (position 0 is BOS).
    """

    tokens: tuple[int, ...]
    weights: tuple[float, ...]
    fixes: tuple[tuple[int, Embedding], ...] = ()


def check_emphasis(emphasis: str) -> str:
    """``emphasis`` if it is one of A1111's modes, else ConfigError listing them."""
    if emphasis not in EMPHASIS_MODES:
        raise ConfigError(f"emphasis must be one of {', '.join(EMPHASIS_MODES)}; got {emphasis!r}")
    return emphasis


def check_clip_skip(clip_skip: object, layers: int | None = None) -> int:
    """``clip_skip`` if it is an integer from 1 to the text encoder's ``layers`` (A1111 allows 1-12)."""
    top = layers if layers is not None else MAX_CLIP_SKIP
    if isinstance(clip_skip, bool) or not isinstance(clip_skip, int) or not 1 <= clip_skip <= top:
        where = "the text encoder's layers" if layers is not None else "A1111's range"
        raise ConfigError(f"clip_skip must be an integer from 1 to {top} ({where}), got {clip_skip!r}")
    return clip_skip


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
    emphasis: str = DEFAULT_EMPHASIS,
    embeddings: Embeddings | None = None,
) -> list[PromptChunk]:
    """Tokenize ``prompt`` into weighted chunks exactly as A1111's ``tokenize_line`` does."""
    bos, eos, pad, comma = _special_ids(tokenizer)
    if check_emphasis(emphasis) == "None":
        parsed = [(prompt, 1.0)]
    else:
        parsed = parse_prompt_attention(prompt)
        if emphasis == "Ignore":
            parsed = [
                (text, weight if text == BREAK and weight == BREAK_WEIGHT else 1.0) for text, weight in parsed
            ]
    tokenized = tokenizer(
        [text for text, _ in parsed], add_special_tokens=False, truncation=False, verbose=False
    )["input_ids"]

    chunks: list[PromptChunk] = []
    tokens: list[int] = []
    weights: list[float] = []
    fixes: list[tuple[int, Embedding]] = []  # (index in `tokens`, embedding)
    last_comma = -1

    def close_chunk() -> None:
        nonlocal tokens, weights, fixes, last_comma
        fill = chunk_length - len(tokens)
        body = [bos, *tokens, eos] + [pad] * fill
        window_fixes = tuple((1 + at, emb) for at, emb in fixes)
        chunks.append(PromptChunk(tuple(body), tuple([1.0, *weights, 1.0] + [1.0] * fill), window_fixes))
        tokens, weights, fixes, last_comma = [], [], [], -1

    for ids, (text, weight) in zip(tokenized, parsed, strict=True):
        if text == BREAK and weight == BREAK_WEIGHT and emphasis != "None":
            close_chunk()
            continue
        position = 0
        while position < len(ids):
            token = ids[position]
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
                moved_fixes = [(at - cut, emb) for at, emb in fixes if at >= cut]
                fixes = [(at, emb) for at, emb in fixes if at < cut]
                close_chunk()
                tokens, weights, fixes = moved_tokens, moved_weights, moved_fixes
            if len(tokens) == chunk_length:
                close_chunk()
            found = embeddings.find(ids, position) if embeddings is not None else None
            if found is None:
                tokens.append(token)
                weights.append(weight)
                position += 1
                continue
            emb, spanned = found
            n = int(emb.vectors.shape[0])
            if len(tokens) + n > chunk_length:
                close_chunk()
            fixes.append((len(tokens), emb))
            tokens.extend([PLACEHOLDER_TOKEN] * n)
            weights.extend([weight] * n)
            position += spanned
    if tokens or not chunks:
        close_chunk()
    return chunks


def _chunk_length(text_encoder: Any) -> int:
    return int(text_encoder.config.max_position_embeddings) - 2


def _layers(text_encoder: Any) -> int:
    return int(text_encoder.config.num_hidden_layers)


@contextlib.contextmanager
def _embedding_fixes(text_encoder: Any, chunks: Sequence[PromptChunk]) -> Iterator[None]:
    """While active, the token-embedding layer's output carries each chunk's embedding vectors."""
    fixed = [(row, at, emb) for row, chunk in enumerate(chunks) for at, emb in chunk.fixes]
    if not fixed:
        yield
        return

    def replace(_module: Any, _args: Any, out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        for row, at, emb in fixed:
            vec = emb.vectors.to(device=out.device, dtype=out.dtype)
            n = min(len(vec), out.shape[1] - at)
            out[row, at : at + n] = vec[:n]
        return out

    hook = text_encoder.get_input_embeddings().register_forward_hook(replace)
    try:
        yield
    finally:
        hook.remove()


def apply_emphasis(z: torch.Tensor, weights: torch.Tensor, emphasis: str = DEFAULT_EMPHASIS) -> torch.Tensor:
    """One chunk's ``z [77, dim]`` times its token ``weights [77]`` under A1111's ``emphasis`` mode.

    "Original" then rescales the chunk so its mean is the unweighted mean; "No norm" does not;
    "Ignore" and "None" return ``z`` unchanged.
    """
    if check_emphasis(emphasis) in ("Ignore", "None") or not bool((weights != 1.0).any()):
        return z
    weighted = z * weights[:, None]
    if emphasis == "No norm":
        return weighted
    new_mean = weighted.mean()
    return weighted * (z.mean() / new_mean) if new_mean != 0 else weighted


def _encode_chunks(
    text_encoder: Any,
    chunks: Sequence[PromptChunk],
    *,
    device: torch.device | str | None,
    dtype: torch.dtype | None,
    clip_skip: int,
    emphasis: str,
) -> torch.Tensor:
    """Run all chunks through the encoder as one batch and apply emphasis; returns ``[k, 77, dim]``."""
    check_clip_skip(clip_skip, _layers(text_encoder))
    device = device if device is not None else text_encoder.device
    ids = torch.tensor([c.tokens for c in chunks], dtype=torch.long, device=device)
    with _embedding_fixes(text_encoder, chunks):
        if clip_skip > 1:
            hidden = text_encoder(ids, output_hidden_states=True).hidden_states[-clip_skip]
            # transformers < 5 nests the layers under `.text_model`; 5.x puts them on the model itself.
            z = getattr(text_encoder, "text_model", text_encoder).final_layer_norm(hidden)
        else:
            z = text_encoder(ids).last_hidden_state
    weights = torch.tensor([c.weights for c in chunks], dtype=z.dtype, device=z.device)
    z = torch.stack([apply_emphasis(zc, wc, emphasis) for zc, wc in zip(z, weights, strict=True)])
    return z.to(dtype) if dtype is not None else z


def encode_prompt(
    tokenizer: Any,
    text_encoder: Any,
    prompt: str,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    clip_skip: int = DEFAULT_CLIP_SKIP,
    emphasis: str = DEFAULT_EMPHASIS,
    embeddings: Embeddings | None = None,
    comma_backtrack: int = COMMA_BACKTRACK,
) -> torch.Tensor:
    """Encode an A1111-syntax prompt into ``[1, 77 * k, dim]`` conditioning (see module docstring)."""
    chunks = prompt_chunks(
        tokenizer,
        prompt,
        chunk_length=_chunk_length(text_encoder),
        comma_backtrack=comma_backtrack,
        emphasis=emphasis,
        embeddings=embeddings,
    )
    z = _encode_chunks(
        text_encoder, chunks, device=device, dtype=dtype, clip_skip=clip_skip, emphasis=emphasis
    )
    return z.reshape(1, -1, z.shape[-1])


def encode_prompt_pair(
    tokenizer: Any,
    text_encoder: Any,
    prompt: str,
    negative: str,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    clip_skip: int = DEFAULT_CLIP_SKIP,
    emphasis: str = DEFAULT_EMPHASIS,
    embeddings: Embeddings | None = None,
    comma_backtrack: int = COMMA_BACKTRACK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode prompt and negative prompt to the same length for classifier-free guidance.

    The shorter one is padded with empty-prompt chunks, as A1111 pads cond/uncond, so both come back
    as ``[1, 77 * k, dim]`` with the same ``k`` and can be concatenated into one U-Net batch.
    Embeddings apply to both prompts, as in A1111.
    """
    kw = {"chunk_length": _chunk_length(text_encoder), "emphasis": emphasis, "embeddings": embeddings}
    pos = prompt_chunks(tokenizer, prompt, comma_backtrack=comma_backtrack, **kw)
    neg = prompt_chunks(tokenizer, negative, comma_backtrack=comma_backtrack, **kw)
    k = max(len(pos), len(neg))
    empty = prompt_chunks(tokenizer, "", **kw)[0]
    pos += [empty] * (k - len(pos))
    neg += [empty] * (k - len(neg))
    z = _encode_chunks(
        text_encoder, pos + neg, device=device, dtype=dtype, clip_skip=clip_skip, emphasis=emphasis
    )
    return z[:k].reshape(1, -1, z.shape[-1]), z[k:].reshape(1, -1, z.shape[-1])


def used_embeddings(
    tokenizer: Any,
    texts: Iterable[str],
    embeddings: Embeddings | None,
    *,
    emphasis: str = DEFAULT_EMPHASIS,
) -> list[Embedding]:
    """The embeddings that encoding ``texts`` (prompts and negatives) uses, first use first (for infotext)."""
    if embeddings is None or not len(embeddings):
        return []
    seen: dict[str, Embedding] = {}
    for text in texts:
        for chunk in prompt_chunks(tokenizer, text, emphasis=emphasis, embeddings=embeddings):
            for _, emb in chunk.fixes:
                seen.setdefault(emb.name, emb)
    return list(seen.values())
