"""The ``local`` engine: input shards through DuckDB, then Arrow, in memory flat in the input's size.

For each shard the leading rule stages (thresholds, sizes, caption rules: operators/__init__.py)
are pushed into one DuckDB query as a CASE that names the first failing stage and reason; DuckDB
streams the rows out in Arrow batches of ``batch_rows``; the remaining stages run on the rows
still alive, in recipe order, each seeing only the survivors of the one before. When every stage
is SQL and the shard is parquet, DuckDB does the whole job instead (``_all_in_duckdb``: verdicts,
then streaming COPYs). Nothing holds a shard's rows at once: memory follows ``batch_rows`` and the
thread count, and DuckDB spills past ``memory_limit`` to ``temp_directory``. Kept and dropped
rows go to ``kept/part-NNNNN.parquet`` and ``dropped/part-NNNNN.parquet`` (+ ``stage``,
``reason``), written atomically, so a killed run leaves only whole shards behind. The recipe's
``dropped`` mode decides how much of a dropped row is written (all columns, ``KEY_COLUMNS`` or
nothing); the tallies are counted the same way in every mode. A shard runs on the calling thread's
connection; run.py runs shards side by side (one cursor per thread, :meth:`bind_thread`) when no
stage keeps state across rows. Every query is built the t2iscope.sql way: rule values, stage and
reason names, input file names and output paths are bound parameters, column names are quoted.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from t2iscope.curate.operators import (
    CUTOFF,
    METADATA,
    Columns,
    Rules,
    StageContext,
    pool_cutoff,
    with_columns,
)
from t2iscope.curate.operators.language import NO_LANGUAGE
from t2iscope.curate.plan import REASON_ALIAS as _REASON
from t2iscope.curate.plan import STAGE_ALIAS as _STAGE
from t2iscope.curate.plan import ShardPlan, StageCounts, Tally, merge_extra, plan_shard
from t2iscope.curate.readers import (
    DEFAULT_MEMORY_LIMIT,
    InputShard,
    configure,
    connect,
    duck_error,
    select_list,
)
from t2iscope.curate.recipe import Stage
from t2iscope.curate.schema import REASON_COL, STAGE_COL
from t2iscope.errors import DataError
from t2iscope.fileio import atomic_path
from t2iscope.sql import Params, file_name, ident, out_name

# What ``dropped: keys`` writes of a dropped row (those it has), besides stage and reason: enough
# to join it back to its input by hash and to audit language and domain shifts.
KEY_COLUMNS = ("hash", "LANGUAGE", "lang", "domain")
# Pushed-down stages and their rules, in recipe order.
Pushed = Sequence[tuple[str, Rules]]


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
    """Rows per language code; a row without one (null) counts as ``nolang``, LAION's name for it."""
    counts = pc.value_counts(pc.fill_null(values.cast(pa.string()), NO_LANGUAGE)).to_pylist()
    return Counter({str(r["values"]): int(r["counts"]) for r in counts})


