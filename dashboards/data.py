"""Every query the dashboards run: DuckDB over the runs' parquet, parameterised and cached.

Pages never read data themselves; they call these functions, so a page paints from a few
aggregate queries (counts, histograms, top-N) and a small sample, never from a full table load.
User values (filter choices, search text) always travel as ``?`` parameters; column names come
only from the table's own schema (``_column`` refuses anything else), so no value is ever
spliced into SQL text. Results are cached with ``st.cache_data`` keyed on the arguments.

Run folders come from anywhere, so every failure is one ``DataError`` line that names the file
(``name()`` writes a path with control characters escaped), and a manifest's ``image_path`` is
served only when it resolves inside the runs folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import streamlit as st

from t2iscope.dashboards.images import inside
from t2iscope.errors import DataError
from t2iscope.evaluate.folder import read_record, read_table, table_name
from t2iscope.evaluate.tables import CORE
from t2iscope.generate.limits import A1111_NUMBER_COLUMNS, A1111_TEXT_COLUMNS
from t2iscope.sql import file_name, file_names, ident, open_duckdb

NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "FLOAT", "DOUBLE", "DECIMAL", "UBIGINT")
SCORE_COLUMNS = (
    "AESTHETIC_SCORE",
    "aesthetic_score",
    "similarity",
    "pwatermark",
    "watermark_score",
    "punsafe",
    "lang_score",
)
TTL = 60  # seconds: a run that is still being written shows up within a minute


@dataclass(frozen=True)
class Dataset:
    """An explorable table of image-caption rows: a world's metadata or a curation run's kept rows."""

    kind: str  # "world" or "curation"
    path: str


@dataclass(frozen=True)
class Filters:
    """What the explorer's sidebar selects; empty fields select everything."""

    languages: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    min_width: int = 0
    min_height: int = 0
    ranges: tuple[tuple[str, float, float], ...] = ()  # (score column, low, high), inclusive
    text: str = ""  # caption substring, case-insensitive


def name(path: str | Path) -> str:
    """A path (or any file-borne text) for a one-line message: control characters escaped."""
    text = str(path)
    return text if text.isprintable() else repr(text)[1:-1]


def _files(folder: Path) -> list[str]:
    """The folder's parquet files, ready to bind as ``read_parquet``'s file list."""
    return file_names(sorted(p for p in folder.glob("*.parquet") if p.is_file()))


def _base(ds: Dataset, domain: bool = True) -> tuple[str, list[Any]]:
    """SQL for the dataset's rows and its parameters (the file lists).

    A world's domain lives in its truth table; joining it costs most of a query's time on a
    million rows, so queries that do not touch ``domain`` ask for ``domain=False``.
    """
    root = Path(ds.path)
    if ds.kind == "curation":
        kept = _files(root / "kept")
        if not kept:
            raise DataError(f"{name(root)}: no kept/*.parquet; the curation run is missing its output table")
        return "SELECT * FROM read_parquet(?, union_by_name = true)", [kept]
    meta = _files(root / "metadata")
    if not meta:
        raise DataError(
            f"{name(root)}: no metadata/*.parquet; re-run `t2iscope world make --out {name(root)}`"
        )
    truth = _files(root / "truth")
    if not truth or not domain:
        return "SELECT * FROM read_parquet(?, union_by_name = true)", [meta]
    sql = (
        "SELECT m.*, t.domain, t.host FROM read_parquet(?, union_by_name = true) m "
        "LEFT JOIN read_parquet(?, union_by_name = true) t ON m.hash = t.hash"
    )
    return sql, [meta, truth]


def _connect() -> duckdb.DuckDBPyConnection:
    # One short-lived connection per query: Streamlit runs sessions on threads and a DuckDB
    # connection must not be shared between them.
    return open_duckdb()


def _duck_error(where: str | Path, exc: Exception) -> DataError:
    return DataError(f"{name(where)}: unreadable table ({' '.join(str(exc).split())[:300]})")


def _query(sql: str, params: list[Any], where: str | Path) -> pd.DataFrame:
    """Run ``sql``; a DuckDB failure is a DataError naming ``where`` (the file or run)."""
    with _connect() as con:
        try:
            return con.execute(sql, params).df()
        except duckdb.Error as exc:
            raise _duck_error(where, exc) from None


