"""``near_dedup``: drop an image that looks like one kept earlier in the download, naming that one.

Two signatures (``by``):

- ``phash``: imagehash's 64-bit DCT perceptual hash (``imagehash.phash``: grey, 32x32, DCT, the 8x8
  lowest frequencies against their median). A duplicate is within ``max_distance`` bits (Hamming
  distance) of a kept image's hash. It finds re-encodes, resizes, blur and crops of a few percent;
  it misses larger crops, flips and rotations.
- ``semantic``: CLIP image embeddings (L2-normalised; the embedded ``models/clip`` or any local
  open_clip folder as ``model``). A duplicate has cosine similarity at least ``min_similarity``
  with a kept image of its k-means cluster, as in SemDeDup (Abbas et al. 2023) and NeMo Curator's
  semantic dedup, whose ``eps`` is ``1 - min_similarity``.

Rows come in download order (the engines never reorder a stateful stage) and, as ``dedup`` does,
the first of a group stays: each row is compared with every image kept so far (phash: XOR and
popcount over a uint64 array; semantic: a product with the kept embeddings of its cluster), kept
rows earlier in its batch included. A duplicate names the closest kept image (``duplicate_of``, its
``row_id``; the earliest among equals) and how close it is (``duplicate_distance``: Hamming bits,
or cosine distance 1 - cosine, SemDeDup's epsilon; 0 is identical either way). Verdicts do not
depend on the batch size (semantic: up to the float rounding of CLIP and of products of other
shapes, ~1e-7).

Clusters (semantic): until ``clusters * FIT_PER_CLUSTER`` images are kept, a row is compared with
all of them. At that row, spherical k-means (FIT_ITERATIONS rounds from centroids drawn among the
kept with a fixed seed, as faiss runs it for SemDeDup) is fitted on exactly those embeddings; from
then on a kept image belongs to its nearest centroid and a row is compared with the kept images
of its nearest centroid only, ~kept/clusters products instead of kept. The fit falls on the same
row whatever the batching, and the checkpoint holds its centroids.

Checkpoint (``dedup.save_keys``, per unit): the unit's kept rows (``row_id``, signature, cluster),
the centroids and the fit's assignment in the unit where the fit happened, and how many example
pairs were taken, so a resumed download gives the verdicts of an uninterrupted one. Memory per
kept image: 16 bytes (phash), 4 * D + 8 (semantic; D = 64 for the embedded CLIP), up to twice
that while a cluster's buffer grows. Cost per row: phash reads every kept hash (~650 rows/s on one
core against 1M kept); semantic reads its cluster (~5,700 rows/s against 1M kept in 64 clusters).

Defaults, measured (tests/curate/test_near_dedup.py): ``max_distance: 8`` removes every exact copy,
re-encode, resize and blur of 42 photos (scikit-image's samples and quarters of five), 98% of 15%
brighter copies, 95% of 2% crops and 69% of 3% crops, and no photo (precision 1.0); 64-pixel
tiles cut from those photos, a hard case that shares texture, match at 8 bits in 2.3e-5 of pairs.
``min_similarity: 0.95`` with the embedded CLIP removes 99% of re-encoded, half-size, 3%-cropped
and blurred world renders (172 scenes, precision 1.0; distinct scenes reach 0.92). That CLIP was
trained on world renders and sees colour: it misses brighter copies and does not tell photos
apart (distinct photos up to 0.9998); on photos, name a real open_clip checkpoint as ``model``.

Stats: the first EXAMPLES duplicates of the download, ``examples: {row_id: {duplicate_of,
distance}}``, which the dashboards' funnel page shows side by side.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
from PIL import Image

from t2iscope.config import Ge, Gt, Le
from t2iscope.curate.operators import PIXELS, StageContext, StageResult, decide, operator, require
from t2iscope.curate.operators.dedup import Saved, stage_state
from t2iscope.curate.operators.model_score import check_open_clip_folder
from t2iscope.errors import ConfigError

NearBy = Literal["phash", "semantic"]
MAX_DISTANCE = 8  # phash default: bits of 64 (module docstring)
MIN_SIMILARITY = 0.95  # semantic default: cosine
CLUSTERS = 64  # semantic default
MAX_CLUSTERS = 4096  # the fit waits for 16 kept images a cluster, compared all with all till then
FIT_PER_CLUSTER = 16
FIT_ITERATIONS = 20
SEED = 0
EXAMPLES = 12  # example pairs in stats.json
BLOCK = 512  # rows decided together: each block reads the kept signatures of its clusters once
PAIRS = 1 << 19  # comparisons held in memory at once (a few MB: cache-sized chunks run fastest)
PHASH_ONLY = ("max_distance",)
SEMANTIC_ONLY = ("min_similarity", "clusters", "model")


# -- signatures -------------------------------------------------------------------------------------


def phash64(blobs: Sequence[bytes | None]) -> tuple[np.ndarray, np.ndarray]:
    """``imagehash.phash`` of each encoded image as uint64 ``[n]`` (its 64 bits in imagehash's
    order, first bit highest, as its hex string reads) and bool ``[n]``: which images decoded."""
    import imagehash

    bits = np.zeros((len(blobs), 64), dtype=bool)
    ok = np.zeros(len(blobs), dtype=bool)
    for i, blob in enumerate(blobs):
        if blob is None:
            continue
        try:
            with Image.open(io.BytesIO(blob)) as im:
                bits[i] = imagehash.phash(im).hash.ravel()
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):  # PIL's broken files
            continue
        ok[i] = True
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64), ok


def load_clip(model: str | None) -> Any:
    """The open_clip model in folder ``model`` (default: the embedded ``models/clip``), loaded once
    per process by ``t2iscope.weights``; ConfigError naming the folder when it holds no open_clip."""
    from t2iscope.weights import OPEN_CLIP, load_model, model_folder

    return load_model(model_folder("clip") if model is None else Path(model), expect=OPEN_CLIP)


def clip_embeddings(blobs: Sequence[bytes | None], clip: Any) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised CLIP embeddings float32 ``[n, D]`` of encoded images (zeros where one does not
    decode) and bool ``[n]``: which decoded. Pixels as every curation scorer sees them (scorers.decode)."""
    import torch

    from t2iscope.curate.scorers import decode

    pixels = [decode(b, clip.input_size) for b in blobs]
    ok = np.array([p is not None for p in pixels], dtype=bool)
    if not ok.any():
        return np.zeros((len(blobs), 0), np.float32), ok
    images = torch.from_numpy(np.stack([p for p in pixels if p is not None])).permute(0, 3, 1, 2)
    found = clip.embed(images).numpy()
    out = np.zeros((len(blobs), found.shape[1]), np.float32)
    out[ok] = found
    return out, ok


