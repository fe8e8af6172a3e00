"""Input files -> DuckDB relations with LAION's column names, checked before any row is read.

Inputs are a file, a folder (a world folder means its ``metadata/``), a glob or an fsspec URL,
in parquet, csv, tsv or jsonl as img2dataset reads them (``.gz`` allowed). Each file is one
shard: the unit of streaming, output and resume.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from t2iscope.curate.schema import LAION_COLUMNS, REQUIRED, canonical_names, type_family
from t2iscope.curate.urls import register_duckdb
from t2iscope.errors import DataError
from t2iscope.sql import Params, ident

FORMATS = {".parquet": "parquet", ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}
# Prefix of the engine's own columns (verdicts, row numbers) inside its queries; an input column
# with it would be taken for one of them (DuckDB matches names case-insensitively).
INTERNAL_PREFIX = "__t2i_"


@dataclass(frozen=True)
class InputShard:
    index: int
    path: str  # local path or fsspec URL
    format: str
    size: int

    def relation(self, bind: Params, row_numbers: bool = False) -> str:
        """The DuckDB table function that reads this shard, its path bound through ``bind``.

        Parquet can add ``file_row_number``.
        """
        path = bind(self.path)
        if self.format == "parquet":
            return f"read_parquet({path}, file_row_number = true)" if row_numbers else f"read_parquet({path})"
        if self.format in ("csv", "tsv"):
            delim = bind("\t" if self.format == "tsv" else ",")
            return f"read_csv({path}, header = true, delim = {delim}, sample_size = -1)"
        return f"read_json({path}, format = 'newline_delimited', sample_size = -1)"


def _format(name: str) -> str | None:
    stem = name[:-3] if name.endswith(".gz") else name
    return FORMATS.get(os.path.splitext(stem)[1].lower())


def is_url(spec: str) -> bool:
    return "://" in spec and not spec.startswith("file://")


def resolve_inputs(spec: str) -> list[InputShard]:
    """Every input file of ``spec`` in sorted order; DataError when there is none."""
    if is_url(spec):
        import fsspec

        fs, root = fsspec.core.url_to_fs(spec)
        proto = spec.split("://", 1)[0]
        found = sorted(fs.find(root) if fs.isdir(root) else fs.glob(root))
        files = [
            (f"{proto}://{p.lstrip('/')}" if proto == "memory" else f"{proto}://{p}", fs.size(p))
            for p in found
        ]
    else:
        spec = spec.removeprefix("file://")
        path = Path(spec)
        if path.is_dir():
            if (path / "world.json").exists() and (path / "metadata").is_dir():
                path = path / "metadata"
            names = sorted(str(p) for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            names = [str(path)]
        else:
            names = sorted(glob.glob(spec, recursive=True))
        files = [(n, os.path.getsize(n)) for n in names]
    shards = [(p, _format(p), size) for p, size in files]
    shards = [(p, f, size) for p, f, size in shards if f is not None]
    if not shards:
        raise DataError(f"{spec}: no input files (looked for {', '.join(sorted(FORMATS))}, optionally .gz)")
    return [InputShard(i, p, f, size) for i, (p, f, size) in enumerate(shards)]


def connect(
    threads: int | None = None, memory_limit: str = "2GB", spec: str | None = None
) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"threads": threads or os.cpu_count() or 1, "memory_limit": memory_limit})
    configure(con, spec)
    return con


def configure(con: duckdb.DuckDBPyConnection, spec: str | None = None) -> None:
    """Per-connection settings (also applied to each worker thread's cursor)."""
    con.execute("SET preserve_insertion_order = true")
    # Parquet writers leave NaN out of column statistics, and DuckDB's statistics propagation then
    # folds isnan(col) to false: NaN sizes would pass size checks silently. Measured: no cost.
    con.execute("SET disabled_optimizers = 'statistics_propagation'")
    register_duckdb(con)  # t2i_url_problem(): validity's URL rule is curate.urls' parser
    if spec and is_url(spec):
        import fsspec

        con.register_filesystem(fsspec.filesystem(spec.split("://", 1)[0]))


def duck_error(shard: InputShard, exc: Exception) -> DataError:
    first = " ".join(str(exc).split())[:300]
    return DataError(f"{shard.path}: cannot read as {shard.format} ({first})")


def select_list(con: duckdb.DuckDBPyConnection, shard: InputShard) -> tuple[str, list[str]]:
    """SQL select list renaming columns to LAION's names, and those names; DataError on bad schema."""
    if shard.size == 0:
        raise DataError(f"{shard.path}: file is empty")
    bind = Params()
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {shard.relation(bind)}", bind.values).fetchall()
    except duckdb.Error as exc:
        raise duck_error(shard, exc) from None
    types = {row[0]: str(row[1]) for row in described}
    internal = [c for c in types if c.lower().startswith(INTERNAL_PREFIX)]
    if internal:
        raise DataError(
            f"{shard.path}: column {internal[0]} uses the prefix {INTERNAL_PREFIX}, kept for the engine"
        )
    names = canonical_names(list(types))
    by_target = {target: src for src, target in names.items()}
    for col in REQUIRED:
        if col not in by_target:
            raise DataError(f"{shard.path}: missing required column {col} (has: {', '.join(types)})")
    for target, src in by_target.items():
        want = LAION_COLUMNS.get(target)
        if want and type_family(types[src]) != want:
            raise DataError(f"{shard.path}: column {src} has type {types[src]}, expected a {want}")
    try:
        parts = [ident(src) if src == dst else f"{ident(src)} AS {ident(dst)}" for src, dst in names.items()]
    except ValueError as exc:
        raise DataError(f"{shard.path}: a column name cannot be used ({exc})") from None
    return ", ".join(parts), list(names.values())
