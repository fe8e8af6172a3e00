"""``dedup``: keep the first occurrence by LAION hash (URL+TEXT), by URL, or by image content.

Order matters, so the engine runs shards in input order and never pushes this stage past
another. The keys seen so far live in a :class:`KeySet` of sorted int64 chunks (8 bytes a
row, not a Python set's ~70), which the engine checkpoints per shard so a resumed run
deduplicates exactly like an uninterrupted one.

Every stateful stage (this one, ``near_dedup``) keeps its memory in ``ctx.state[STATE]``: a
:class:`Checkpointed` object that hands over what it added since the last checkpoint and takes
such a checkpoint back. :func:`save_keys` and :func:`restore_keys` are the engines' two calls.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol, TypeVar

import mmh3
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t2iscope.curate.operators import METADATA, PIXELS, StageContext, StageResult, decide, operator, require
from t2iscope.fileio import write_bytes

DedupKey = Literal["hash", "url", "image"]
STATE = "keys"  # ctx.state key of a stateful stage's Checkpointed memory
_RESTORED = "restored"  # ctx.state key: checkpoints read back before the stage first ran
Saved = np.ndarray | dict[str, np.ndarray]  # one array (np.save) or named arrays (np.savez)


class Checkpointed(Protocol):
    """A stateful stage's memory, checkpointed per unit (shard) by :func:`save_keys`."""

    def take_pending(self) -> Saved:
        """What was added since the last call, to save with the unit just finished."""
        ...

    def restore(self, saved: Saved) -> None:
        """Add back what ``take_pending`` returned for a finished unit (in an earlier process)."""
        ...


S = TypeVar("S", bound=Checkpointed)


def stage_state(ctx: StageContext, make: Callable[[], S]) -> S:
    """The stage's memory in ``ctx``: made on first use, with every checkpoint that
    :func:`restore_keys` read back before then (it cannot know which kind to make)."""
    state = ctx.state.get(STATE)
    if state is None:
        state = ctx.state[STATE] = make()
        for saved in ctx.state.pop(_RESTORED, []):
            state.restore(saved)
    return state


class KeySet:
    """Insert-only set of int64 keys: sorted chunks, merged when there are too many."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.pending: list[np.ndarray] = []  # keys added since the last checkpoint

    def contains(self, keys: np.ndarray) -> np.ndarray:
        found = np.zeros(len(keys), dtype=bool)
        for chunk in self.chunks:
            pos = np.searchsorted(chunk, keys).clip(max=len(chunk) - 1)
            found |= chunk[pos] == keys
        return found

    def add(self, keys: np.ndarray) -> None:
        if len(keys):
            self.pending.append(keys)
        self.restore(keys)

    def take_pending(self) -> np.ndarray:
        out = np.concatenate(self.pending) if self.pending else np.zeros(0, np.int64)
        self.pending = []
        return out

    def restore(self, saved: Saved) -> None:
        """Add keys that are already checkpointed (not pending)."""
        if len(saved):
            self.chunks.append(np.sort(np.asarray(saved, dtype=np.int64)))
        if len(self.chunks) > 8:
            self.chunks = [np.sort(np.concatenate(self.chunks))]


def save_keys(contexts: Sequence[StageContext], stateful: Sequence[int], folder: Path, unit: str) -> None:
    """Checkpoint ``unit`` (a shard): what each stateful stage added since the last checkpoint goes
    to ``folder/keys-<stage index>-<unit>.npy``, atomically, before the unit's marker is written.

    The file is ``np.save`` of a :class:`KeySet`'s keys or ``np.savez`` of a stage's named arrays;
    ``np.load`` reads either. A stage that has not run yet saves an empty array.
    """
    for i in stateful:
        state = contexts[i].state.get(STATE)
        saved = state.take_pending() if state is not None else np.zeros(0, np.int64)
        buf = io.BytesIO()
        if isinstance(saved, dict):
            np.savez(buf, **saved)
        else:
            np.save(buf, saved)
        write_bytes(folder / f"keys-{i}-{unit}.npy", buf.getvalue())


def restore_keys(contexts: Sequence[StageContext], stateful: Sequence[int], folder: Path, unit: str) -> None:
    """A resumed run's finished ``unit``: its checkpoint back into each stateful stage (the reverse
    of :func:`save_keys`), so rows of later units are deduplicated against it."""
    for i in stateful:
        saved = np.load(folder / f"keys-{i}-{unit}.npy")
        if isinstance(saved, np.lib.npyio.NpzFile):
            with saved:
                saved = dict(saved)
        state = contexts[i].state.get(STATE)
        if state is not None:
            state.restore(saved)
        else:
            contexts[i].state.setdefault(_RESTORED, []).append(saved)


def laion_hash(urls: list[str | None], texts: list[str | None]) -> np.ndarray:
    """LAION's ``hash`` column: mmh3 64-bit (first half, signed) of URL + TEXT."""
    return np.array(
        [mmh3.hash64((u or "") + (t or ""))[0] for u, t in zip(urls, texts, strict=True)], dtype=np.int64
    )


