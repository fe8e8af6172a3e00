"""What a curation run did to each group (domain, language, culture): pass rates per stage.

From one grouped count of (group, stage dropped at) we get, per group, the share of the input
and of the output, the overall keep rate and each stage's pass rate among the rows that reached
it, with Wilson intervals, plus the lift against the stage's overall pass rate (>1: the stage
favours the group). Counting in DuckDB keeps this flat in memory on any run size.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from t2iscope.evaluate.parquet_inputs import CurationRun
from t2iscope.evaluate.tables import measure, rate

KEPT = "(kept)"


def stage_counts(run: CurationRun, key_sql: str, join: str = "") -> pd.DataFrame:
    """Rows per (key, stage) where stage is the stage a row was dropped at, or KEPT.

    The run's rows are aliased ``d``; ``join`` may add e.g. ``LEFT JOIN ... t ON t.hash = d.hash``.
    """
    parts = []
    if run.kept:
        parts.append(
            f"SELECT {key_sql} AS key, '{KEPT}' AS stage, count(*) AS rows "
            f"FROM read_parquet({run.kept!r}, union_by_name=true) d {join} GROUP BY 1"
        )
    if run.dropped:
        parts.append(
            f"SELECT {key_sql} AS key, CAST(d.stage AS VARCHAR) AS stage, count(*) AS rows "
            f"FROM read_parquet({run.dropped!r}, union_by_name=true) d {join} GROUP BY 1, 2"
        )
    df = duckdb.sql(" UNION ALL ".join(parts)).df()
    df["key"] = df["key"].fillna("(none)").astype(str)
    return df


def shift_rows(counts: pd.DataFrame, stages: list[str], group: str, keys: list[str]) -> list[dict[str, Any]]:
    """Measurements of input/output share, keep rate and per-stage pass rate for ``keys``."""
    wide = counts.pivot_table(index="key", columns="stage", values="rows", aggfunc="sum", fill_value=0)
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