@st.cache_data(ttl=TTL, show_spinner=False)
def schema(ds: Dataset) -> dict[str, str]:
    """Column name -> DuckDB type of the dataset."""
    sql, params = _base(ds)
    with _connect() as con:
        try:
            rel = con.execute(f"DESCRIBE {sql}", params).fetchall()
        except duckdb.Error as exc:
            raise _duck_error(ds.path, exc) from None
    return {col: str(dtype) for col, dtype, *_ in rel}


def _column(ds: Dataset, column: str) -> str:
    """The quoted identifier of ``column``, which must be a column of the dataset."""
    if column not in schema(ds):
        raise DataError(f"{name(ds.path)}: no column {column!r}")
    try:
        return ident(column)
    except ValueError:  # a NUL in a parquet column name: DuckDB could not tell it from a shorter one
        raise DataError(f"{name(ds.path)}: column {column!r} cannot be queried (NUL in its name)") from None


def language_column(ds: Dataset) -> str | None:
    """Curation's detected ``lang`` when present, else LAION's ``LANGUAGE``."""
    cols = schema(ds)
    return next((c for c in ("lang", "LANGUAGE") if c in cols), None)


def score_columns(ds: Dataset) -> list[str]:
    cols = schema(ds)
    return [c for c in SCORE_COLUMNS if c in cols and _numeric(cols[c])]


def _numeric(dtype: str) -> bool:
    return dtype.startswith(NUMERIC_TYPES) and not dtype.endswith("]")  # not INTEGER[] lists


def numeric_columns(ds: Dataset) -> list[str]:
    return [c for c, t in schema(ds).items() if _numeric(t) and c != "hash"]


def _where(ds: Dataset, f: Filters) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    lang = language_column(ds)
    if f.languages and lang:
        clauses.append(f"list_contains(?, {_column(ds, lang)})")
        params.append(list(f.languages))
    if f.domains:
        clauses.append(f"list_contains(?, {_column(ds, 'domain')})")
        params.append(list(f.domains))
    if f.min_width:
        clauses.append(f"{_column(ds, 'WIDTH')} >= ?")
        params.append(f.min_width)
    if f.min_height:
        clauses.append(f"{_column(ds, 'HEIGHT')} >= ?")
        params.append(f.min_height)
    for col, lo, hi in f.ranges:
        clauses.append(f"{_column(ds, col)} BETWEEN ? AND ?")
        params.extend([lo, hi])
    if f.text:
        clauses.append(f"contains(lower({_column(ds, 'TEXT')}), lower(?))")
        params.append(f.text)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _filtered(ds: Dataset, f: Filters, select: str = "*", domain: bool = False) -> tuple[str, list[Any]]:
    base, params = _base(ds, domain=domain or bool(f.domains))
    where, wparams = _where(ds, f)
    return f"SELECT {select} FROM ({base}) AS rows{where}", params + wparams


@st.cache_data(ttl=TTL, show_spinner=False)
def histogram(ds: Dataset, column: str, f: Filters, bins: int = 30) -> pd.DataFrame:
    """Equal-width histogram of a numeric column: ``start, stop, rows`` per non-empty bin."""
    col = _column(ds, column)
    sql, params = _filtered(ds, f, f"{col}::DOUBLE AS x")
    return _query(
        f"""
        WITH d AS ({sql}), r AS (SELECT min(x) AS lo, max(x) AS hi FROM d),
        b AS (
            SELECT least(floor((x - lo) / nullif(hi - lo, 0) * ?), ? - 1)::INT AS bin, lo, hi
            FROM d, r WHERE x IS NOT NULL
        )
        SELECT lo + (hi - lo) * coalesce(bin, 0) / ? AS start,
               lo + (hi - lo) * (coalesce(bin, 0) + 1) / ? AS stop,
               count(*) AS rows
        FROM b GROUP BY bin, lo, hi ORDER BY start
        """,
        [*params, bins, bins, bins, bins],
        ds.path,
    )


@dataclass(frozen=True)
class Summary:
    """What the explorer's header needs, from one scan: row count, rows per language and per domain."""

    rows: int
    languages: pd.DataFrame  # language, rows (most frequent first)
    domains: pd.DataFrame  # domain, rows (most frequent first; empty without a domain column)


