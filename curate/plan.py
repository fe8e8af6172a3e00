"""What both engines execute: one plan per input shard, and one tally type for what it counted.

Planning is separate from running, as in img2dataset (its reader makes shard descriptions, its
distributors only run them: multiprocessing, pyspark or ray, ``img2dataset/distributor.py``) and
Data-Juicer (a recipe becomes a list of operators; ``executor/default_executor.py`` and
``executor/ray_executor.py`` run the same list). Here a :class:`ShardPlan` says how one shard is
curated: which leading rule stages go into the DuckDB query as one CASE (``pushed``), which stages
then run on Arrow batches (``rest``), and whether DuckDB can do the whole job (``all_sql``: every
stage is SQL and the shard is parquet). ``LocalEngine.execute`` runs a plan, on the calling
thread (``curate run``'s local engine, shards side by side on threads) or inside a Ray task
(``engine_ray``); a :class:`Tally` holds what it counted, and tallies of shards add up into the
run's ``stats.json``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from t2iscope.curate.operators import Columns, MissingColumn, Rules, StageContext, case
from t2iscope.curate.readers import INTERNAL_PREFIX, InputShard
from t2iscope.curate.recipe import Stage
from t2iscope.sql import Params

STAGE_ALIAS, REASON_ALIAS = f"{INTERNAL_PREFIX}stage", f"{INTERNAL_PREFIX}reason"
# What a stage's tally dict holds besides the stage's own statistics (language counts...).
COUNT_KEYS = frozenset({"stage", "params", "rows_in", "rows_out", "dropped", "seconds", "pushed_down"})


def merge_extra(into: dict[str, Any], new: dict[str, Any]) -> None:
    """Sum nested count dicts (language stats) in place."""
    for key, value in new.items():
        if isinstance(value, dict):
            merge_extra(into.setdefault(key, {}), value)
        else:
            into[key] = into.get(key, 0) + value


@dataclass
class StageCounts:
    """One stage's tallies for stats.json: rows in and out, drops by reason, seconds, its own
    statistics (``extra``: language counts); summed over batches, shards and workers."""

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

    def add(self, saved: dict[str, Any]) -> None:
        """Add a tally :meth:`to_dict` wrote (a finished shard's marker, a worker's result)."""
        self.rows_in += saved["rows_in"]
        self.rows_out += saved["rows_out"]
        self.dropped.update(saved["dropped"])
        self.seconds += saved["seconds"]
        self.pushed_down = self.pushed_down or saved.get("pushed_down", False)
        merge_extra(
            self.extra, {k: v for k, v in saved.items() if isinstance(v, dict) and k not in COUNT_KEYS}
        )


@dataclass
class Tally:
    """What curating one shard (or a whole run) counted: per stage, languages, seconds.

    ``languages`` counts rows by ``LANGUAGE`` coming in and by ``lang`` (else ``LANGUAGE``) going
    out; ``duckdb_seconds`` the share spent in the pushed-down query. :meth:`to_dict` is the
    shard marker's format (``_state/part-NNNNN.json``), :meth:`add` reads one back.
    """

    stages: list[StageCounts]
    lang_in: Counter = field(default_factory=Counter)
    lang_out: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    duckdb_seconds: float = 0.0

    @classmethod
    def empty(cls, n: int, pushed: int = 0) -> Tally:
        """A tally of ``n`` stages, the first ``pushed`` of which run inside the DuckDB query."""
        return cls([StageCounts(pushed_down=i < pushed) for i in range(n)])

    def to_dict(self, stages: Sequence[Stage]) -> dict[str, Any]:
        return {
            "stages": [{"stage": s.name, **c.to_dict()} for s, c in zip(stages, self.stages, strict=True)],
            "languages": {"in": dict(self.lang_in), "out": dict(self.lang_out)},
            "seconds": self.seconds,
            "duckdb_seconds": self.duckdb_seconds,
        }

    def add(self, saved: dict[str, Any]) -> None:
        for counts, stage in zip(self.stages, saved["stages"], strict=True):
            counts.add(stage)
        self.lang_in.update(saved["languages"]["in"])
        self.lang_out.update(saved["languages"]["out"])
        self.seconds += saved["seconds"]
        self.duckdb_seconds += saved["duckdb_seconds"]


@dataclass
class ShardPlan:
    """How one shard is curated (module docstring): built by :func:`plan_shard`, run by
    ``LocalEngine.execute``. ``query`` selects the shard's rows under LAION's names with two
    columns more, the first pushed stage that drops the row and its reason (null: kept by all)."""

    shard: InputShard
    select: str  # the shard's select list under LAION's names (readers.select_list)
    names: list[str]  # the columns it gives
    bind: Params  # the values the query's SQL refers to
    pushed: list[tuple[str, Rules]]  # leading rule stages, in recipe order, inside the query
    rest: list[tuple[Stage, StageContext]]  # the stages after them, run on Arrow batches
    query: str

    @property
    def all_sql(self) -> bool:
        """Every stage is in the query and the shard is parquet: DuckDB does the whole job
        (csv/json: one streaming read beats re-parsing the text in three passes)."""
        return not self.rest and self.shard.format == "parquet"


def plan_shard(
    shard: InputShard,
    select: str,
    names: Sequence[str],
    stages: Sequence[Stage],
    contexts: Sequence[StageContext],
) -> ShardPlan:
    """The plan for ``shard`` (its select list and columns from ``readers.select_list``) under
    ``stages``, whose run state is ``contexts`` (cutoffs, dedup memory; ``source`` set here).

    The leading rule stages whose columns the shard has are pushed into the query: the rules
    read LAION's names, the renamed columns, never the file's own column of that name. A stage
    that lacks a column is left to its ``fn``, which raises the same MissingColumn if it runs.
    """
    for ctx in contexts:
        ctx.source = shard.path
    bind = Params()
    pushed: list[tuple[str, Rules]] = []
    for stage, ctx in zip(stages, contexts, strict=True):
        if stage.op.rule is None:
            break
        try:
            cols = Columns(frozenset(names), bind, shard.path, stage.name)
            pushed.append((stage.name, stage.op.rule(cols, ctx, **stage.params)))
        except MissingColumn:
            break
    rest = list(zip(stages, contexts, strict=True))[len(pushed) :]
    whens = [(stage, cond, reason) for stage, rules in pushed for cond, reason in rules]
    query = (
        f"SELECT *, {case(((c, st) for st, c, _ in whens), bind)} AS {STAGE_ALIAS}, "
        f"{case(((c, r) for _, c, r in whens), bind)} AS {REASON_ALIAS} "
        f"FROM (SELECT {select} FROM {shard.relation(bind)})"
    )
    return ShardPlan(shard, select, list(names), bind, pushed, rest, query)
