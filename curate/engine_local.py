"""The ``local`` engine: input shards through DuckDB, then Arrow, with bounded memory.

For each shard the leading rule stages (thresholds, sizes, caption rules: operators/__init__.py)
are pushed into one DuckDB query as a CASE that names the first failing stage and reason; DuckDB
streams the rows out in Arrow batches of ``batch_rows``; the remaining stages run on the rows
still alive, in recipe order, each seeing only the survivors of the one before. Kept and dropped
rows go to ``kept/part-NNNNN.parquet`` and ``dropped/part-NNNNN.parquet`` (+ ``stage``,
``reason``), written atomically, so a killed run leaves only whole shards behind. The recipe's
``dropped`` mode decides how much of a dropped row is written (all columns, ``KEY_COLUMNS`` or
nothing); the tallies are counted the same way in every mode. A shard runs on the calling thread's
connection; run.py runs shards side by side (one cursor per thread, :meth:`bind_thread`) when no
stage keeps state across rows. Every query is built the t2iscope.sql way: rule values, stage and
reason names, input file names and output paths are bound parameters, column names are quoted.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from t2iscope.curate.operators import (
    METADATA,
    Columns,
    MissingColumn,
    Rules,
    StageContext,
    case,
    with_columns,
)
from t2iscope.curate.readers import INTERNAL_PREFIX, InputShard, configure, connect, duck_error, select_list
from t2iscope.curate.recipe import Stage
from t2iscope.curate.schema import REASON_COL, STAGE_COL
from t2iscope.fileio import atomic_path
from t2iscope.sql import Params, ident

_STAGE, _REASON = f"{INTERNAL_PREFIX}stage", f"{INTERNAL_PREFIX}reason"
# What ``dropped: keys`` writes of a dropped row (those it has), besides stage and reason: enough
# to join it back to its input by hash and to audit language and domain shifts.
KEY_COLUMNS = ("hash", "LANGUAGE", "lang", "domain")
# Pushed-down stages and their rules, in recipe order.
Pushed = Sequence[tuple[str, Rules]]


@dataclass
class StageCounts:
    """Per-stage tallies for stats.json; summed over batches and shards."""

    rows_in: int = 0
    rows_out: int = 0
    dropped: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    pushed_down: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "dropped": dict(sorted(self.dropped.items())),
            "seconds": round(self.seconds, 4),
            "pushed_down": self.pushed_down,
        }
        out.update(self.extra)
        return out


def merge_extra(into: dict[str, Any], new: dict[str, Any]) -> None:
    """Sum nested count dicts (language stats) in place."""
    for key, value in new.items():
        if isinstance(value, dict):
            merge_extra(into.setdefault(key, {}), value)
        else:
            into[key] = into.get(key, 0) + value


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    arrays = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def dropped_schema(kept: pa.Schema, mode: str) -> pa.Schema | None:
    """The dropped file's schema under ``mode`` (full/keys), or None when none is written."""
    if mode == "none":
        return None
    fields = list(kept) if mode == "full" else [kept.field(c) for c in KEY_COLUMNS if c in kept.names]
    return pa.schema([*fields, pa.field(STAGE_COL, pa.string()), pa.field(REASON_COL, pa.string())])


def _counts(values: pa.ChunkedArray | pa.Array) -> Counter:
    return Counter({str(r["values"]): int(r["counts"]) for r in pc.value_counts(values).to_pylist()})


def _sql_result(
    groups: Sequence[tuple[str | None, str | None, Any, int]],
    pushed: Pushed,
    counts: list[StageCounts],
    stages: Sequence[Stage],
    has_language: bool,
    start: float,
) -> dict[str, Any]:
    """A shard's result from DuckDB's (stage, reason, LANGUAGE, count) groups; stage None = kept."""
    by_stage: dict[str, Counter] = {}
    lang_in: Counter = Counter()
    lang_out: Counter = Counter()
    for stage, reason, language, k in groups:
        lang_in[str(language)] += k
        if stage is None:
            lang_out[str(language)] += k
        else:
            by_stage.setdefault(stage, Counter())[reason] += k
    remaining = sum(lang_in.values())
    for i, (stage, _) in enumerate(pushed):
        gone = by_stage.get(stage, Counter())
        counts[i].rows_in, counts[i].dropped = remaining, gone
        remaining -= sum(gone.values())
        counts[i].rows_out = remaining
    elapsed = time.perf_counter() - start
    languages = {"in": dict(lang_in), "out": dict(lang_out)} if has_language else {"in": {}, "out": {}}
    return {
        "stages": [{"stage": s.name, **c.to_dict()} for s, c in zip(stages, counts, strict=True)],
        "languages": languages,
        "seconds": elapsed,
        "duckdb_seconds": elapsed,
    }


