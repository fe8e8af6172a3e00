"""Locate the parquet inputs audits read: datasets, curation runs (kept + dropped), worlds.

A curation run drops each row at exactly one stage, so the rows that *reached* stage s are the
kept rows plus those dropped at s or later; per-group pass rates follow from counts alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from t2iscope.errors import DataError


def parquet_files(path: str | Path) -> list[str]:
    """Every parquet file at ``path`` (a file, or a folder searched recursively), sorted."""
    p = Path(path)
    if p.is_file():
        return [str(p)]
    if p.is_dir():
        files = sorted(str(f) for f in p.rglob("*.parquet") if not f.name.startswith("."))
        if files:
            return files
        raise DataError(f"{p}: no parquet files found")
    raise DataError(f"{p}: not found")


def columns(files: list[str]) -> list[str]:
    """Column names of a parquet set (the union DuckDB sees)."""
    rel = duckdb.sql(f"SELECT * FROM read_parquet({files!r}, union_by_name=true) LIMIT 0")
    return list(rel.columns)


def pick_column(files: list[str], *names: str) -> str:
    """The first of ``names`` present (case-insensitive), else DataError naming the files."""
    cols = columns(files)
    lower = {c.lower(): c for c in cols}
    for name in names:
        if name.lower() in lower:
            return lower[name.lower()]
    raise DataError(
        f"{Path(files[0]).parent}: needs one of the columns {', '.join(names)}; has {', '.join(cols)}"
    )


@dataclass(frozen=True)
class CurationRun:
    """A curation run folder: kept and dropped shards and the order its stages ran in."""

    root: Path
    kept: list[str]
    dropped: list[str]
    stages: list[str]

    @classmethod
    def open(cls, root: str | Path) -> CurationRun:
        r = Path(root)
        if not r.is_dir():
            raise DataError(f"{r}: curation run folder not found")
        kept = parquet_files(r / "kept") if (r / "kept").is_dir() else []
        dropped = parquet_files(r / "dropped") if (r / "dropped").is_dir() else []
        if not kept and not dropped:
            raise DataError(f"{r}: not a curation run (no kept/ or dropped/ parquet)")
        return cls(r, kept, dropped, _stage_order(r, dropped))

    def all_files(self) -> list[str]:
        return self.kept + self.dropped


def _stage_order(root: Path, dropped: list[str]) -> list[str]:
    """Stage names in run order: from stats.json when it lists them, else as first seen in dropped."""
    stats = root / "stats.json"
    order: list[str] = []
    if stats.is_file():
        try:
            data = json.loads(stats.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{stats}: not valid JSON ({exc.msg})") from None
        stages = data.get("stages", []) if isinstance(data, dict) else []
        if isinstance(stages, dict):
            order = list(stages)
        else:
            order = [s.get("name", s.get("stage")) if isinstance(s, dict) else str(s) for s in stages]
    if dropped:
        seen = duckdb.sql(
            f"SELECT stage, min(file_row_number + 0) AS first, min(filename) AS f FROM "
            f"read_parquet({dropped!r}, filename=true, file_row_number=true, union_by_name=true) "
            "GROUP BY stage ORDER BY f, first"
        ).fetchall()
        order += [str(s) for s, _, _ in seen if str(s) not in order]
    return [s for s in order if s]
