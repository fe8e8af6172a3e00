"""Tiny LAION-style rows for curate tests (imported by conftest and tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mmh3
import pyarrow as pa
import pyarrow.parquet as pq

from t2iscope.curate.recipe import recipe_from_dict


def laion_table(n: int = 12, **overrides: list[Any]) -> pa.Table:
    """``n`` plausible rows (varied sizes and scores) with LAION's columns; override any column."""
    cols: dict[str, list[Any]] = {
        "URL": [f"https://img{i % 3}.example{i % 4}.com/p/{i:04d}.jpg" for i in range(n)],
        "TEXT": [f"a photo of a red dog number {i} on the grass" for i in range(n)],
        "WIDTH": [256 + 128 * (i % 8) for i in range(n)],
        "HEIGHT": [256 + 96 * (i % 7) for i in range(n)],
        "pwatermark": [round((i * 0.37) % 1.0, 3) for i in range(n)],
        "punsafe": [round((i * 0.53) % 1.0, 3) for i in range(n)],
        "AESTHETIC_SCORE": [round(3.5 + (i * 0.61) % 4.0, 3) for i in range(n)],
    }
    cols.update(overrides)
    cols["hash"] = [
        mmh3.hash64((u or "") + (t or ""))[0] for u, t in zip(cols["URL"], cols["TEXT"], strict=True)
    ]
    return pa.table(cols)


# Pushed-down stages, then language, dedup and domain in Arrow: exercises both engine paths.
MIXED_RECIPE = recipe_from_dict(
    {
        "name": "mix",
        "stages": [
            {"resolution": {"min_side": 300}},
            {"language": {"keep": ["en"]}},
            {"dedup": {"by": "url"}},
            {"unsafe": {"max_score": 0.9}},
            "domain",
        ],
    },
    "mix.yaml",
)


def pushdown_reasons(
    tmp_path: Path, name: str, params: dict, table: pa.Table, state: dict | None = None
) -> list[str | None]:
    """The reason the engine gives each row of ``table`` with stage ``name`` inside its DuckDB query
    over a parquet file (``state``: the stage's run state, e.g. a resolved cutoff); None = kept."""
    from t2iscope.curate.engine_local import LocalEngine
    from t2iscope.curate.operators import METADATA, StageContext
    from t2iscope.curate.readers import resolve_inputs
    from t2iscope.curate.recipe import Stage

    src = tmp_path / "pushdown.parquet"
    pq.write_table(table.append_column("row", pa.array(range(table.num_rows))), src)
    engine = LocalEngine(threads=1)
    try:
        result = engine.run_shard(
            resolve_inputs(str(src))[0],
            [Stage(name, params)],
            [StageContext("", METADATA, dict(state or {}))],
            tmp_path / "kept.parquet",
            tmp_path / "dropped.parquet",
        )
    finally:
        engine.close()
    assert result["stages"][0]["pushed_down"]
    dropped = pq.read_table(tmp_path / "dropped.parquet")
    by_row = dict(zip(dropped.column("row").to_pylist(), dropped.column("reason").to_pylist(), strict=True))
    return [by_row.get(i) for i in range(table.num_rows)]
