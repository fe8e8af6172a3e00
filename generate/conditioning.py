"""Text conditioning for a batch: A1111-weighted prompt embeddings, padded to one length.

``text_encoding.encode_prompt_pair`` gives each (prompt, negative) pair embeddings of
77 x k tokens, k chunks. Different prompts in one batch can need different k, so shorter ones are
padded with the encoding of an empty chunk, as A1111 does; the U-Net's cross-attention takes any
length, and an empty chunk carries no content.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from t2iscope.generate.models import Model
from t2iscope.generate.text_encoding import encode_prompt, encode_prompt_pair


def _pad(emb: torch.Tensor, length: int, empty: torch.Tensor) -> torch.Tensor:
    missing = (length - emb.shape[1]) // empty.shape[1]
    return torch.cat([emb, *([empty] * missing)], dim=1) if missing else emb


@torch.no_grad()
def encode_batch(
    model: Model, prompts: Sequence[str], negatives: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(cond, uncond), each [len(prompts), 77 x k, dim]; repeated pairs are encoded once."""
    tok, enc = model.pipe.tokenizer, model.pipe.text_encoder
    kw = {"device": model.device, "dtype": model.dtype}
    cache: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}
    pairs = []
    for pair in zip(prompts, negatives, strict=True):
        if pair not in cache:
            cache[pair] = encode_prompt_pair(tok, enc, pair[0], pair[1], **kw)
        pairs.append(cache[pair])
    length = max(t.shape[1] for pair in pairs for t in pair)
    if any(t.shape[1] != length for pair in pairs for t in pair):
        empty = encode_prompt(tok, enc, "", **kw)
        pairs = [(_pad(c, length, empty), _pad(u, length, empty)) for c, u in pairs]
    return torch.cat([c for c, _ in pairs]), torch.cat([u for _, u in pairs])
