"""Input files -> DuckDB relations with LAION's column names, checked before any row is read.

Inputs are a file, a folder (a world folder means its ``metadata/``), a glob or an fsspec URL,
in every format img2dataset reads, told by the file name: ``.txt`` (one URL per line, no header,
no caption: TEXT is null), ``.csv`` and ``.tsv`` (with a header), ``.json`` (a JSON array of
objects, as img2dataset reads it, or JSON lines: DuckDB tells them apart by content, so ``.json``
files of JSON lines still read), ``.jsonl`` (JSON lines) and ``.parquet``; each text format also
gzip-compressed (``.csv.gz``; img2dataset allows no ``.parquet.gz``, nor does DuckDB). Every
format streams: no file is loaded whole. Each file is one shard: the unit of streaming, output and
resume.
"""

from __future__ import annotations

import csv
import glob
import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from t2iscope.curate.schema import CLASH_PREFIX, LAION_COLUMNS, REQUIRED, canonical_names, type_family
from t2iscope.curate.urls import register_duckdb
from t2iscope.errors import ConfigError, DataError
from t2iscope.sql import Params, file_name, ident, open_duckdb, out_name

FORMATS = {
    ".parquet": "parquet",
    ".csv": "csv",
    ".tsv": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".txt": "txt",
}
# A txt line is one URL, as written: a delimiter no text line holds, no quoting.
TXT_DELIMITER = "\0"
# Prefix of the engine's own columns (verdicts, row numbers) inside its queries; an input column
# with it would be taken for one of them (DuckDB matches names case-insensitively).
INTERNAL_PREFIX = "__t2i_"


@dataclass(frozen=True)
class InputShard:
    index: int
    path: str  # local path or fsspec URL
    format: str
    size: int
    # The recipe's ``columns:`` as (LAION name, the input's column) pairs: read before ALIASES.
    columns: tuple[tuple[str, str], ...] = ()
    # Last modification in ns since the epoch (None where the file system does not say): with the
    # size, how a resumed run tells that a finished shard's file was rewritten.
    modified: int | None = None

    def relation(self, bind: Params) -> str:
        """The DuckDB table function that reads this shard, its path bound through ``bind``."""
        path = bind(file_name(self.path))  # the file itself, however its name reads as a glob
        if self.format == "parquet":
            return f"read_parquet({path})"
        if self.format in ("csv", "tsv"):
            delim = bind("\t" if self.format == "tsv" else ",")
            return f"read_csv({path}, header = true, delim = {delim}, sample_size = -1)"
        if self.format == "txt":
            lines = (
                f"read_csv({path}, header = false, auto_detect = false, columns = {{'URL': 'VARCHAR'}}, "
                f"delim = {bind(TXT_DELIMITER)}, quote = '', escape = '')"
            )
            return f"(SELECT {ident('URL')}, CAST(NULL AS VARCHAR) AS {ident('TEXT')} FROM {lines})"
        # 'auto': a JSON array or JSON lines, by the file's first character
        return f"read_json({path}, format = 'auto', sample_size = -1)"


def _format(name: str) -> str | None:
    stem, gz = (name[:-3], True) if name.endswith(".gz") else (name, False)  # as DuckDB tells
    found = FORMATS.get(os.path.splitext(stem)[1].lower())
    return None if gz and found == "parquet" else found


def is_url(spec: str) -> bool:
    return "://" in spec and not spec.startswith("file://")


