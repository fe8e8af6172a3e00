"""A Hugging Face ``CLIPTokenizer`` folder built from open_clip's shipped BPE vocabulary.

No model hub is reachable, but open_clip ships the very BPE merges OpenAI's CLIP (and so Stable
Diffusion's text encoder) was trained with. Building ``vocab.json``/``merges.txt`` from it the way
open_clip's ``SimpleTokenizer`` builds its encoder gives a tokenizer with the same 49408 ids as
``openai/clip-vit-large-patch14``, loadable with ``CLIPTokenizer.from_pretrained(folder)``.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from t2iscope import fileio

VOCAB_SIZE = 49408
CONTEXT_LENGTH = 77
BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
# open_clip reads merges[1 : 49152 - 256 - 2 + 1]: skip the header line, keep 48894 merges, so
# 256 bytes + 256 end-of-word bytes + merges + 2 specials = 49408 ids.
_N_MERGES = VOCAB_SIZE - 2 * 256 - 2


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes), strict=True))


def _open_clip_bpe_path() -> Path:
    import open_clip.tokenizer

    return Path(open_clip.tokenizer.default_bpe())


def clip_vocab_and_merges(bpe_path: str | os.PathLike[str] | None = None) -> tuple[dict[str, int], list[str]]:
    """CLIP's token -> id table and merge list, read from open_clip's ``bpe_simple_vocab_16e6.txt.gz``."""
    path = Path(bpe_path) if bpe_path is not None else _open_clip_bpe_path()
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        lines = fh.read().split("\n")[1 : _N_MERGES + 1]
    merges = [" ".join(line.split()) for line in lines]
    symbols = list(_bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + [m.replace(" ", "") for m in merges] + [BOS, EOS]
    return {token: i for i, token in enumerate(tokens)}, merges


def write_clip_tokenizer_files(out_dir: str | os.PathLike[str]) -> Path:
    """Write vocab.json, merges.txt and the tokenizer configs for SD 1.x's CLIP tokenizer into ``out_dir``.

    Padding uses the end-of-text token, as SD 1.x's tokenizer does. Returns ``out_dir``.
    """
    out = Path(out_dir)
    vocab, merges = clip_vocab_and_merges()
    fileio.write_text(out / "vocab.json", json.dumps(vocab, ensure_ascii=False))
    fileio.write_text(out / "merges.txt", "#version: 0.2\n" + "\n".join(merges) + "\n")
    specials = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    fileio.write_json(out / "special_tokens_map.json", specials)
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": CONTEXT_LENGTH,
        "do_lower_case": True,
        "clean_up_tokenization_spaces": False,
        **specials,
    }
    fileio.write_json(out / "tokenizer_config.json", config)
    return out
