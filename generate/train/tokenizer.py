"""A ``transformers.CLIPTokenizer`` folder built from the BPE vocabulary open_clip ships.

Stable Diffusion pipelines expect a CLIPTokenizer (vocab.json + merges.txt). CLIP's real BPE merges
are inside the open_clip package, so we rebuild the encoder exactly as open_clip's SimpleTokenizer
does (byte alphabet, ``</w>`` variants, the first 48,894 merges, two special tokens): token ids then
match open_clip's tokenizer, which the tests check.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

from t2iscope import fileio

SOT = "<|startoftext|>"
EOT = "<|endoftext|>"
CONTEXT_LENGTH = 77


@lru_cache
def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def _bpe_path() -> Path:
    import open_clip

    return Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"


def build_vocab() -> tuple[dict[str, int], list[str]]:
    """Return (token -> id, merge lines) in open_clip's SimpleTokenizer order."""
    with gzip.open(_bpe_path()) as fh:
        lines = fh.read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    alphabet = list(_bytes_to_unicode().values())
    vocab = alphabet + [a + "</w>" for a in alphabet]
    vocab += ["".join(m.split()) for m in merges]
    vocab += [SOT, EOT]
    return {tok: i for i, tok in enumerate(vocab)}, merges


def save_tokenizer(folder: str | Path) -> Path:
    """Write a CLIPTokenizer folder as SD 1.x ships it: vocab.json, merges.txt, tokenizer_config.json.

    The 3.6 MB tokenizer.json is dropped: transformers rebuilds it from the two files in ~0.2 s.
    """
    from transformers import CLIPTokenizer

    folder = Path(folder)
    vocab, merges = build_vocab()
    tok = CLIPTokenizer(
        vocab=vocab,
        merges=[tuple(m.split()) for m in merges],
        model_max_length=CONTEXT_LENGTH,
    )
    folder.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(folder)
    fileio.write_text(folder / "vocab.json", json.dumps(vocab, ensure_ascii=False))
    fileio.write_text(folder / "merges.txt", "#version: 0.2\n" + "\n".join(merges) + "\n")
    (folder / "tokenizer.json").unlink(missing_ok=True)
    return folder
