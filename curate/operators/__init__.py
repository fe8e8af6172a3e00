"""Curation operators: pure functions over Arrow tables, registered by name.

An operator first computes its statistics (``lang``, ``domain``, ``aesthetic_score``...) and then
decides keep/drop from them (Data-Juicer's split), so thresholds can be re-tuned on the kept
columns without recomputing. Each drop carries a short reason code (``min_side<512``) that is the
same whether the engine evaluated the predicate in DuckDB (``sql``) or in Arrow (``fn``).

A new operator is one module here that calls ``OPERATORS.register``; importing this package
imports them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t2iscope.errors import DataError
from t2iscope.registry import Registry

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


@dataclass(frozen=True)
class StageResult:
    """Per-row keep mask, reason for each dropped row, new columns, and counts for stats.json."""

    keep: np.ndarray
    reason: pa.Array  # string, null where kept
    columns: dict[str, pa.Array] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


# A pushdown returns ordered (drop-condition SQL, reason) pairs, or None when it cannot express
# the stage for these columns/params (the engine then runs ``fn`` in Arrow).
SqlPushdown = Callable[..., "list[tuple[str, str]] | None"]


@dataclass(frozen=True)
class Operator:
    name: str
    fn: Callable[..., StageResult]  # fn(table, ctx, **params)
    phases: frozenset[str]
    outputs: dict[str, pa.DataType]  # columns the stage may add
    sql: SqlPushdown | None = None
    stateful: bool = False  # depends on rows seen before (dedup): never reordered
    numeric: bool = False  # judges numeric metadata only (sizes, scores): cheap, runs before validity


OPERATORS: Registry[Operator] = Registry("curation stage")


def operator(
    name: str,
    *,
    phases: tuple[str, ...] = (METADATA,),
    outputs: dict[str, pa.DataType] | None = None,
    sql: SqlPushdown | None = None,
    stateful: bool = False,
    numeric: bool = False,
) -> Callable[[Callable[..., StageResult]], Callable[..., StageResult]]:
    """Decorator registering ``fn(table, ctx, **params) -> StageResult`` under ``name``."""

    def add(fn: Callable[..., StageResult]) -> Callable[..., StageResult]:
        OPERATORS.register(name)(
            Operator(name, fn, frozenset(phases), dict(outputs or {}), sql, stateful, numeric)
        )
        return fn

    return add


# -- helpers shared by operators ------------------------------------------------------------------


def require(table: pa.Table, column: str, ctx: StageContext, stage: str, hint: str = "") -> pa.ChunkedArray:
    if column not in table.column_names:
        extra = f"; {hint}" if hint else ""
        raise DataError(f"{ctx.source}: stage '{stage}' needs column {column}, which is missing{extra}")
    return table.column(column)


def missing(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Null or NaN, as a numpy bool mask: the rows a numeric predicate cannot decide."""
    mask = pc.is_null(values, nan_is_null=True) if pa.types.is_floating(values.type) else pc.is_null(values)
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def to_float(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Float64 numpy view with NaN for nulls (comparisons with NaN are False, masks cover them)."""
    return np.asarray(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def sql_missing(column: str) -> str:
    """SQL twin of :func:`missing` (DuckDB sorts NaN above every number, so test it explicitly)."""
    return f'("{column}" IS NULL OR isnan(CAST("{column}" AS DOUBLE)))'


def decide(n: int, rules: list[tuple[np.ndarray, str]]) -> tuple[np.ndarray, pa.Array]:
    """Apply ordered (drop-mask, reason) rules: the first rule that matches names the reason."""
    codes = np.zeros(n, dtype=np.int32)
    for i, (mask, _) in enumerate(rules, start=1):
        codes[(codes == 0) & np.asarray(mask, dtype=bool)] = i
    keep = codes == 0
    dictionary = pa.array([None] + [r for _, r in rules], pa.string())
    reason = pa.DictionaryArray.from_arrays(pa.array(codes), dictionary).cast(pa.string())
    return keep, reason


def threshold_rules(
    values: pa.ChunkedArray, column: str, *, low: float | None = None, high: float | None = None
) -> list[tuple[np.ndarray, str]]:
    """Keep ``low <= value < high``; missing values get their own reason, never a silent pass."""
    x = to_float(values)
    rules = [(missing(values), f"{column}_missing")]
    if low is not None:
        rules.append((x < low, f"{column}<{low:g}"))
    if high is not None:
        rules.append((x >= high, f"{column}>={high:g}"))
    return rules


def threshold_sql(
    column: str, *, low: float | None = None, high: float | None = None
) -> list[tuple[str, str]]:
    rules = [(sql_missing(column), f"{column}_missing")]
    if low is not None:
        rules.append((f'"{column}" < {low!r}', f"{column}<{low:g}"))
    if high is not None:
        rules.append((f'"{column}" >= {high!r}', f"{column}>={high:g}"))
    return rules


def load_all() -> None:
    """Import every operator module so the registry is complete."""
    from t2iscope.curate.operators import (  # noqa: F401
        aesthetic,
        caption,
        dedup,
        domain,
        language,
        resolution,
        unsafe,
        validity,
        watermark,
    )
