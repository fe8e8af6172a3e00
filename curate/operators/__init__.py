"""Curation operators: functions over Arrow tables, registered by name.

An operator first computes its statistics (``lang``, ``domain``, ``aesthetic_score``...) and then
decides keep/drop from them (Data-Juicer's split), so thresholds can be re-tuned on the kept
columns without recomputing. Each drop carries a short reason code (``min_side<512``).

A rule operator (:func:`rule_operator`: sizes, scores, captions, URLs) is written once, as ordered
(drop-condition SQL, reason) pairs. The engine pushes those into its DuckDB query over the input;
the operator's ``fn`` runs the very same SQL through DuckDB on an Arrow batch (after download, or
behind a stage SQL cannot express), so both paths give the same reason for every row. Only stages
that cannot be SQL (language ID, domains, dedup) are plain Python (:func:`operator`).

A new operator is one module here that uses one of the two decorators; importing this package
imports them all. Parameter types and ranges are the operator's signature (``t2iscope.config``
checks them when a recipe is read); what a signature cannot say (a value that depends on the phase,
a host name) is the operator's ``check`` hook, which the recipe parser also calls when it reads the
file, so every recipe error comes before any work.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t2iscope.curate.readers import configure
from t2iscope.errors import ConfigError, DataError
from t2iscope.registry import Registry
from t2iscope.sql import Params, ident, open_duckdb

METADATA = "metadata"  # before download: rows of a LAION-style table
PIXELS = "pixels"  # after download: the same rows plus decoded-image columns (see download.py)


@dataclass
class StageContext:
    """What an operator knows besides its batch: where the rows come from and its own state.

    ``state`` lives for the whole run (dedup keys, loaded models), so operators stay pure
    functions of (batch, state, params) and the engine decides where state is kept.
    """

    source: str
    phase: str
    state: dict[str, Any] = field(default_factory=dict)
    # Rows the stage was handed before this batch in the current shard (the engines set it): a
    # stateful stage whose verdicts a global key pass found (engine_ray) looks them up by position.
    position: int = 0


@dataclass(frozen=True)
class StageResult:
    """Per-row keep mask, reason for each dropped row, new columns, and counts for stats.json."""

    keep: np.ndarray
    reason: pa.Array  # string, null where kept
    columns: dict[str, pa.Array] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


class MissingColumn(DataError):
    """A stage reads a column its rows do not have (the engine then leaves the stage to ``fn``)."""

    def __init__(self, source: str, stage: str, column: str, hint: str = "") -> None:
        extra = f"; {hint}" if hint else ""
        super().__init__(f"{source}: stage '{stage}' needs column {column}, which is missing{extra}")


@dataclass(frozen=True)
class Columns:
    """What a rule sees of its rows: their column names, and the :class:`Params` its values bind to."""

    names: frozenset[str]
    bind: Params
    source: str  # file the rows come from, for error messages
    stage: str
    used: list[str] = field(default_factory=list)  # what the rules read, in order

    def col(self, name: str, hint: str = "") -> str:
        """``name`` quoted for SQL; :class:`MissingColumn` (naming ``hint``) when the rows lack it."""
        if name not in self.names:
            raise MissingColumn(self.source, self.stage, name, hint)
        if name not in self.used:
            self.used.append(name)
        return ident(name)


# Ordered (drop-condition SQL, reason) pairs: the first condition that holds names the reason.
# Conditions name columns through Columns.col and bind every value through Columns.bind.
Rules = list[tuple[str, str]]
RuleFn = Callable[..., Rules]  # rule(cols, ctx, **params)
# Python that computes the columns a rule reads (model scores from pixels): prepare(table, ctx, **params)
Prepare = Callable[..., dict[str, pa.Array]]
# The checks a signature cannot express: check(params, phase) raises ValueError (or ConfigError)
# with a plain message; the recipe parser prefixes the file, phase, entry and stage.
Check = Callable[[dict[str, Any], str], None]
# StageContext.state keys of a top-fraction stage (Operator.pool): the cutoff its rule compares
# with (None: the pool has no scores), and after download the pool pass's scores of the unit
# being processed (a table of row_id and the score column), which ``prepare`` takes, never recomputes.
CUTOFF = "cutoff"
SCORES = "scores"


@dataclass(frozen=True)
class TopFraction:
    """A stage that keeps the top ``fraction`` (0 < f <= 1) of its whole pool by ``column``."""

    column: str
    fraction: float


# pool(params, phase): what the stage keeps of the whole pool, or None when it judges each row on
# its own. The engines resolve the cutoff (:func:`pool_cutoff`) before any shard runs.
Pool = Callable[[dict[str, Any], str], TopFraction | None]


@dataclass(frozen=True)
class Operator:
    name: str
    fn: Callable[..., StageResult]  # fn(table, ctx, **params): every operator's Arrow path
    phases: frozenset[str]
    outputs: dict[str, pa.DataType]  # columns the stage may add
    rule: RuleFn | None = None  # the stage as SQL (rule operators): what fn runs and the engine pushes
    stateful: bool = False  # depends on rows seen before (dedup): never reordered
    numeric: bool = False  # judges numeric metadata only (sizes, scores): cheap, runs before validity
    check: Check | None = None  # parse-time checks beyond the signature, see Check
    # Loads now what the stage will compute with (a model): preload(params, phase). `curate download`
    # calls it before fetching, so a broken model folder stops the command before any work.
    preload: Check | None = None
    pool: Pool | None = None  # a top-fraction stage: see Pool
    prepare: Prepare | None = None  # what fn computes before its rules (the pool pass calls it alone)
    # A stateful stage's comparison keys, keys(table, ctx, **params) -> int64 [n]: what engine_ray's
    # global key pass groups rows by, so workers agree on the first occurrence of each key.
    keys: Callable[..., np.ndarray] | None = None

    def check_params(self, params: dict[str, Any], phase: str) -> None:
        """Run the stage's ``check`` hook (if any) on its bound ``params`` for ``phase``."""
        if self.check is not None:
            self.check(params, phase)


