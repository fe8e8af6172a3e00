"""Domain distribution: who the data comes from, how concentrated it is, and what curation shifts.

For each dataset (a parquet set, a world's metadata, or a curation run's input and output) and
each level (host and registrable domain): rows, distinct count, share of the top 10/100/1000,
HHI, Gini, the coverage curve and the top table. For a curation run, each filter's pass rate
per top domain shows which domains it favours. Rows whose URL has no host are counted, not lost.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from t2iscope.config import PositiveInt
from t2iscope.evaluate import stats
from t2iscope.evaluate.audits.base import AUDITS
from t2iscope.evaluate.context import AuditContext
from t2iscope.evaluate.parquet_inputs import CurationRun, parquet_files, pick_column
from t2iscope.evaluate.shift import UNRECORDED, shift_rows, stage_counts
from t2iscope.evaluate.tables import measure, rate, skipped, tidy
from t2iscope.evaluate.urls import NO_HOST, add_domains, head_sql, hosts
from t2iscope.sql import file_names, open_duckdb

TOP_K = (10, 100, 1000)
URL_COLUMNS = ("URL", "url")


def host_counts(files: list[str]) -> pd.DataFrame:
    """Rows per host over a parquet set (rows per URL head counted in DuckDB: one pass, flat memory)."""
    col = pick_column(files, *URL_COLUMNS)
    with open_duckdb() as con:
        counts = con.execute(
            f"SELECT {head_sql(col)} AS head, count(*) AS rows "
            "FROM read_parquet($files, union_by_name=true) GROUP BY 1",
            {"files": file_names(files)},
        ).df()
    return pd.DataFrame({"host": hosts(counts["head"]), "rows": counts["rows"]})


def level_counts(hosts: pd.DataFrame) -> dict[str, pd.Series]:
    """Rows per host and per registrable domain, largest first."""
    with_domains = add_domains(hosts)
    return {
        level: with_domains.groupby(level)["rows"].sum().sort_values(ascending=False, kind="stable")
        for level in ("host", "domain")
    }


def coverage_ranks(n: int) -> list[int]:
    """1, 2, 5, 10, 20, 50, ... up to n, and n itself: a log-spaced coverage curve."""
    ranks = sorted({int(m * 10**e) for e in range(0, 9) for m in (1, 2, 5) if m * 10**e <= n} | {n})
    return [r for r in ranks if r >= 1]


def distribution_rows(counts: pd.Series, dataset: str, level: str, top: int) -> list[dict[str, Any]]:
    """Concentration measurements for one dataset at one level (host or domain)."""
    no_host = int(counts.get(NO_HOST, 0))
    valid = counts.drop(NO_HOST, errors="ignore")
    values = valid.to_numpy()
    total = int(values.sum())
    sl = {"dataset": dataset, "level": level}
    rows = [measure("rows", total, total, **sl), measure("distinct", len(values), total, **sl)]
    if no_host:
        rows.append(skipped(no_host, "URL without a host", **sl))
    sorted_vals = np.sort(values)[::-1]
    for k in TOP_K:
        rows.append(rate(f"top{k}_share", int(sorted_vals[:k].sum()), total, **sl))
    rows.append(measure("hhi", stats.hhi(values), total, **sl))
    rows.append(measure("gini", stats.gini(values), total, **sl))
    curve = stats.coverage_curve(values)
    for r in coverage_ranks(len(values)):
        rows.append(measure("coverage", curve[r - 1], total, rank=r, **sl))
    for i, (name, c) in enumerate(valid.head(top).items(), start=1):
        rows.append(rate("share", int(c), total, rank=i, key=str(name), **sl))
    return rows


@AUDITS.audit(
    "domains",
    title="Domain distribution",
    section="t2iscope.evaluate.report_sections:section_domains",
    order=10,
    headline=("top100_share", {"level": "domain"}, "first", "share of rows from the top 100 domains"),
    needs=(("data", "world", "curation"),),
)
def domains_audit(ctx: AuditContext, top: PositiveInt = 20, shift_top: PositiveInt = 10) -> pd.DataFrame:
    """Host and registrable-domain distributions of every input with URLs, and curation's shift."""
    rows: list[dict[str, Any]] = []
    datasets = ctx.url_datasets()
    if not datasets and not ctx.inputs.curation:
        ctx.require("data", "domains")
    for name, path in datasets:
        for level, counts in level_counts(host_counts(parquet_files(path))).items():
            rows += distribution_rows(counts, name, level, top)
    for run_path in ctx.inputs.curation:
        run = CurationRun.open(run_path)
        col = pick_column(run.all_files(), *URL_COLUMNS)
        counts = stage_counts(run, head_sql(col))
        # a `dropped: keys|none` run's dropped rows come back under UNRECORDED, not a URL head
        counts["host"] = hosts(counts["key"]).where(counts["key"] != UNRECORDED, UNRECORDED)
        counts = add_domains(counts)
        name = run.root.name
        for level in ("host", "domain"):
            by_level = counts.groupby([level, "stage"], as_index=False)["rows"].sum()
            by_level = by_level.rename(columns={level: "key"})
            total_in = by_level.groupby("key")["rows"].sum().sort_values(ascending=False, kind="stable")
            kept = by_level[by_level["stage"] == "(kept)"].groupby("key")["rows"].sum()
            kept = kept.sort_values(ascending=False, kind="stable")
            # A `dropped: keys|none` run has no URLs for its dropped rows: its input distribution is
            # unknown (shift_rows counts those rows as a skip), so only the output is described.
            if UNRECORDED not in total_in.index:
                rows += distribution_rows(total_in, f"{name}:input", level, top)
            rows += distribution_rows(kept, f"{name}:output", level, top)
            keys = [k for k in total_in.index if k not in (NO_HOST, UNRECORDED)][:shift_top]
            for r in shift_rows(by_level, run.stages, level, keys):
                rows.append({**r, "dataset": name, "level": level})
    return tidy(rows, "domains", judge="none")