class LocalEngine:
    """Runs a recipe's metadata stages over input shards; one DuckDB connection per run."""

    name = "local"

    def __init__(
        self,
        batch_rows: int = 131_072,
        threads: int | None = None,
        spec: str | None = None,
        dropped: str = "full",
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        temp_directory: str | Path | None = None,
    ) -> None:
        """``batch_rows`` rows per Arrow batch (>= 1), ``threads`` DuckDB threads (None: all cores),
        ``spec`` the input spec (registers an fsspec filesystem for URLs), ``dropped`` the mode
        (full/keys/none), ``memory_limit``/``temp_directory`` as :func:`readers.connect` takes them."""
        self.batch_rows = batch_rows
        self.dropped = dropped
        self._main = connect(threads, memory_limit, spec, temp_directory)
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._layouts: dict[str, tuple[str, list[str]]] = {}  # shard path -> select list, column names

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

    def check(self, shard: InputShard, stages: Sequence[Stage]) -> None:
        """Read ``shard``'s schema and check that every rule stage finds the columns it reads.

        ``curate run`` calls it for every shard before it creates the run folder. Raises DataError
        naming the file and the column (bad schema, a missing column such as URL or punsafe).
        """
        names = set(self._layout(shard)[1])
        # Columns only: a top-fraction rule's cutoff (pool_cutoffs) is resolved after every check.
        ctx = StageContext(shard.path, METADATA, {CUTOFF: None})
        for stage in stages:
            if stage.op.rule is not None:  # raises MissingColumn, as the stage would when it runs
                cols = Columns(frozenset(names), Params(), shard.path, stage.name)
                stage.op.rule(cols, ctx, **stage.params)
            names |= set(stage.op.outputs)

    def pool_cutoffs(
        self, shards: Sequence[InputShard], stages: Sequence[Stage]
    ) -> dict[int, dict[str, Any]]:
        """The cutoff of each top-fraction stage (``Operator.pool``) over every row of ``shards``.

        One DuckDB query per such stage over all the files, before any shard runs; returns
        ``{stage index: {"column", "fraction", "cutoff", "pool"}}`` (``pool``: the rows ranked, those
        with a score; ``cutoff`` None when there is none), what run.py stores and stats.json shows.
        """
        found: dict[int, dict[str, Any]] = {}
        for i, stage in enumerate(stages):
            spec = stage.op.pool(stage.params, METADATA) if stage.op.pool else None
            if spec is None:
                continue
            bind = Params()
            union = " UNION ALL ".join(
                f"SELECT {ident(spec.column)} AS v FROM (SELECT {self._layout(s)[0]} FROM {s.relation(bind)})"
                for s in shards
            )
            try:
                cutoff, n = pool_cutoff(self.con, f"({union})", spec.fraction, bind)
            except duckdb.Error as exc:
                why = " ".join(str(exc).split())[:300]
                raise DataError(
                    f"stage '{stage.name}': cannot rank {spec.column} over the input ({why})"
                ) from None
            found[i] = {"column": spec.column, "fraction": spec.fraction, "cutoff": cutoff, "pool": n}
        return found

    def _layout(self, shard: InputShard) -> tuple[str, list[str]]:
        """``shard``'s select list and column names (read once: a csv's schema costs a full read)."""
        if shard.path not in self._layouts:
            self._layouts[shard.path] = select_list(self.con, shard)
        return self._layouts[shard.path]

    def plan(self, shard: InputShard, stages: Sequence[Stage], contexts: Sequence[StageContext]) -> ShardPlan:
        """``shard``'s plan under ``stages`` (:func:`plan.plan_shard`), its layout read once."""
        select, names = self._layout(shard)
        return plan_shard(shard, select, names, stages, contexts)

    def run_shard(
        self,
        shard: InputShard,
        stages: Sequence[Stage],
        contexts: Sequence[StageContext],
        kept_path: Path,
        dropped_path: Path,
    ) -> dict[str, Any]:
        """Plan and process one shard; returns its tallies (``Tally.to_dict``: stage counts,
        language counts, seconds). ``dropped_path`` is not written when the engine's dropped mode
        is ``none``."""
        start = time.perf_counter()
        tally = self.execute(self.plan(shard, stages, contexts), kept_path, dropped_path)
        tally.seconds = time.perf_counter() - start
        return tally.to_dict(stages)

    def execute(self, plan: ShardPlan, kept_path: Path, dropped_path: Path) -> Tally:
        """Run ``plan``: kept rows to ``kept_path``, dropped ones (per the dropped mode) to
        ``dropped_path``, both written atomically; returns what it counted."""
        start = time.perf_counter()
        if plan.all_sql:
            tally = self._all_in_duckdb(plan, kept_path, dropped_path)
            tally.duckdb_seconds = time.perf_counter() - start
            return tally
        tally = Tally.empty(len(plan.pushed) + len(plan.rest), len(plan.pushed))
        try:
            reader = self._reader(plan)
            kept_schema = self._schema(reader.schema, plan.rest)
            drop_schema = dropped_schema(kept_schema, self.dropped)
            with ExitStack() as files:  # each writer closes before its file is renamed into place
                kw = files.enter_context(
                    pq.ParquetWriter(files.enter_context(atomic_path(kept_path)), kept_schema)
                )
                dw = None
                if drop_schema is not None:
                    dt = files.enter_context(atomic_path(dropped_path))
                    dw = files.enter_context(pq.ParquetWriter(dt, drop_schema))
                for alive in self._stream(plan, reader, tally, drop_schema, dw):
                    lang_col = "lang" if "lang" in alive.column_names else "LANGUAGE"
                    if lang_col in alive.column_names:
                        tally.lang_out += _counts(alive.column(lang_col))
                    kw.write_table(conform(alive, kept_schema))
        except duckdb.Error as exc:
            raise duck_error(plan.shard, exc) from None
        tally.duckdb_seconds = time.perf_counter() - start - sum(c.seconds for c in tally.stages)
        return tally

    def probe(self, plan: ShardPlan, until: int) -> Iterator[pa.Table]:
        """The rows of ``plan``'s shard that reach stage ``until`` (a recipe index past the
        pushed stages), batch by batch as :meth:`execute` hands them to it; nothing is written.
        ``engine_ray``'s key pass reads the keys of a stateful stage this way."""
        rest = len(plan.pushed) + len(plan.rest)
        if not len(plan.pushed) <= until < rest:
            raise ValueError(f"stage {until} is pushed down or past the last stage")
        tally = Tally.empty(rest, len(plan.pushed))
        try:
            yield from self._stream(plan, self._reader(plan), tally, None, None, until)
        except duckdb.Error as exc:
            raise duck_error(plan.shard, exc) from None

    def _reader(self, plan: ShardPlan) -> pa.RecordBatchReader:
        return self.con.sql(plan.query, params=plan.bind.used(plan.query)).to_arrow_reader(self.batch_rows)

    def _stream(
        self,
        plan: ShardPlan,
        reader: pa.RecordBatchReader,
        tally: Tally,
        drop_schema: pa.Schema | None,
        dw: pq.ParquetWriter | None,
        until: int | None = None,
    ) -> Iterator[pa.Table]:
        """Each batch of ``reader`` through the pushed stages' verdicts, then the stages of
        ``plan.rest`` before recipe index ``until`` (all by default): the rows still alive."""
        stop = len(plan.rest) if until is None else until - len(plan.pushed)
        for batch in reader:
            table = pa.Table.from_batches([batch])
            if "LANGUAGE" in table.column_names:
                tally.lang_in += _counts(table.column("LANGUAGE"))
            alive = self._pushed(table, plan.pushed, tally.stages, drop_schema, dw)
            for j, (stage, ctx) in enumerate(plan.rest[:stop], start=len(plan.pushed)):
                alive = self.apply_stage(alive, stage, ctx, tally.stages[j], drop_schema, dw)
            yield alive

    def _all_in_duckdb(self, plan: ShardPlan, kept_path: Path, dropped_path: Path) -> Tally:
        """Every stage is SQL over parquet: DuckDB judges, counts and writes with all its threads,
        streaming, in memory that does not grow with the shard.

        Pass 1 writes each row's verdict (0: kept; k: the k-th rule matched first) and LANGUAGE to a
        small hidden parquet file beside the kept file; one GROUP BY over it gives every tally.
        Pass 2 copies the kept rows, pass 3 the dropped ones (whole, or ``KEY_COLUMNS``, with stage
        and reason), each reading the input again matched to its verdict by position: a POSITIONAL
        JOIN holds only the verdict column (a few bytes a row), where holding the rows themselves
        made memory follow the shard's size. Parquet reads only the columns a pass needs, and the costly
        rules (the URL check) run once, in pass 1.
        """
        shard, select, bind, names = plan.shard, plan.select, plan.bind, plan.names
        rules = [(stage, cond, reason) for stage, conds in plan.pushed for cond, reason in conds]
        code_type = "UTINYINT" if len(rules) < 256 else "USMALLINT"
        whens = " ".join(f"WHEN {cond} THEN {k}" for k, (_, cond, _) in enumerate(rules, start=1))
        verdict = f"CAST({f'CASE {whens} ELSE 0 END' if rules else 0} AS {code_type})"
        has_language = "LANGUAGE" in names
        language_sql = ident("LANGUAGE") if has_language else "CAST(NULL AS VARCHAR)"
        verdicts = kept_path.with_name(f".{kept_path.stem}.verdicts.tmp")  # resume removes a killed one
        vout, vfile = bind(out_name(verdicts)), bind(file_name(verdicts))
        joined = (
            f"(SELECT {select} FROM {shard.relation(bind)}) __t2i_in POSITIONAL JOIN "
            f"(SELECT __t2i_code FROM read_parquet({vfile})) __t2i_v"
        )
        # Our targets are already temp files: DuckDB's own (tmp_<name>) would be one more to leak.
        to = "(FORMAT parquet, USE_TMP_FILE false)"
        kept_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._execute(
                f"COPY (SELECT {verdict} AS __t2i_code, {language_sql} AS __t2i_lang "
                f"FROM (SELECT {select} FROM {shard.relation(bind)})) TO {vout} {to}",
                bind,
            )
            groups = self._execute(
                f"SELECT __t2i_code, __t2i_lang, count(*) FROM read_parquet({vfile}) GROUP BY ALL", bind
            ).fetchall()
            with ExitStack() as files:  # both files appear together, after both are written
                kt = files.enter_context(atomic_path(kept_path))
                kept = f"SELECT __t2i_in.* FROM {joined} WHERE __t2i_code = 0"
                self._execute(f"COPY ({kept}) TO {bind(out_name(kt))} {to}", bind)
                if self.dropped != "none":
                    dt = files.enter_context(atomic_path(dropped_path))
                    keep = [c for c in KEY_COLUMNS if c in names] if self.dropped == "keys" else names
                    columns = "".join(f"__t2i_in.{ident(c)}, " for c in keep)
                    stage, reason = (
                        " ".join(f"WHEN {k} THEN {bind(rule[i])}" for k, rule in enumerate(rules, start=1))
                        for i in (0, 2)
                    )
                    self._execute(
                        f"COPY (SELECT {columns}CASE __t2i_code {stage} END AS {STAGE_COL}, "
                        f"CASE __t2i_code {reason} END AS {REASON_COL} FROM {joined} WHERE __t2i_code <> 0) "
                        f"TO {bind(out_name(dt))} {to}",
                        bind,
                    )
        except duckdb.Error as exc:
            raise duck_error(shard, exc) from None
        finally:
            verdicts.unlink(missing_ok=True)
        tally = Tally.empty(len(plan.pushed), len(plan.pushed))
        by_stage: dict[str, Counter] = {}
        for code, language, k in groups:  # code 0: kept; k: the k-th rule matched first
            lang = NO_LANGUAGE if language is None else str(language)
            if has_language:
                tally.lang_in[lang] += k
            if code:
                stage, _, reason = rules[code - 1]
                by_stage.setdefault(stage, Counter())[reason] += k
            elif has_language:
                tally.lang_out[lang] += k
        remaining = sum(k for _, _, k in groups)
        for (stage, _), counts in zip(plan.pushed, tally.stages, strict=True):
            counts.rows_in, counts.dropped = remaining, by_stage.get(stage, Counter())
            remaining -= sum(counts.dropped.values())
            counts.rows_out = remaining
        return tally

    def _execute(self, sql: str, bind: Params) -> duckdb.DuckDBPyConnection:
        """Run ``sql`` on this thread's connection with the values of ``bind`` it refers to."""
        return self.con.execute(sql, bind.used(sql))

    @staticmethod
    def _schema(source: pa.Schema, rest: Sequence[tuple[Stage, StageContext]]) -> pa.Schema:
        """The kept file's schema: the input's columns, then the stages' outputs. A stage's output
        replaces an input column of its name (a ``lang`` of integers meets the language stage's
        strings), as its values do in the rows (``with_columns``)."""
        schema = pa.schema([f for f in source if f.name not in (_STAGE, _REASON)])
        for stage, _ in rest:
            for name, typ in stage.op.outputs.items():
                if name in schema.names:
                    schema = schema.set(schema.get_field_index(name), pa.field(name, typ))
                else:
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
        n_alive = stage_col.null_count  # a row no pushed rule dropped has no stage
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
    def apply_stage(
        alive: pa.Table,
        stage: Stage,
        ctx: StageContext,
        c: StageCounts,
        dropped_schema: pa.Schema | None,
        writer: pq.ParquetWriter | None,
    ) -> pa.Table:
        """Run one Python stage on ``alive``: add its columns, count (into ``c``) and write
        (to ``writer``, conformed to ``dropped_schema``) what it drops; returns the rows it keeps."""
        t0 = time.perf_counter()
        ctx.position = c.rows_in
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