OPERATORS: Registry[Operator] = Registry("curation stage")


def operator(
    name: str,
    *,
    phases: tuple[str, ...] = (METADATA,),
    outputs: dict[str, pa.DataType] | None = None,
    stateful: bool = False,
    numeric: bool = False,
    check: Check | None = None,
    preload: Check | None = None,
    keys: Callable[..., np.ndarray] | None = None,
) -> Callable[[Callable[..., StageResult]], Callable[..., StageResult]]:
    """Decorator registering a Python stage ``fn(table, ctx, **params) -> StageResult`` under ``name``.

    ``keys`` (stateful stages): see ``Operator.keys``.
    """

    def add(fn: Callable[..., StageResult]) -> Callable[..., StageResult]:
        OPERATORS.register(name)(
            Operator(
                name,
                fn,
                frozenset(phases),
                dict(outputs or {}),
                None,
                stateful,
                numeric,
                check,
                preload,
                keys=keys,
            )
        )
        return fn

    return add


def rule_operator(
    name: str,
    *,
    phases: tuple[str, ...] = (METADATA,),
    outputs: dict[str, pa.DataType] | None = None,
    numeric: bool = False,
    prepare: Prepare | None = None,
    check: Check | None = None,
    preload: Check | None = None,
    pool: Pool | None = None,
) -> Callable[[RuleFn], RuleFn]:
    """Decorator registering a SQL stage ``rule(cols, ctx, **params) -> Rules`` under ``name``.

    Its ``fn`` (same parameters, docstring and annotations as ``rule``, for recipes and listings)
    adds ``prepare``'s columns to the batch, then evaluates the rules on it in DuckDB.
    """

    def add(rule: RuleFn) -> RuleFn:
        signature = inspect.signature(rule)

        @functools.wraps(rule)
        def fn(table: pa.Table, ctx: StageContext, **params: Any) -> StageResult:
            bound = signature.bind(None, ctx, **params)
            bound.apply_defaults()
            params = dict(list(bound.arguments.items())[2:])
            columns = prepare(table, ctx, **params) if prepare else {}
            table = with_columns(table, columns)
            cols = Columns(frozenset(table.column_names), Params(), ctx.source, name)
            keep, reason = evaluate(table, cols, rule(cols, ctx, **params))
            return StageResult(keep, reason, columns)

        OPERATORS.register(name)(
            Operator(
                name,
                fn,
                frozenset(phases),
                dict(outputs or {}),
                rule,
                False,
                numeric,
                check,
                preload,
                pool=pool,
                prepare=prepare,
            )
        )
        return rule

    return add


# -- helpers shared by operators ------------------------------------------------------------------


def with_columns(table: pa.Table, columns: dict[str, pa.Array]) -> pa.Table:
    """``table`` with ``columns`` set: replaced where it has them, appended where not."""
    for name, values in columns.items():
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, values)
        else:
            table = table.append_column(name, values)
    return table


def require(table: pa.Table, column: str, ctx: StageContext, stage: str, hint: str = "") -> pa.ChunkedArray:
    """``table``'s ``column`` for a Python stage; :class:`MissingColumn` when it has none."""
    if column not in table.column_names:
        raise MissingColumn(ctx.source, stage, column, hint)
    return table.column(column)


def case(pairs: Iterable[tuple[str, Any]], bind: Params) -> str:
    """``CASE WHEN cond THEN value ... END`` over (condition SQL, value) pairs, values bound; NULL if none."""
    whens = [f"WHEN {cond} THEN {bind(value)}" for cond, value in pairs]
    return f"CASE {' '.join(whens)} END" if whens else "CAST(NULL AS VARCHAR)"


def sql_missing(ref: str) -> str:
    """Null or NaN of a quoted column ``ref``: what a numeric rule cannot decide (NaN sorts above all)."""
    return f"({ref} IS NULL OR isnan(CAST({ref} AS DOUBLE)))"


