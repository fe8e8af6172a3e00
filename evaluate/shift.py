"""What a curation run did to each group (domain, language, culture): pass rates per stage.

From one grouped count of (group, stage dropped at) we get, per group, the share of the input
and of the output, the overall keep rate and each stage's pass rate among the rows that reached
it, with Wilson intervals, plus the lift against the stage's overall pass rate (>1: the stage
favours the group). Counting in DuckDB keeps this flat in memory on any run size.

A run written with ``dropped: none`` (or ``keys``, for a key its lean dropped rows lack) cannot
say which group its dropped rows belonged to: they are counted per stage from stats.json under
the key ``UNRECORDED``, and only the output shares are measured, with the rest a counted skip.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from t2iscope.errors import DataError
from t2iscope.evaluate.parquet_inputs import CurationRun
from t2iscope.evaluate.tables import measure, rate, skipped
from t2iscope.sql import Params, file_names, open_duckdb

KEPT = "(kept)"
UNRECORDED = "(not recorded)"


def stage_counts(run: CurationRun, key_sql: str, truth: list[str] | None = None) -> pd.DataFrame:
    """Rows per (key, stage) where stage is the stage a row was dropped at, or KEPT.

    ``key_sql`` is an SQL expression over the run's rows, aliased ``d`` (names quoted with
    ``t2iscope.sql.ident``), and over a world's ``truth`` files, joined as ``t`` on ``hash`` when
    given. File lists are bound parameters (``file_names``), never SQL text.
    """
    p = Params()
    join = f"LEFT JOIN read_parquet({p(file_names(truth))}) t ON t.hash = d.hash" if truth else ""
    parts = []
    if run.kept:
        parts.append(
            f"SELECT {key_sql} AS key, {p(KEPT)} AS stage, count(*) AS rows "
            f"FROM read_parquet({p(file_names(run.kept))}, union_by_name=true) d {join} GROUP BY 1"
        )
    dropped = (
        f"SELECT {key_sql} AS key, CAST(d.stage AS VARCHAR) AS stage, count(*) AS rows "
        f"FROM read_parquet({p(file_names(run.dropped))}, union_by_name=true) d {join} GROUP BY 1, 2"
    )
    with open_duckdb() as con:
        if run.dropped and _binds(con, dropped, p):
            parts.append(dropped)
        sql = " UNION ALL ".join(parts)
        df = con.execute(sql, p.used(sql)).df()
    df["key"] = df["key"].fillna("(none)").astype(str)
    if run.dropped and len(parts) > 1:
        return df
    if run.dropped and not run.stage_drops:
        raise DataError(
            f"{run.root}: its dropped rows (dropped: {run.dropped_mode}) lack a column this audit "
            "groups by, and stats.json has no per-stage counts to fall back on"
        )
    unrecorded = [{"key": UNRECORDED, "stage": s, "rows": n} for s, n in run.stage_drops.items() if n]
    return pd.concat([df, pd.DataFrame(unrecorded, columns=df.columns)], ignore_index=True)


def _binds(con: duckdb.DuckDBPyConnection, sql: str, p: Params) -> bool:
    """Whether DuckDB can bind ``sql`` (a lean dropped file may lack the columns it names)."""
    try:
        con.execute(f"DESCRIBE {sql}", p.used(sql))
    except duckdb.BinderException:
        return False
    return True


def shift_rows(counts: pd.DataFrame, stages: list[str], group: str, keys: list[str]) -> list[dict[str, Any]]:
    """Measurements of input/output share, keep rate and per-stage pass rate for ``keys``."""
    wide = counts.pivot_table(index="key", columns="stage", values="rows", aggfunc="sum", fill_value=0)
    if UNRECORDED in wide.index:
        return _output_shares(wide, group, keys)
    for s in [*stages, KEPT]:
        if s not in wide.columns:
            wide[s] = 0
    order = stages + [s for s in wide.columns if s not in stages and s != KEPT]
    total_in = int(wide.to_numpy().sum())
    total_out = int(wide[KEPT].sum())
    rows: list[dict[str, Any]] = []
    reached = wide[order[::-1]].cumsum(axis=1)[order[::-1]] if order else wide[[]]
    for key in keys:
        if key not in wide.index:
            continue
        n_in = int(wide.loc[key].sum())
        n_out = int(wide.loc[key, KEPT])
        rows.append(rate("share_in", n_in, total_in, group=group, key=key, stage=""))
        rows.append(rate("share_out", n_out, total_out, group=group, key=key, stage=""))
        rows.append(rate("keep_rate", n_out, n_in, group=group, key=key, stage=""))
        overall_keep = total_out / total_in if total_in else float("nan")
        keep = n_out / n_in if n_in else float("nan")
        rows.append(
            measure(
                "keep_lift",
                keep / overall_keep if overall_keep else float("nan"),
                n_in,
                group=group,
                key=key,
                stage="",
            )
        )
        for s in order:
            reach = int(reached.loc[key, s]) + n_out
            passed = reach - int(wide.loc[key, s])
            rows.append(rate("pass_rate", passed, reach, group=group, key=key, stage=s))
            all_reach = int(reached[s].sum()) + total_out
            all_pass = all_reach - int(wide[s].sum())
            base = all_pass / all_reach if all_reach else float("nan")
            lift = (passed / reach) / base if reach and base else float("nan")
            rows.append(measure("pass_lift", lift, reach, group=group, key=key, stage=s))
    return rows


def _output_shares(wide: pd.DataFrame, group: str, keys: list[str]) -> list[dict[str, Any]]:
    """Dropped rows without their group: output shares are exact, the rest is a counted skip."""
    n_unrecorded = int(wide.loc[UNRECORDED].sum())
    kept = wide[KEPT] if KEPT in wide.columns else pd.Series(0, index=wide.index)
    total_out = int(kept.sum())
    rows = [
        rate("share_out", int(kept.get(key, 0)), total_out, group=group, key=key, stage="")
        for key in keys
        if key != UNRECORDED and key in wide.index
    ]
    reason = (
        f"dropped rows not recorded with their {group} (run written with dropped: keys or none); "
        "input shares, keep and pass rates not measured"
    )
    rows.append(skipped(n_unrecorded, reason, group=group, key=UNRECORDED, stage=""))
    return rows
