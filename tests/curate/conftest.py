"""Fixtures for curate tests: input folders written on the fly from tiny tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


@pytest.fixture
def write_shards(tmp_path: Path) -> Callable[..., Path]:
    """Write tables as input shards part-0.parquet, part-1.parquet, ... into a fresh folder."""

    def write(*tables: pa.Table, name: str = "input") -> Path:
        folder = tmp_path / name
        folder.mkdir()
        for i, table in enumerate(tables):
            pq.write_table(table, folder / f"part-{i}.parquet")
        return folder

    return write