def resolve_inputs(spec: str, columns: Mapping[str, str] | None = None) -> list[InputShard]:
    """Every input file of ``spec`` in sorted order, read with a recipe's ``columns`` (LAION name ->
    the input's column); DataError when there is none."""
    if is_url(spec):
        import fsspec

        fs, root = fsspec.core.url_to_fs(spec)
        proto = spec.split("://", 1)[0]
        folder = fs.isdir(root)
        found = sorted(fs.find(root) if folder else fs.glob(root))
        files = [
            (
                f"{proto}://{p.lstrip('/')}" if proto == "memory" else f"{proto}://{p}",
                fs.size(p),
                _modified(fs, p),
            )
            for p in found
        ]
    else:
        spec = spec.removeprefix("file://")
        path = Path(spec)
        folder = path.is_dir()
        if folder:
            if (path / "world.json").exists() and (path / "metadata").is_dir():
                path = path / "metadata"
            names = sorted(str(p) for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            names = [str(path)]
        else:
            names = sorted(glob.glob(spec, recursive=True))
        files = [(n, (st := os.stat(n)).st_size, st.st_mtime_ns) for n in names]
    shards = [(p, _format(p), size, modified) for p, size, modified in files]
    shards = [(p, f, size, modified) for p, f, size, modified in shards if f is not None]
    if not shards:
        looked = ", ".join(sorted(FORMATS))
        raise DataError(f"{spec}: no input files (looked for {looked}, each but .parquet optionally .gz)")
    # A folder is read whole, so a README.txt or stats.json beside its shards would become rows
    # (img2dataset reads one format per run); a glob says which files it means.
    formats = Counter(f for _, f, _, _ in shards)
    if folder and len(formats) > 1:
        found = ", ".join(f"{n} {f}" for f, n in sorted(formats.items()))
        raise DataError(
            f"{spec}: holds input files of several formats ({found}); name one with a glob such as "
            f"'{spec.rstrip('/')}/*.{formats.most_common(1)[0][0]}'"
        )
    mapping = tuple((columns or {}).items())
    return [InputShard(i, p, f, size, mapping, modified) for i, (p, f, size, modified) in enumerate(shards)]


def _modified(fs: Any, path: str) -> int | None:
    """``path``'s modification time in ns on an fsspec file system, None where it keeps none."""
    try:
        return int(fs.modified(path).timestamp() * 1e9)
    except (NotImplementedError, AttributeError, KeyError, OSError, ValueError):
        return None


# Half of the RAM DuckDB sees (cgroup limits included), where DuckDB's own default is 80%: a run
# also holds Arrow batches and Python stages (language ID, dedup keys) outside DuckDB's limit.
DEFAULT_MEMORY_LIMIT = "50%"
MIN_MEMORY_BYTES = 128 * 2**20  # below this DuckDB fails queries of a few threads outright
_UNITS = {"kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30}
_UNITS["tib"] = 2**40
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(%|[kmgt]i?b)", re.IGNORECASE)


def check_memory_limit(text: str) -> str:
    """``text`` as DuckDB's ``memory_limit``: ``<number><unit>`` (KB..TB for 1000^i bytes, KiB..TiB
    for 1024^i) or ``<percent>%`` of the RAM DuckDB sees, between 128 MiB and that RAM.

    Raises ConfigError (one line) for anything else.
    """
    import psutil

    match = _SIZE.fullmatch(text.strip())
    ram = psutil.virtual_memory().total
    if match:
        number, unit = float(match[1]), match[2].lower()
        size = ram * number / 100 if unit == "%" else number * _UNITS[unit]
        if MIN_MEMORY_BYTES <= size <= ram:
            return f"{match[1]}{match[2]}"
    raise ConfigError(
        f"--memory-limit {text!r}: expected a size such as 4GB, 512MiB or 50% (of RAM), "
        f"from 128MiB to this machine's {ram / 2**30:.1f}GiB"
    )


def check_temp_directory(path: str | os.PathLike[str]) -> Path:
    """``path`` as DuckDB's spill folder: a local folder, created when DuckDB first spills.

    Raises ConfigError when it is a file or not a local path.
    """
    text = os.fspath(path)
    if "\0" in text or is_url(text) or not text.strip():
        raise ConfigError(f"--temp-directory {text!r}: expected a local folder")
    folder = Path(text)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--temp-directory {text}: exists and is not a folder")
    return folder


def connect(
    threads: int | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    spec: str | None = None,
    temp_directory: str | os.PathLike[str] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A curation connection: ``threads`` (default: all cores), ``memory_limit`` (a checked
    :func:`check_memory_limit` string) and the folder DuckDB spills to past it (default: DuckDB's
    ``.tmp`` in the working folder; ``curate run`` passes one inside the run's ``_state``)."""
    config = {"threads": threads or os.cpu_count() or 1, "memory_limit": memory_limit}
    if temp_directory is not None:
        config["temp_directory"] = out_name(temp_directory)  # a config value, not SQL text
    con = open_duckdb(config=config)
    configure(con, spec)
    return con


def configure(con: duckdb.DuckDBPyConnection, spec: str | None = None) -> None:
    """Per-connection settings (also applied to each worker thread's cursor)."""
    # Row order in = row order out: outputs are deterministic, and the engine matches its verdicts
    # to the rows they judge by position.
    con.execute("SET preserve_insertion_order = true")
    con.execute("SET enable_progress_bar = false")  # DuckDB would draw its own bar over tqdm's
    # Parquet writers leave NaN out of column statistics, and DuckDB's statistics propagation then
    # folds isnan(col) to false: NaN sizes would pass size checks silently. Measured: no cost.
    con.execute("SET disabled_optimizers = 'statistics_propagation'")
    register_duckdb(con)  # t2i_url_problem(): validity's URL rule is curate.urls' parser
    if spec and is_url(spec):
        import fsspec

        con.register_filesystem(fsspec.filesystem(spec.split("://", 1)[0]))


def duck_error(shard: InputShard, exc: Exception) -> DataError:
    """DuckDB's failure on ``shard`` as one line; a csv/tsv row with the wrong number of fields is
    named by its row and line (DuckDB's sniffer reports only that it found no dialect)."""
    if shard.format in ("csv", "tsv"):
        problem = ragged_row(shard)
        if problem:
            return DataError(f"{shard.path}: {problem}")
    # DuckDB echoes our query after its message ("LINE 1: ..."): the user's file is the news.
    first = " ".join(re.split(r"\n\s*LINE \d+:", str(exc))[0].split())[:300]
    return DataError(f"{shard.path}: cannot read as {shard.format} ({first})")


def ragged_row(shard: InputShard, columns: int | None = None) -> str | None:
    """The first row of a csv/tsv shard whose field count differs from its header's, or None.

    With ``columns`` (the count DuckDB found) only the header is read when it agrees: DuckDB's
    sniffer takes a ragged file's widest row for its header. Otherwise reads the file as text,
    streaming (``.gz`` and fsspec URLs too).
    """
    import fsspec

    delimiter = "\t" if shard.format == "tsv" else ","
    try:
        with fsspec.open(shard.path, "rt", encoding="utf-8", compression="infer", newline="") as fh:
            rows = csv.reader(fh, delimiter=delimiter)
            header = next(rows, None)
            if not header or len(header) == columns:
                return None
            for number, row in enumerate(rows, start=1):
                if row and len(row) != len(header):
                    return (
                        f"row {number} (line {rows.line_num}) has {len(row)} fields, "
                        f"the header has {len(header)}"
                    )
    except (OSError, UnicodeDecodeError, csv.Error):
        return None  # not a field-count problem: DuckDB's own message says more
    return None


def _unclosed_array(shard: InputShard) -> bool:
    """Whether ``shard`` opens a JSON array it never closes: DuckDB reads one cut after an element's
    comma as if whole. Reads the file's two ends; a ``.gz`` stream's own check catches a cut there."""
    import fsspec

    if shard.path.endswith(".gz"):
        return False
    with fsspec.open(shard.path, "rb") as fh:
        if not fh.read(64).lstrip().startswith(b"["):
            return False
        fh.seek(max(shard.size - 64, 0))
        return not fh.read().rstrip().endswith(b"]")


def select_list(con: duckdb.DuckDBPyConnection, shard: InputShard) -> tuple[str, list[str]]:
    """SQL select list renaming columns to LAION's names (the recipe's ``columns:`` first, then
    :data:`~t2iscope.curate.schema.ALIASES`), and those names.

    Raises DataError naming the file for an unreadable or empty file, a missing required column, a
    column the recipe's ``columns:`` names that the file lacks, and a LAION column of the wrong type.
    """
    if shard.size == 0:
        raise DataError(f"{shard.path}: file is empty")
    bind = Params()
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {shard.relation(bind)}", bind.values).fetchall()
    except duckdb.Error as exc:
        raise duck_error(shard, exc) from None
    types = {row[0]: str(row[1]) for row in described}
    if shard.format in ("csv", "tsv") and (problem := ragged_row(shard, len(types))):
        raise DataError(f"{shard.path}: {problem}")
    if shard.format in ("json", "jsonl") and _unclosed_array(shard):
        raise DataError(f"{shard.path}: a JSON array without its closing ']' (cut short?)")
    internal = [c for c in types if c.lower().startswith(INTERNAL_PREFIX)]
    if internal:
        raise DataError(
            f"{shard.path}: column {internal[0]} uses the prefix {INTERNAL_PREFIX}, kept for the engine"
        )
    names = canonical_names(list(types), _mapped(shard, list(types)))
    by_target = {target: src for src, target in names.items()}
    lower = [target.lower() for target in names.values()]
    for src, target in names.items():
        if target.startswith(CLASH_PREFIX) and src != target and lower.count(target.lower()) > 1:
            owner = next((s for s, t in names.items() if s != src and t.lower() == src.lower()), None)
            why = f"{owner} is read as {names[owner]}" if owner else f"the run writes its own {src.lower()}"
            raise DataError(
                f"{shard.path}: column {src} is renamed {target} ({why}), "
                f"but the file has {target} too; rename one of them"
            )
    for col in REQUIRED:
        if col not in by_target:
            if shard.format in ("json", "jsonl") and list(types) == ["json"]:  # DuckDB's name for them
                raise DataError(
                    f"{shard.path}: holds JSON values that are not objects; expected a JSON array of "
                    "objects or one object per line"
                )
            raise DataError(f"{shard.path}: missing required column {col} (has: {', '.join(types)})")
    for target, src in by_target.items():
        want = LAION_COLUMNS.get(target)
        if want and type_family(types[src]) != want:
            read_as = "" if src == target else f" (read as {target})"
            raise DataError(f"{shard.path}: column {src}{read_as} has type {types[src]}, expected a {want}")
    try:
        parts = [ident(src) if src == dst else f"{ident(src)} AS {ident(dst)}" for src, dst in names.items()]
    except ValueError as exc:
        raise DataError(f"{shard.path}: a column name cannot be used ({exc})") from None
    return ", ".join(parts), list(names.values())


def _mapped(shard: InputShard, columns: list[str]) -> dict[str, str]:
    """The recipe's ``columns:`` with each column as the file spells it (DuckDB matches names
    case-insensitively); DataError naming the file and the first column it lacks."""
    found: dict[str, str] = {}
    for laion, wanted in shard.columns:
        match = (
            wanted if wanted in columns else next((c for c in columns if c.lower() == wanted.lower()), None)
        )
        if match is None:
            raise DataError(
                f"{shard.path}: missing column {wanted}, which the recipe's columns.{laion} names "
                f"(has: {', '.join(columns)})"
            )
        found[laion] = match
    return found
