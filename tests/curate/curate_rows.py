"""Tiny LAION-style rows for curate tests (imported by conftest and tests)."""

from __future__ import annotations

from typing import Any

import mmh3
import pyarrow as pa

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