# -- closeness: higher is closer; a row is a duplicate of a kept image at least `limit` close ---------


@dataclass(frozen=True)
class Metric:
    """How two sets of signatures compare: ``closeness(a [n], b [m]) -> [n, m]`` (int8 or float32)."""

    closeness: Callable[[np.ndarray, np.ndarray], np.ndarray]
    limit: np.float32  # a duplicate is at least this close
    distance: Callable[[np.ndarray], np.ndarray]  # closeness -> duplicate_distance


def _hamming_closeness(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    bits = np.bitwise_count(a[:, None] ^ b[None, :]).view(np.int8)  # 0..64
    return np.negative(bits, out=bits)


def _cosine_closeness(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a @ b.T


def phash_metric(max_distance: int) -> Metric:
    """Closeness of 64-bit hashes: minus their Hamming distance; a duplicate is ``max_distance`` or less."""
    return Metric(_hamming_closeness, np.float32(-max_distance), np.negative)


def cosine_metric(min_similarity: float) -> Metric:
    """Closeness of unit vectors: their cosine; a duplicate is at least ``min_similarity``. Its
    ``duplicate_distance`` is the cosine distance 1 - cosine, so 0 means identical as for phash."""
    return Metric(_cosine_closeness, np.float32(min_similarity), lambda cosine: 1 - cosine)


def _nearest(
    metric: Metric, queries: np.ndarray, sigs: np.ndarray, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each query's closest signature among ``sigs`` (download order): (closeness, its row_id);
    the first among equals. Compares PAIRS at a time."""
    best = np.full(len(queries), -np.inf, np.float32)
    ref = np.full(len(queries), -1, np.int64)
    rows = np.arange(len(queries))
    step = max(1, PAIRS // max(len(queries), 1))
    for start in range(0, len(ids), step):
        close = metric.closeness(queries, sigs[start : start + step])
        j = close.argmax(axis=1)
        value = close[rows, j]
        better = value > best
        best[better], ref[better] = value[better], ids[start + j[better]]
    return best, ref


def spherical_kmeans(x: np.ndarray, k: int) -> np.ndarray:
    """Unit-length centroids float32 ``[k, D]`` of unit vectors ``x`` ``[n >= k, D]``: k-means on
    cosine similarity, from ``k`` rows drawn with seed SEED, FIT_ITERATIONS rounds; a centroid
    left without rows stays where it was."""
    x64 = x.astype(np.float64)
    centroids = x64[np.random.default_rng(SEED).choice(len(x), k, replace=False)]
    for _ in range(FIT_ITERATIONS):
        sums = np.zeros_like(centroids)
        np.add.at(sums, (x64 @ centroids.T).argmax(axis=1), x64)
        norms = np.linalg.norm(sums, axis=1)
        moved = norms > 0
        centroids[moved] = sums[moved] / norms[moved, None]
    return centroids.astype(np.float32)


def nearest_centroid(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Cluster int32 ``[n]`` of each row of ``x``: its most similar centroid."""
    return _cosine_closeness(x, centroids).argmax(axis=1).astype(np.int32)


# -- the stage's memory -----------------------------------------------------------------------------


class _Rows:
    """Rows appended in order to a buffer that doubles when full: appends cost O(1) amortised."""

    def __init__(self, first: np.ndarray) -> None:
        self.data, self.n = first.copy(), len(first)

    def extend(self, more: np.ndarray) -> None:
        if self.n + len(more) > len(self.data):
            grown = np.empty((max(2 * len(self.data), self.n + len(more)), *more.shape[1:]), more.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.data[self.n : self.n + len(more)] = more
        self.n += len(more)

    def view(self) -> np.ndarray:
        return self.data[: self.n]


class NearState:
    """The images kept so far: row ids and signatures per cluster (one until the fit), in download
    order; a :class:`dedup.Checkpointed`."""

    def __init__(self) -> None:
        self.ids: list[_Rows | None] = [None]  # per cluster: row ids
        self.sigs: list[_Rows | None] = [None]  # per cluster: signatures, alike
        self.centroids: np.ndarray | None = None
        self.kept = 0
        self.examples = 0
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._fit: dict[str, np.ndarray] = {}  # centroids and assignment, until checkpointed
        self._examples = 0  # examples taken since the last checkpoint

    def cluster(self, g: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(signatures, row ids) kept in cluster ``g``, or None when it has none."""
        ids, sigs = self.ids[g], self.sigs[g]
        return None if ids is None or sigs is None else (sigs.view(), ids.view())

    def groups(self, sigs: np.ndarray) -> np.ndarray:
        """Each signature's cluster: 0 before the fit, else its nearest centroid."""
        if self.centroids is None:
            return np.zeros(len(sigs), np.int32)
        return nearest_centroid(sigs, self.centroids)

    def add(self, ids: np.ndarray, sigs: np.ndarray, groups: np.ndarray) -> None:
        """Keep these rows (in download order) in their clusters."""
        self._insert(ids, sigs, groups)
        self._pending.append((ids, sigs, groups))

    def _insert(self, ids: np.ndarray, sigs: np.ndarray, groups: np.ndarray) -> None:
        if not len(ids):
            return
        order = np.argsort(groups, kind="stable")  # each cluster's rows stay in download order
        found, starts = np.unique(groups[order], return_index=True)
        for g, rows in zip(found, np.split(order, starts[1:]), strict=True):
            for store, values in ((self.ids, ids[rows]), (self.sigs, sigs[rows])):
                if store[g] is None:
                    store[g] = _Rows(values)
                else:
                    store[g].extend(values)  # type: ignore[union-attr]
        self.kept += len(ids)

    def fit(self, k: int) -> None:
        """Fit ``k`` centroids on every kept embedding and move each to its nearest centroid's cluster."""
        pool = self.cluster(0)
        assert pool is not None and self.centroids is None
        centroids = spherical_kmeans(pool[0], k)
        assignment = nearest_centroid(pool[0], centroids)
        self._apply_fit(centroids, assignment)
        self._fit = {"centroids": centroids, "assignment": assignment}

    def _apply_fit(self, centroids: np.ndarray, assignment: np.ndarray) -> None:
        pool = self.cluster(0)
        assert pool is not None and len(pool[1]) == self.kept == len(assignment)
        self.centroids = centroids
        self.ids, self.sigs = [None] * len(centroids), [None] * len(centroids)
        self.kept = 0
        self._insert(pool[1], pool[0], assignment)

    def take_example(self, n: int) -> int:
        """How many of ``n`` new duplicates become examples (the first EXAMPLES of the download)."""
        taken = max(0, min(n, EXAMPLES - self.examples))
        self.examples += taken
        self._examples += taken
        return taken

    def take_pending(self) -> Saved:
        parts = self._pending or [(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int32))]
        saved = {
            "row_id": np.concatenate([p[0] for p in parts]),
            "signature": np.concatenate([p[1] for p in parts]),
            "cluster": np.concatenate([p[2] for p in parts]),
            "examples": np.array(self._examples),
            **self._fit,
        }
        self._pending, self._fit, self._examples = [], {}, 0
        return saved

    def restore(self, saved: Saved) -> None:
        """Replay a checkpoint: rows kept before the fit, the fit, rows kept after it."""
        assert isinstance(saved, dict)
        ids, sigs, groups = saved["row_id"], saved["signature"], saved["cluster"]
        cut = len(saved["assignment"]) - self.kept if "assignment" in saved else len(ids)
        if cut:
            self._insert(ids[:cut], sigs[:cut], groups[:cut])
        if "assignment" in saved:
            self._apply_fit(saved["centroids"], saved["assignment"])
        if len(ids) > cut:
            self._insert(ids[cut:], sigs[cut:], groups[cut:])
        self.examples += int(saved["examples"])


def decide_block(
    state: NearState, metric: Metric, sigs: np.ndarray, ids: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(duplicate mask, closeness, kept row_id it is closest to) of a block of rows in download
    order: against the kept images of each row's cluster, then against the block's earlier rows
    that stay."""
    best = np.full(len(ids), -np.inf, np.float32)
    ref = np.full(len(ids), -1, np.int64)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        kept = state.cluster(g)
        if kept is not None:
            best[rows], ref[rows] = _nearest(metric, sigs[rows], *kept)
    within = metric.closeness(sigs, sigs)
    close = np.tril(within >= metric.limit, k=-1) & (groups[:, None] == groups[None, :])
    dup = best >= metric.limit
    for i in np.flatnonzero(close.any(axis=1)):  # in order: rows before i are decided
        candidates = np.flatnonzero(close[i, :i] & ~dup[:i])
        if candidates.size:
            j = candidates[within[i, candidates].argmax()]
            if within[i, j] > best[i]:  # an earlier kept image wins a tie
                best[i], ref[i] = within[i, j], ids[j]
            dup[i] = True
    return dup, best, ref


# -- the stage --------------------------------------------------------------------------------------


def _other_by(params: dict[str, Any]) -> None:
    """Refuse a parameter of the other ``by`` (ValueError)."""
    by = params.get("by", "phash")
    other, theirs = (SEMANTIC_ONLY, "semantic") if by == "phash" else (PHASH_ONLY, "phash")
    given = [name for name in other if params.get(name) is not None]
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        raise ValueError(f"{', '.join(given)} {verb} to by: {theirs} only, not by: {by}")


def check_near(params: dict[str, Any], phase: str) -> None:
    """``near_dedup``'s parse-time check (``Operator.check``): a parameter of the other ``by`` is
    refused, and a ``model`` must be an open_clip folder (its weights load before any download)."""
    _other_by(params)
    model = params.get("model")
    if model is None:
        return
    check_open_clip_folder(model)


def preload_near(params: dict[str, Any], phase: str) -> None:
    """``Operator.preload``: load the CLIP a semantic stage embeds with, before any download."""
    if params.get("by") == "semantic":
        load_clip(params.get("model"))


@operator(
    "near_dedup",
    phases=(PIXELS,),
    outputs={"duplicate_of": pa.int64(), "duplicate_distance": pa.float32()},
    stateful=True,
    check=check_near,
    preload=preload_near,
)
def near_dedup(
    table: pa.Table,
    ctx: StageContext,
    by: NearBy = "phash",
    max_distance: Annotated[int, Ge(0), Le(64)] | None = None,  # phash: Hamming bits, default 8
    min_similarity: Annotated[float, Gt(0), Le(1)] | None = None,  # semantic: cosine, default 0.95
    clusters: Annotated[int, Ge(1), Le(MAX_CLUSTERS)] | None = None,  # semantic: k-means, default 64
    model: str | None = None,  # semantic: a local open_clip folder, default models/clip
) -> StageResult:
    """Drop images close to one kept earlier (phash bits or CLIP cosine), naming it in duplicate_of."""
    given = {"max_distance": max_distance, "min_similarity": min_similarity, "clusters": clusters}
    try:  # a recipe checked this when it was read; a direct call is checked here
        _other_by({"by": by, **given, "model": model})
    except ValueError as exc:
        raise ConfigError(f"stage 'near_dedup': {exc}") from None
    ids = np.asarray(require(table, "row_id", ctx, "near_dedup").to_numpy(), dtype=np.int64)
    images = require(table, "image", ctx, "near_dedup", "near_dedup runs after download").to_pylist()
    state = stage_state(ctx, NearState)
    if by == "phash":
        sigs, ok = phash64(images)
        metric, k = phash_metric(MAX_DISTANCE if max_distance is None else max_distance), 1
    else:
        clip = ctx.state.get("clip")
        if clip is None:
            clip = ctx.state["clip"] = load_clip(model)
        sigs, ok = clip_embeddings(images, clip)
        metric = cosine_metric(MIN_SIMILARITY if min_similarity is None else min_similarity)
        k = CLUSTERS if clusters is None else clusters
    fit_at = k * FIT_PER_CLUSTER if k > 1 else None
    dup = np.zeros(len(ids), dtype=bool)
    best = np.zeros(len(ids), np.float32)
    ref = np.full(len(ids), -1, np.int64)
    order, start = np.flatnonzero(ok), 0
    while start < len(order):
        # before the fit, a block ends where the fit could fall, so it falls on the same row always
        size = BLOCK if fit_at is None or state.centroids is not None else min(BLOCK, fit_at - state.kept)
        size = max(size, 1)
        rows = order[start : start + size]
        start += size
        groups = state.groups(sigs[rows])
        dup[rows], best[rows], ref[rows] = decide_block(state, metric, sigs[rows], ids[rows], groups)
        stay = ~dup[rows]
        state.add(ids[rows][stay], sigs[rows][stay], groups[stay])
        if fit_at is not None and state.centroids is None and state.kept >= fit_at:
            state.fit(k)
    distance = metric.distance(best)
    examples = np.flatnonzero(dup)[: state.take_example(int(dup.sum()))]
    stats = {
        "examples": {
            str(ids[i]): {"duplicate_of": int(ref[i]), "distance": round(float(distance[i]), 4)}
            for i in examples
        }
    }
    keep, reason = decide(len(ids), [(~ok, "image_unreadable"), (dup, f"near_duplicate_{by}")])
    columns = {
        "duplicate_of": pa.array(ref, pa.int64(), mask=~dup),
        "duplicate_distance": pa.array(distance.astype(np.float32), pa.float32(), mask=~dup),
    }
    return StageResult(keep, reason, columns, stats if len(examples) else {})