class KnownDuplicates:
    """A dedup stage's memory when a global key pass has already found every later occurrence.

    ``engine_ray`` groups the keys of every row that reaches the stage, over all shards, and
    hands each shard the positions (among the rows reaching the stage in that shard, as
    ``StageContext.position`` counts them) of its rows whose key occurred earlier in the run.
    :func:`dedup` asks ``contains`` only about a batch's first occurrences: such a row is a
    duplicate exactly when its position is listed. Nothing is added or checkpointed.
    """

    def __init__(self, ctx: StageContext, positions: np.ndarray) -> None:
        self.ctx = ctx
        self.positions = np.sort(np.asarray(positions, dtype=np.int64))

    def contains(self, keys: np.ndarray) -> np.ndarray:
        at = self.ctx.position + np.arange(len(keys), dtype=np.int64)
        return np.isin(at, self.positions, assume_unique=True)

    def add(self, keys: np.ndarray) -> None:
        """Nothing to remember: the key pass saw every row."""

    def take_pending(self) -> np.ndarray:
        return np.zeros(0, np.int64)

    def restore(self, saved: Saved) -> None:
        """Nothing to restore: the key pass saw every row, finished shards included."""


def dedup_keys(table: pa.Table, ctx: StageContext, by: DedupKey = "hash") -> np.ndarray:
    """The int64 key :func:`dedup` compares each row of ``table`` by (its ``Operator.keys``)."""
    return _keys(table, ctx, by)[0]


def _keys(table: pa.Table, ctx: StageContext, by: DedupKey) -> tuple[np.ndarray, dict[str, pa.Array]]:
    if by == "hash":
        if "hash" in table.column_names and not table.column("hash").null_count:
            return np.asarray(pc.cast(table.column("hash"), pa.int64()).to_numpy(), dtype=np.int64), {}
        url, text = require(table, "URL", ctx, "dedup"), require(table, "TEXT", ctx, "dedup")
        keys = laion_hash(url.to_pylist(), text.to_pylist())
        return keys, {"hash": pa.array(keys)}
    if by == "url":
        urls = require(table, "URL", ctx, "dedup").to_pylist()
        return np.array([mmh3.hash64(u or "")[0] for u in urls], dtype=np.int64), {}
    images = require(table, "image", ctx, "dedup", "dedup by image runs after download").to_pylist()
    digests = [hashlib.sha256(b or b"").digest()[:8] for b in images]
    return np.frombuffer(b"".join(digests), dtype=np.int64).copy(), {}


@operator("dedup", phases=(METADATA, PIXELS), outputs={"hash": pa.int64()}, stateful=True, keys=dedup_keys)
def dedup(table: pa.Table, ctx: StageContext, by: DedupKey = "hash") -> StageResult:
    """Drop rows whose key (``hash``, ``url`` or ``image``) was seen earlier in the run."""
    keys, cols = _keys(table, ctx, by)
    seen = stage_state(ctx, KeySet)
    first = np.zeros(len(keys), dtype=bool)
    first[np.unique(keys, return_index=True)[1]] = True
    fresh = first & ~seen.contains(keys)
    seen.add(keys[fresh])
    keep, reason = decide(table.num_rows, [(~fresh, f"duplicate_{by}")])
    return StageResult(keep, reason, cols)
