"""Where things are in a world folder (docs/architecture.md, "World folder"), and reading them back."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from t2iscope.errors import DataError

WORLD_JSON = "world.json"


def shard_name(shard: int) -> str:
    return f"part-{shard:05d}.parquet"


def hash_hex(h: int) -> str:
    """A signed int64 LAION hash as 16 hex digits (its unsigned 64-bit value): image file stems."""
    return f"{h & 0xFFFFFFFFFFFFFFFF:016x}"


def image_path(world: str | os.PathLike[str], shard: int, h: int) -> Path:
    return Path(world) / "images" / f"{shard:05d}" / f"{hash_hex(h)}.png"


def read_world_json(world: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(world) / WORLD_JSON
    if not path.is_file():
        raise DataError(f"{world}: not a world folder (no {WORLD_JSON}); make one with 't2iscope world make'")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def read_table(world: str | os.PathLike[str], part: str, columns: list[str] | None = None) -> pa.Table:
    """All shards of ``part`` ("metadata" or "truth") as one table, in shard order."""
    read_world_json(world)
    files = sorted((Path(world) / part).glob("part-*.parquet"))
    if not files:
        raise DataError(f"{Path(world) / part}: no part-*.parquet shards")
    return pa.concat_tables(pq.read_table(f, columns=columns) for f in files)