def _ranked(df: pd.DataFrame, key: str) -> pd.DataFrame:
    return df.sort_values(["rows", key], ascending=[False, True], ignore_index=True)[[key, "rows"]]


@st.cache_data(ttl=TTL, show_spinner=False)
def summary(ds: Dataset, f: Filters) -> Summary:
    """Row count and per-language/per-domain counts of the filtered rows.

    One ``GROUPING SETS`` scan instead of three. A world's domains come from its truth table
    alone when nothing is filtered (every first paint), which spares the metadata-truth join.
    """
    cols = schema(ds)
    lang = language_column(ds)
    truth = _files(Path(ds.path) / "truth")
    truth_domains = ds.kind == "world" and bool(truth) and f == Filters()
    keys = {"language": lang, "domain": None if truth_domains or "domain" not in cols else "domain"}
    keys = {alias: col for alias, col in keys.items() if col}
    select = ", ".join(f"{_column(ds, col)} AS {alias}" for alias, col in keys.items()) or "1 AS one"
    sql, params = _filtered(ds, f, select, domain="domain" in keys)
    sets = ", ".join([*(f"({alias})" for alias in keys), "()"])
    names = ", ".join(keys) or "one"
    df = _query(
        f"SELECT {names}, grouping({names}) AS g, count(*) AS rows "
        f"FROM ({sql}) GROUP BY GROUPING SETS ({sets})",
        params,
        ds.path,
    )
    aliases = list(keys)

    def level(alias: str) -> pd.DataFrame:
        # grouping() sets a bit per column left out of the set; a one-column set leaves out all others.
        bits = sum(1 << (len(aliases) - 1 - i) for i, a in enumerate(aliases) if a != alias)
        return _ranked(df[df["g"] == bits], alias)

    total = int(df.loc[df["g"] == (1 << max(len(aliases), 1)) - 1, "rows"].sum())
    languages = level("language") if "language" in keys else pd.DataFrame(columns=["language", "rows"])
    if truth_domains:
        domains = _query(
            "SELECT domain, count(*) AS rows FROM read_parquet(?, union_by_name = true) GROUP BY domain",
            [truth],
            Path(ds.path) / "truth",
        ).pipe(_ranked, "domain")
    else:
        domains = level("domain") if "domain" in keys else pd.DataFrame(columns=["domain", "rows"])
    return Summary(total, languages, domains)


def domain_coverage(counts: pd.DataFrame, points: int = 200) -> pd.DataFrame:
    """Share of rows covered by the top-k domains (LAION's domain curve), at log-spaced k."""
    if counts.empty:
        return pd.DataFrame(columns=["top_domains", "coverage"])
    coverage = counts["rows"].cumsum().to_numpy() / counts["rows"].sum()
    n = len(counts)
    ks = np.arange(1, n + 1) if n <= points else np.unique(np.geomspace(1, n, num=points).round().astype(int))
    return pd.DataFrame({"top_domains": ks, "coverage": coverage[ks - 1]})


@st.cache_data(ttl=TTL, show_spinner=False)
def sample(ds: Dataset, f: Filters, k: int = 24, seed: int = 0) -> pd.DataFrame:
    """A reproducible random sample of ``k`` filtered rows (for the thumbnail grid)."""
    sql, params = _filtered(ds, f)
    # DuckDB takes no parameters in a SAMPLE clause; k and seed are ints we control, not user text.
    clause = f"USING SAMPLE reservoir({int(k)} ROWS) REPEATABLE ({int(seed)})"
    return _query(f"SELECT * FROM ({sql}) {clause}", params, ds.path)


def load_stats(run: str) -> dict[str, Any]:
    """A curation run's ``stats.json``."""
    path = Path(run) / "stats.json"
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{name(path)}: missing; the curation run did not finish") from None
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nesting too deep to parse
        raise DataError(f"{name(path)}: not valid JSON ({name(exc)})") from None
    if not isinstance(stats, dict):
        raise DataError(f"{name(path)}: expected a JSON object")
    return stats


@st.cache_data(ttl=TTL, show_spinner=False)
def bounds(ds: Dataset, column: str) -> tuple[float, float]:
    """Minimum and maximum of a numeric column over the whole dataset (for slider ranges)."""
    col = _column(ds, column)
    sql, params = _filtered(ds, Filters(), f"min({col})::DOUBLE AS lo, max({col})::DOUBLE AS hi")
    row = _query(sql, params, ds.path).iloc[0]
    return float(row["lo"]), float(row["hi"])


