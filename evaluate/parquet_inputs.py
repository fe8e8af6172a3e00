"""Locate the parquet inputs audits read: datasets, curation runs (kept + dropped), worlds.

A curation run drops each row at exactly one stage, so the rows that *reached* stage s are the
kept rows plus those dropped at s or later; per-group pass rates follow from counts alone. A run
written with ``dropped: keys`` or ``none`` has lean or no dropped files; its stats.json still
counts every stage's drops, which is what audits fall back on.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t2iscope.errors import DataError
from t2iscope.sql import file_names, open_duckdb


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
    with open_duckdb() as con:
        return list(con.read_parquet(file_names(files), union_by_name=True).columns)


def pick_column(files: list[str], *names: str) -> str:
    """The first of ``names`` present (case-insensitive), else DataError naming the files."""
    cols = columns(files)
    lower = {c.lower(): c for c in cols}
    for name in names:
        if name.lower() in lower:
            return lower[name.lower()]
    wanted = ", ".join(names)
    raise DataError(f"{files_label(files)}: needs one of the columns {wanted}; has {', '.join(cols)}")


def files_label(files: list[str]) -> str:
    """How errors name a parquet set: the file itself, or the folder that holds them all."""
    return files[0] if len(files) == 1 else os.path.commonpath(files)


@dataclass(frozen=True)
class CurationRun:
    """A curation run folder: kept and dropped shards and the order its stages ran in.

    ``dropped_mode`` is the run's ``dropped`` setting (full when stats.json predates it);
    ``stage_drops`` the rows each stage dropped per stats.json, where it says.
    """

    root: Path
    kept: list[str]
    dropped: list[str]
    stages: list[str]
    dropped_mode: str = "full"
    stage_drops: dict[str, int] = field(default_factory=dict)

    @classmethod
    def open(cls, root: str | Path) -> CurationRun:
        r = Path(root)
        kept, dropped = curation_parts(r)
        stats = _stats(r)
        order = _stage_order(_stats_stages(stats), dropped)
        return cls(r, kept, dropped, order, str(stats.get("dropped", "full")), _stage_drops(stats))

    def all_files(self) -> list[str]:
        return self.kept + self.dropped


def curation_parts(root: str | Path) -> tuple[list[str], list[str]]:
    """(kept, dropped) parquet files of a curate run folder; DataError when it is not one.

    Looks at the file system only, so AUDIT.yaml's inputs are checked with it before any work.
    """
    r = Path(root)
    if not r.is_dir():
        raise DataError(f"{r}: curation run folder not found")
    kept = parquet_files(r / "kept") if (r / "kept").is_dir() else []
    dropped = parquet_files(r / "dropped") if (r / "dropped").is_dir() else []
    if not kept and not dropped:
        raise DataError(f"{r}: not a curation run (no kept/ or dropped/ parquet)")
    return kept, dropped


def _stats(root: Path) -> dict[str, Any]:
    path = root / "stats.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg})") from None
    return data if isinstance(data, dict) else {}


def _stats_stages(stats: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, entry) per stage of stats.json, whether it lists them or maps name -> entry."""
    stages = stats.get("stages", [])
    if isinstance(stages, dict):
        return list(stages.items())
    if not isinstance(stages, list):
        return []
    return [(s.get("name", s.get("stage")) if isinstance(s, dict) else str(s), s) for s in stages]


def _stage_drops(stats: dict[str, Any]) -> dict[str, int]:
    drops = {}
    for name, s in _stats_stages(stats):
        if isinstance(s, dict) and isinstance(s.get("rows_in"), int) and isinstance(s.get("rows_out"), int):
            drops[str(name)] = s["rows_in"] - s["rows_out"]
    return drops


def _stage_order(stages: list[tuple[str, Any]], dropped: list[str]) -> list[str]:
    """Stage names in run order: from stats.json when it lists them, else as first seen in dropped."""
    order: list[str] = [name for name, _ in stages]
    if dropped:
        with open_duckdb() as con:
            seen = con.execute(
                "SELECT stage, min(file_row_number + 0) AS first, min(filename) AS f FROM "
                "read_parquet($files, filename=true, file_row_number=true, union_by_name=true) "
                "GROUP BY stage ORDER BY f, first",
                {"files": file_names(dropped)},
            ).fetchall()
        order += [str(s) for s, _, _ in seen if str(s) not in order]
    return [s for s in order if s]