class LocalEngine:
    """Runs a recipe's metadata stages over input shards; one DuckDB connection per run."""

    name = "local"

    def __init__(
        self,
        batch_rows: int = 131_072,
        threads: int | None = None,
        spec: str | None = None,
        dropped: str = "full",
    ) -> None:
        self.batch_rows = batch_rows
        self.dropped = dropped
        self._main = connect(threads, spec=spec)
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """This thread's connection: the main one, or the cursor :meth:`bind_thread` made."""
        return getattr(self._local, "con", None) or self._main

    def bind_thread(self) -> None:
        """Give the calling worker thread its own cursor (one DuckDB connection runs one query)."""
        cursor = self._main.cursor()
        configure(cursor)
        self._cursors.append(cursor)
        self._local.con = cursor

    def close(self) -> None:
        for cursor in self._cursors:
            cursor.close()
        self._main.close()

    def run_shard(
        self,
        shard: InputShard,
        stages: Sequence[Stage],
        contexts: Sequence[StageContext],
        kept_path: Path,
        dropped_path: Path,
    ) -> dict[str, Any]:
        """Process one shard; returns its tallies (stage counts, language counts, seconds).

        ``dropped_path`` is not written when the engine's dropped mode is ``none``.
        """
        start = time.perf_counter()
        select, names = select_list(self.con, shard)
        for ctx in contexts:
            ctx.source = shard.path
        bind = Params()
        pushed = self._plan(stages, contexts, frozenset(names), bind, shard.path)
        rest = list(zip(stages, contexts, strict=True))[len(pushed) :]
        whens = [(stage, cond, reason) for stage, rules in pushed for cond, reason in rules]
        query = (
            f"SELECT {select}, {case(((c, st) for st, c, _ in whens), bind)} AS {_STAGE}, "
            f"{case(((c, r) for _, c, r in whens), bind)} AS {_REASON} FROM {shard.relation(bind)}"
        )
        counts = [StageCounts(pushed_down=i < len(pushed)) for i in range(len(stages))]
        if not rest:
            return self._all_in_duckdb(
                shard, select, query, bind, pushed, counts, stages, kept_path, dropped_path, start, names
            )
        lang_in: Counter = Counter()
        lang_out: Counter = Counter()
        try:
            reader = self.con.sql(query, params=bind.used(query)).to_arrow_reader(self.batch_rows)
            kept_schema = self._schema(reader.schema, rest)
            drop_schema = dropped_schema(kept_schema, self.dropped)
            with ExitStack() as files:  # each writer closes before its file is renamed into place
                kw = files.enter_context(
                    pq.ParquetWriter(files.enter_context(atomic_path(kept_path)), kept_schema)
                )
                dw = None
                if drop_schema is not None:
                    dt = files.enter_context(atomic_path(dropped_path))
                    dw = files.enter_context(pq.ParquetWriter(dt, drop_schema))
                for batch in reader:
                    table = pa.Table.from_batches([batch])
                    if "LANGUAGE" in table.column_names:
                        lang_in += _counts(table.column("LANGUAGE"))
                    alive = self._pushed(table, pushed, counts, drop_schema, dw)
                    for j, (stage, ctx) in enumerate(rest, start=len(pushed)):
                        alive = self._arrow_stage(alive, stage, ctx, counts[j], drop_schema, dw)
                    lang_col = "lang" if "lang" in alive.column_names else "LANGUAGE"
                    if lang_col in alive.column_names:
                        lang_out += _counts(alive.column(lang_col))
                    kw.write_table(conform(alive, kept_schema))
        except duckdb.Error as exc:
            raise duck_error(shard, exc) from None
        elapsed = time.perf_counter() - start
        pushed_seconds = elapsed - sum(c.seconds for c in counts)
        return {
            "stages": [{"stage": s.name, **c.to_dict()} for s, c in zip(stages, counts, strict=True)],
            "languages": {"in": dict(lang_in), "out": dict(lang_out)},
            "seconds": elapsed,
            "duckdb_seconds": pushed_seconds,
        }

    @staticmethod
    def _plan(
        stages: Sequence[Stage],
        contexts: Sequence[StageContext],
        names: frozenset[str],
        bind: Params,
        source: str,
    ) -> list[tuple[str, Rules]]:
        """The leading rule stages whose columns the input has: they run inside the DuckDB query."""
        pushed: list[tuple[str, Rules]] = []
        for stage, ctx in zip(stages, contexts, strict=True):
            if stage.op.rule is None:
                break
            try:
                pushed.append(
                    (stage.name, stage.op.rule(Columns(names, bind, source, stage.name), ctx, **stage.params))
                )
            except MissingColumn:  # fn raises it with the same message if the stage runs at all
                break
        return pushed

    def _all_in_duckdb(
        self,
        shard: InputShard,
        select: str,
        query: str,
        bind: Params,
        pushed: Pushed,
        counts: list[StageCounts],
        stages: Sequence[Stage],
        kept_path: Path,
        dropped_path: Path,
        start: float,
        names: list[str],
    ) -> dict[str, Any]:
        """Every stage is SQL: let DuckDB evaluate, count and write both files with all its threads.

        The predicates are evaluated once into a temp table (DuckDB spills it past memory_limit);
        one GROUP BY over it yields every tally (stage drops, languages in and out) before the
        kept and the dropped file are copied out. Under ``dropped: full`` the table holds whole
        rows; otherwise only the key columns and the verdict, and the kept rows are read again
        from the input, matched to their verdict by position: carrying URL and TEXT of every row
        through the table costs more than that second read.
        """
        if self.dropped == "none" and shard.format == "parquet":
            return self._kept_only(shard, select, bind, pushed, counts, stages, kept_path, start, names)
        has_language = "LANGUAGE" in names
        lang = ident("LANGUAGE") if has_language else "NULL"
        if self.dropped == "full":
            table, kept = query, f"SELECT * EXCLUDE ({_STAGE}, {_REASON}) FROM shard WHERE {_STAGE} IS NULL"
        else:
            keys = "".join(f"{ident(c)}, " for c in KEY_COLUMNS if c in names)
            table = f"SELECT {keys}{_STAGE}, {_REASON} FROM ({query})"
            kept = (
                f"SELECT s.* FROM (SELECT {select} FROM {shard.relation(bind)}) s "
                f"POSITIONAL JOIN shard WHERE shard.{_STAGE} IS NULL"
            )
        try:
            self._execute(f"CREATE OR REPLACE TEMP TABLE shard AS {table}", bind)
            groups = self.con.execute(
                f"SELECT {_STAGE}, {_REASON}, {lang}, count(*) FROM shard GROUP BY ALL"
            ).fetchall()
            with ExitStack() as files:
                kt = files.enter_context(atomic_path(kept_path))
                self._execute(f"COPY ({kept}) TO {bind(str(kt))} (FORMAT parquet)", bind)
                if self.dropped != "none":
                    dt = files.enter_context(atomic_path(dropped_path))
                    self._execute(
                        f"COPY (SELECT {self._dropped_select()} FROM shard WHERE {_STAGE} IS NOT NULL) "
                        f"TO {bind(str(dt))} (FORMAT parquet)",
                        bind,
                    )
            self.con.execute("DROP TABLE shard")
        except duckdb.Error as exc:
            raise duck_error(shard, exc) from None
        return _sql_result(groups, pushed, counts, stages, has_language, start)

    def _kept_only(
        self,
        shard: InputShard,
        select: str,
        bind: Params,
        pushed: Pushed,
        counts: list[StageCounts],
        stages: Sequence[Stage],
        kept_path: Path,
        start: float,
        names: list[str],
    ) -> dict[str, Any]:
        """``dropped: none`` on parquet with every stage in SQL: two passes, about one raw DuckDB filter.

        Pass 1 tallies the leading numeric stages (sizes, scores) with a GROUP BY that reads only
        their columns. Pass 2 is the filter itself: DuckDB skips those rows while scanning, tests
        the remaining stages (URL, caption) on the survivors only, and writes them partitioned by
        verdict, so the kept rows land in their own file and the few late drops are counted from
        their partitions. Tallies equal the one-query path's: the rules and their order are the same.
        """
        lead = 0
        while lead < len(pushed) and stages[lead].op.numeric:
            lead += 1
        rules = [(stage, cond, reason) for stage, conds in pushed for cond, reason in conds]
        n_lead = sum(len(conds) for _, conds in pushed[:lead])
        numbered = shard.relation(bind, row_numbers=True)
        src = f"(SELECT {select}, file_row_number AS __t2i_row FROM {numbered}) src"
        lang = ident("LANGUAGE") if "LANGUAGE" in names else "NULL"

        def verdict(first: int, last: int, default: str) -> str:
            whens = " ".join(f"WHEN {rules[k][1]} THEN {k + 1}" for k in range(first, last))
            return f"CASE {whens} ELSE {default} END" if whens else default

        survive = " AND ".join(f"NOT coalesce({rules[k][1]}, false)" for k in range(n_lead)) or "true"
        parts = kept_path.with_name(f".{kept_path.stem}.parts")
        shutil.rmtree(parts, ignore_errors=True)
        parts.parent.mkdir(parents=True, exist_ok=True)
        try:
            groups = self._execute(
                f"SELECT {verdict(0, n_lead, 'NULL')}, {lang}, count(*) FROM {src} GROUP BY ALL", bind
            ).fetchall()
            self._execute(
                f"COPY (SELECT * EXCLUDE (__t2i_row), {verdict(n_lead, len(rules), '0')} AS __t2i_v "
                f"FROM {src} WHERE {survive} ORDER BY __t2i_row) "
                f"TO {bind(str(parts))} (FORMAT parquet, PARTITION_BY (__t2i_v))",
                bind,
            )
            # DuckDB names a partition's files data_0, data_1, ... in write order. Read them as
            # plain files: hive_partitioning would also parse any ``k=v`` folder in --out.
            by_verdict = {
                int(d.name.split("=", 1)[1]): sorted(
                    (str(f) for f in d.glob("*.parquet")), key=lambda f: int(Path(f).stem.split("_")[-1])
                )
                for d in parts.glob("__t2i_v=*")
            }
            late = [
                (code, language, k)
                for code, files in by_verdict.items()
                for language, k in self._execute(
                    f"SELECT {lang}, count(*) FROM read_parquet({bind(files)}, hive_partitioning = false) "
                    "GROUP BY ALL",
                    bind,
                ).fetchall()
            ]
            kept_files = by_verdict.get(0, [])
            with atomic_path(kept_path) as kt:
                if len(kept_files) == 1:
                    Path(kept_files[0]).rename(kt)
                else:
                    rows = (
                        f"SELECT * FROM read_parquet({bind(kept_files)}, hive_partitioning = false)"
                        if kept_files
                        else f"SELECT * EXCLUDE (__t2i_row) FROM {src} LIMIT 0"
                    )
                    self._execute(f"COPY ({rows}) TO {bind(str(kt))} (FORMAT parquet)", bind)
        except duckdb.Error as exc:
            raise duck_error(shard, exc) from None
        finally:
            shutil.rmtree(parts, ignore_errors=True)
        verdicts = []
        for code, language, k in [*(g for g in groups if g[0] is not None), *late]:
            stage, _, reason = rules[int(code) - 1] if int(code) else (None, None, None)
            verdicts.append((stage, reason, language, k))
        return _sql_result(verdicts, pushed, counts, stages, lang != "NULL", start)

    def _dropped_select(self) -> str:
        """The dropped COPY's select list over the temp table ``shard`` (full or keys mode)."""
        renamed = f"{_STAGE} AS {STAGE_COL}, {_REASON} AS {REASON_COL}"
        if self.dropped == "full":
            return f"* RENAME ({renamed})"
        names = {r[0] for r in self.con.execute("DESCRIBE shard").fetchall()}
        keys = "".join(f"{ident(c)}, " for c in KEY_COLUMNS if c in names)
        return f"{keys}{renamed}"

    def _execute(self, sql: str, bind: Params) -> duckdb.DuckDBPyConnection:
        """Run ``sql`` on this thread's connection with the values of ``bind`` it refers to."""
        return self.con.execute(sql, bind.used(sql))

    @staticmethod
    def _schema(source: pa.Schema, rest: Sequence[tuple[Stage, StageContext]]) -> pa.Schema:
        schema = pa.schema([f for f in source if f.name not in (_STAGE, _REASON)])
        for stage, _ in rest:
            for name, typ in stage.op.outputs.items():
                if name not in schema.names:
                    schema = schema.append(pa.field(name, typ))
        return schema

    @staticmethod
    def _pushed(
        table: pa.Table,
        pushed: Pushed,
        counts: list[StageCounts],
        dropped_schema: pa.Schema | None,
        writer: pq.ParquetWriter | None,
    ) -> pa.Table:
        stage_col = table.column(_STAGE)
        alive_mask = pc.is_null(stage_col)
        n_alive = table.num_rows - stage_col.null_count
        by_stage: dict[str, Counter] = {}
        if n_alive < table.num_rows:
            drop_mask = pc.invert(alive_mask)
            pairs = pc.value_counts(
                pc.binary_join_element_wise(
                    stage_col.filter(drop_mask), table.column(_REASON).filter(drop_mask), "\x1f"
                )
            )
            for row in pairs.to_pylist():
                stage, reason = row["values"].split("\x1f", 1)
                by_stage.setdefault(stage, Counter())[reason] += int(row["counts"])
            if writer is not None:
                dropped = table.filter(drop_mask)
                dropped = dropped.rename_columns(
                    [
                        STAGE_COL if c == _STAGE else REASON_COL if c == _REASON else c
                        for c in dropped.column_names
                    ]
                )
                writer.write_table(conform(dropped, dropped_schema))
        remaining = table.num_rows
        for i, (stage, _) in enumerate(pushed):
            c = counts[i]
            gone = by_stage.get(stage, Counter())
            c.rows_in += remaining
            remaining -= sum(gone.values())
            c.rows_out += remaining
            c.dropped += gone
        return (
            table.filter(alive_mask).drop_columns([_STAGE, _REASON])
            if n_alive < table.num_rows
            else (table.drop_columns([_STAGE, _REASON]))
        )

    @staticmethod
    def _arrow_stage(
        alive: pa.Table,
        stage: Stage,
        ctx: StageContext,
        c: StageCounts,
        dropped_schema: pa.Schema | None,
        writer: pq.ParquetWriter | None,
    ) -> pa.Table:
        t0 = time.perf_counter()
        c.rows_in += alive.num_rows
        if alive.num_rows:
            res = stage.op.fn(alive, ctx, **stage.params)
            alive = with_columns(alive, res.columns)
            merge_extra(c.extra, res.stats)
            keep = pa.array(np.asarray(res.keep, dtype=bool))
            if not pc.all(keep).as_py():
                drop_mask = pc.invert(keep)
                reasons = res.reason.filter(drop_mask)
                c.dropped += _counts(reasons)
                if writer is not None:
                    dropped = alive.filter(drop_mask)
                    dropped = dropped.append_column(
                        STAGE_COL, pa.array([stage.name] * dropped.num_rows, pa.string())
                    )
                    writer.write_table(conform(dropped.append_column(REASON_COL, reasons), dropped_schema))
                alive = alive.filter(keep)
        c.rows_out += alive.num_rows
        c.seconds += time.perf_counter() - t0
        return alive


def metadata_contexts(stages: Sequence[Stage]) -> list[StageContext]:
    return [StageContext(source="", phase=METADATA) for _ in stages]