def _count(value: Any) -> int:
    """A row count from stats.json; ValueError unless it is a whole number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise ValueError(value)
    return int(value)


def _seconds(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("nan")


def _stage_list(stats: dict[str, Any]) -> Any:
    """A run's stages; a download's (``curate download``) are its post-download stages."""
    stages = stats.get("stages")
    if stages is None and isinstance(stats.get("post_download"), dict):
        return stats["post_download"].get("stages")
    return stages


def _stage_rows(stats: dict[str, Any], where: str) -> list[dict[str, Any]]:
    stages = _stage_list(stats)
    if isinstance(stages, dict):  # {"name": {...}} as well as [{"name": ...}]
        stages = [{"name": k, **v} if isinstance(v, dict) else v for k, v in stages.items()]
    if not isinstance(stages, list):
        raise DataError(f"{where}: no 'stages' list")
    rows = []
    for i, stage in enumerate(stages):
        try:
            rows_in, rows_out = _count(stage["rows_in"]), _count(stage["rows_out"])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{where}: stage {i + 1} lacks rows_in/rows_out") from None
        reasons = stage.get("dropped") or stage.get("drop_reasons") or stage.get("reasons") or {}
        rows.append(
            {
                "stage": str(stage.get("name") or stage.get("stage") or stage.get("op") or f"stage {i + 1}"),
                "rows_in": rows_in,
                "rows_out": rows_out,
                "seconds": _seconds(stage.get("seconds", stage.get("elapsed_s"))),
                "reasons": reasons if isinstance(reasons, dict) else {},
            }
        )
    return rows


@st.cache_data(ttl=TTL, show_spinner=False)
def funnel(run: str) -> pd.DataFrame:
    """Rows in and out of every stage of a curation run, in order, from its stats.json."""
    rows = _stage_rows(load_stats(run), name(Path(run) / "stats.json"))
    df = pd.DataFrame(rows, columns=["stage", "rows_in", "rows_out", "seconds", "reasons"]).drop(
        columns="reasons"
    )
    df["dropped"] = df["rows_in"] - df["rows_out"]
    return df


@st.cache_data(ttl=TTL, show_spinner=False)
def drop_reasons(run: str) -> pd.DataFrame:
    """``stage, reason, rows``: why rows were dropped (stats.json, else the dropped/ table)."""
    where = name(Path(run) / "stats.json")
    rows = []
    for s in _stage_rows(load_stats(run), where):
        for reason, n in s["reasons"].items():
            try:
                rows.append({"stage": s["stage"], "reason": str(reason), "rows": _count(n)})
            except ValueError:
                raise DataError(f"{where}: stage {s['stage']!r} counts reason {reason!r} as {n!r}") from None
    if rows:
        return pd.DataFrame(rows).sort_values(["stage", "rows"], ascending=[True, False], ignore_index=True)
    dropped = _files(Path(run) / "dropped")
    if not dropped:
        return pd.DataFrame(columns=["stage", "reason", "rows"])
    return _query(
        "SELECT stage, reason, count(*) AS rows FROM read_parquet(?, union_by_name = true) "
        "GROUP BY stage, reason ORDER BY stage, rows DESC",
        [dropped],
        Path(run) / "dropped",
    )


def languages(run: str) -> pd.DataFrame:
    """``language, rows_in, rows_out`` per language, when the run's stats.json records them.

    The two sides may name different languages (LAION's ``LANGUAGE`` going in, the detected
    ``lang`` coming out), so every language of either side gets a row.
    """
    counts = load_stats(run).get("languages") or {}
    if not isinstance(counts, dict) or not isinstance(counts.get("in"), dict):
        return pd.DataFrame(columns=["language", "rows_in", "rows_out"])
    side_in, side_out = counts["in"], counts.get("out") or {}
    if not isinstance(side_out, dict):
        side_out = {}
    langs = list(dict.fromkeys([*side_in, *side_out]))
    try:
        df = pd.DataFrame(
            {
                "language": langs,
                "rows_in": [_count(side_in.get(k, 0)) for k in langs],
                "rows_out": [_count(side_out.get(k, 0)) for k in langs],
            }
        )
    except ValueError:
        raise DataError(
            f"{name(Path(run) / 'stats.json')}: 'languages' counts must be whole numbers"
        ) from None
    return df.sort_values(["rows_in", "rows_out"], ascending=False, ignore_index=True)


NEAR_DUPLICATE_COLUMNS = (
    "stage", "by", "row_id", "duplicate_of", "distance",
    "removed_shard", "removed_key", "kept_shard", "kept_key",
)  # fmt: skip


def _examples(stats: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """The example pairs near_dedup stages recorded in stats.json: stage, by, the two row ids, distance."""
    stages = _stage_list(stats)
    found = []
    for stage in stages if isinstance(stages, list) else []:
        if not isinstance(stage, dict) or stage.get("stage") != "near_dedup":
            continue
        params = stage.get("params")
        by = params.get("by") if isinstance(params, dict) else None
        examples = stage.get("examples") or {}
        try:
            for row_id, pair in examples.items():
                found.append(
                    {
                        "stage": "near_dedup",
                        "by": str(by),
                        "row_id": _count(int(row_id)),
                        "duplicate_of": _count(pair["duplicate_of"]),
                        "distance": float(pair["distance"]),
                    }
                )
        except (AttributeError, KeyError, TypeError, ValueError):
            raise DataError(
                f"{where}: near_dedup's examples must map row ids to duplicate_of and distance"
            ) from None
    return found


@st.cache_data(ttl=TTL, show_spinner=False)
def near_duplicates(run: str, root: str | None = None) -> pd.DataFrame:
    """The example pairs of a download's near_dedup stage (its stats.json ``examples``), each image
    placed in img2dataset's output: ``removed_shard``/``kept_shard`` name the shard's metadata parquet
    (``images/attempt-N/NNNNN.parquet``; None when the row's image is not found inside the runs
    folder ``root``, default ``run``) and ``*_key`` the image's key there (see images.stored_image).

    Reads status.parquet (where each row's image is) and the shards' key columns; no image.
    """
    folder = Path(run)
    pairs = _examples(load_stats(run), name(folder / "stats.json"))
    if not pairs:
        return pd.DataFrame(columns=NEAR_DUPLICATE_COLUMNS)
    ids = sorted({p[c] for p in pairs for c in ("row_id", "duplicate_of")})
    status = folder / "status.parquet"
    if not status.is_file():
        raise DataError(f"{name(status)}: missing; near_dedup's example images cannot be placed")
    placed = _query(
        "SELECT row_id, images_dir, key FROM read_parquet(?) WHERE list_contains(?, row_id)",
        [file_name(status), ids],
        status,
    )
    shards: dict[tuple[str, str], str] = {}
    for images_dir, rows in placed.groupby("images_dir"):
        attempt = inside(root or run, folder / "images", images_dir)
        metadata = _files(attempt) if attempt is not None and attempt.is_dir() else []
        if metadata:
            hits = _query(
                "SELECT filename, key FROM read_parquet(?, filename = true, union_by_name = true) "
                "WHERE list_contains(?, CAST(key AS VARCHAR))",
                [metadata, [str(k) for k in rows["key"]]],
                attempt,
            )
            shards.update(
                {(images_dir, str(k)): f for f, k in zip(hits["filename"], hits["key"], strict=True)}
            )
    where = {int(r.row_id): (shards.get((r.images_dir, str(r.key))), str(r.key)) for r in placed.itertuples()}
    for p in pairs:
        p["removed_shard"], p["removed_key"] = where.get(p["row_id"], (None, None))
        p["kept_shard"], p["kept_key"] = where.get(p["duplicate_of"], (None, None))
    return pd.DataFrame(pairs, columns=NEAR_DUPLICATE_COLUMNS).sort_values("row_id", ignore_index=True)


MANIFEST_COLUMNS = ("prompt_id", "prompt", "language", "seed", "steps", "cfg_scale", "sampler", "image_path")
MANIFEST_NUMBERS = ("seed", "steps", "cfg_scale")
MANIFEST_TEXT = (
    "suite", "prompt_id", "prompt", "negative_prompt", "language", "sampler", *A1111_TEXT_COLUMNS,
)  # fmt: skip
# A1111 settings (issue 17): numbers when a manifest has them (older ones do not); a null in a row
# resumed from a folder made before them is the default those images were made with.
MANIFEST_SETTINGS = A1111_NUMBER_COLUMNS
MANIFEST_DEFAULTS = {"subseed_strength": 0.0, "clip_skip": 1}


def _text(value: Any) -> str | None:
    """A table value as text; None for a missing one (null, NaN)."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return value if isinstance(value, str) else str(value)


def _image(gen: str, root: str, value: Any, row: int, where: str) -> tuple[str | None, str | None]:
    """``(image_file, None)`` for a servable ``image_path``, else ``(None, why not)``."""
    found = inside(root, gen, value)
    if found is not None:
        return str(found), None
    named = isinstance(value, str) and bool(value) and "\0" not in value
    what = "is outside the runs folder" if named else "is not a file name"
    return None, f"{where} row {row}: image_path {value!r:.200} {what}; not shown"


@st.cache_data(ttl=TTL, show_spinner=False)
def manifest(gen: str, root: str | None = None) -> pd.DataFrame:
    """A generation's manifest plus ``image_file`` and ``image_problem``.

    ``image_file`` is ``image_path`` resolved against the generation folder, symlinks followed.
    It is None when that leaves the runs folder ``root`` (default: the generation folder), by an
    absolute path, ``..`` or a link out: the dashboards serve nothing else, and ``image_problem``
    names the row instead.
    """
    path = Path(gen) / "manifest.parquet"
    where = name(path)
    df = _query("SELECT * FROM read_parquet(?)", [file_name(path)], path)
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {', '.join(missing)}")
    for col in MANIFEST_NUMBERS:
        if not pd.api.types.is_numeric_dtype(df[col]) or pd.api.types.is_bool_dtype(df[col]):
            raise DataError(f"{where}: column {col} holds {df[col].dtype}, not numbers")
        if df[col].isna().any():
            raise DataError(
                f"{where}: column {col} is empty in row {int(df[col].isna().to_numpy().argmax())}"
            )
    for col in (c for c in MANIFEST_SETTINGS if c in df.columns):
        if df[col].isna().all():  # a column of nulls has no type to check (pandas writes it as null)
            df[col] = np.nan
        if not pd.api.types.is_numeric_dtype(df[col]) or pd.api.types.is_bool_dtype(df[col]):
            raise DataError(f"{where}: column {col} holds {df[col].dtype}, not numbers")
        if col in MANIFEST_DEFAULTS:
            df[col] = df[col].fillna(MANIFEST_DEFAULTS[col])
    for col in (c for c in MANIFEST_TEXT if c in df.columns):  # shown and sorted as text
        df[col] = [_text(v) or "" for v in df[col]]
    images = [_image(gen, root or gen, v, i, where) for i, v in enumerate(df["image_path"])]
    df["image_file"] = [f for f, _ in images]
    df["image_problem"] = [p for _, p in images]
    return df


@st.cache_data(ttl=TTL, show_spinner=False)
def audit_rows(audit_dirs: tuple[str, ...], audits: tuple[str, ...]) -> pd.DataFrame:
    """Rows of those ``audits`` that each folder's run lists in its run.json.

    Read and checked by ``t2iscope.evaluate.folder``, as ``evaluate report`` reads them: a table
    an older run left beside them is never read, and a folder without a finished run is one
    DataError line. Adds ``run`` (the audit folder's name) so rows of two audit runs stay apart;
    a table with its own ``run`` (quality: the generation; language_mix: the curation run) keeps
    it, and gets the folder's name as ``audit_run``.
    """
    frames = [
        (table := read_table(Path(folder) / table_name(audit), audit)).assign(
            **{"audit_run" if "run" in table else "run": Path(folder).name}
        )
        for folder in audit_dirs
        for audit in read_record(folder)["audits"]
        if audit in audits
    ]
    if not frames:
        return pd.DataFrame(columns=[*CORE, "run"])
    return pd.concat(frames, ignore_index=True)


def slice_columns(df: pd.DataFrame) -> list[str]:
    """The audit's group columns that actually vary in ``df``."""
    return [c for c in df.columns if c not in (*CORE, "run") and df[c].nunique(dropna=True) > 1]