def threshold(
    cols: Columns, column: str, *, low: float | None = None, high: float | None = None, hint: str = ""
) -> Rules:
    """Keep ``low <= value < high``; missing values get their own reason, never a silent pass.

    A bound threshold is typed as written (``Decimal(repr(x))``, as the literal ``4.99`` would be),
    so a FLOAT column compares in FLOAT: a float32 score of 4.99 is not below ``min_score: 4.99``.
    """
    c = cols.col(column, hint)
    rules = [(sql_missing(c), f"{column}_missing")]
    if low is not None:
        rules.append((f"{c} < {cols.bind(Decimal(repr(low)))}", f"{column}<{low:g}"))
    if high is not None:
        rules.append((f"{c} >= {cols.bind(Decimal(repr(high)))}", f"{column}>={high:g}"))
    return rules


def top(cols: Columns, column: str, fraction: float, ctx: StageContext, hint: str = "") -> Rules:
    """Keep rows whose ``column`` is at least the pool's cutoff (``ctx.state[CUTOFF]``).

    The cutoff comes from :func:`pool_cutoff`; values compare as DOUBLE, as the cutoff was
    computed, so the kept rows are exactly those at or above it. Missing values get their own
    reason; the drop reason names the fraction and the cutoff (``similarity<0.2871(top 30%)``).
    """
    c = cols.col(column, hint)
    if CUTOFF not in ctx.state:
        raise ConfigError(
            f"stage '{cols.stage}': top_fraction's cutoff over the whole pool was not resolved "
            "before the rows ran; run it through `t2iscope curate run` or `curate download`"
        )
    rules = [(sql_missing(c), f"{column}_missing")]
    cutoff = ctx.state[CUTOFF]
    if cutoff is not None:
        reason = f"{column}<{cutoff:.4g}(top {fraction * 100:g}%)"
        rules.append((f"CAST({c} AS DOUBLE) < {cols.bind(float(cutoff))}", reason))
    return rules


def pool_cutoff(
    con: duckdb.DuckDBPyConnection, values: str, fraction: float, bind: Params
) -> tuple[float | None, int]:
    """(cutoff, n) keeping the top ``fraction`` of the values of ``values`` (SQL of a relation whose
    one column is ``v``); ``n`` counts the values ranked: those neither null nor NaN.

    The cutoff is the linear-interpolated ``1 - fraction`` quantile (numpy's default, DuckDB's
    ``quantile_cont``), kept inclusively: ``N - ceil((N - 1) * (1 - fraction))`` rows without ties,
    exactly ``fraction * N`` when that is whole; rows tied at the cutoff are all kept. DataComp's
    ``get_threshold`` (baselines/apply_filter.py) takes the ``floor(fraction * N)``-th score in
    descending order, one row more when ``fraction * N`` is whole. None when no value is ranked.
    """
    sql = (
        f"SELECT quantile_cont(v, {bind(1.0 - fraction)}), count(v) FROM (SELECT CAST(v AS DOUBLE) AS v "
        f"FROM {values}) WHERE NOT isnan(v)"
    )
    cutoff, n = con.execute(sql, bind.used(sql)).fetchone()
    return (None if cutoff is None else float(cutoff)), int(n)


_local = threading.local()


def evaluate(table: pa.Table, cols: Columns, rules: Rules) -> tuple[np.ndarray, pa.Array]:
    """Keep mask and reasons of ``rules`` (written against ``cols``) on ``table``, in DuckDB.

    Only the columns the rules read are handed over: DuckDB matches names case-insensitively, so
    ``aesthetic_score`` next to ``AESTHETIC_SCORE`` would be renamed ``aesthetic_score_1``.
    """
    con = getattr(_local, "con", None)
    if con is None:  # one per thread, reused: a connection costs more than a small batch's query
        con = _local.con = open_duckdb(config={"threads": 1})
        configure(con)
    con.register("__t2i_batch", table.select(cols.used))
    try:
        sql = f"SELECT {case(rules, cols.bind)} FROM __t2i_batch"
        reason = con.sql(sql, params=cols.bind.used(sql)).to_arrow_table().column(0).combine_chunks()
    finally:
        con.unregister("__t2i_batch")
    keep = np.asarray(pc.is_null(reason).to_numpy(zero_copy_only=False), dtype=bool)
    return keep, reason.cast(pa.string())


def decide(n: int, rules: list[tuple[np.ndarray, str]]) -> tuple[np.ndarray, pa.Array]:
    """Apply ordered (drop-mask, reason) rules of a Python stage: the first that matches names the reason."""
    codes = np.zeros(n, dtype=np.int32)
    for i, (mask, _) in enumerate(rules, start=1):
        codes[(codes == 0) & np.asarray(mask, dtype=bool)] = i
    keep = codes == 0
    dictionary = pa.array([None] + [r for _, r in rules], pa.string())
    reason = pa.DictionaryArray.from_arrays(pa.array(codes), dictionary).cast(pa.string())
    return keep, reason


def load_all() -> None:
    """Import every operator module so the registry is complete."""
    from t2iscope.curate.operators import (  # noqa: F401
        aesthetic,
        caption,
        clip_score,
        dedup,
        domain,
        language,
        near_dedup,
        resolution,
        unsafe,
        validity,
        watermark,
    )
