"""Tidy audit tables: one row per measurement, always with n and a 95% interval.

Every audit builds its rows with these helpers so the report, the dashboards and a reviewer's
own pandas session can read any audit the same way: fixed columns ``audit, judge, metric, value,
n, ci_low, ci_high, note`` plus the audit's own slice columns (language, attack, domain, ...).
Counted skips are rows too (``metric == "skipped"``), so nothing is silently dropped.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from t2iscope.evaluate.stats import wilson

CORE = ("audit", "judge", "metric", "value", "n", "ci_low", "ci_high", "note")
SKIPPED = "skipped"


def measure(
    metric: str,
    value: float,
    n: int,
    ci: tuple[float, float] = (math.nan, math.nan),
    note: str = "",
    **slices: Any,
) -> dict[str, Any]:
    """One measurement row; ``slices`` are the audit's group columns (e.g. ``language="de"``)."""
    return {
        "metric": metric,
        "value": float(value),
        "n": int(n),
        "ci_low": float(ci[0]),
        "ci_high": float(ci[1]),
        "note": note,
        **slices,
    }


def rate(metric: str, k: int, n: int, note: str = "", **slices: Any) -> dict[str, Any]:
    """A proportion k/n with its Wilson interval (nan when n == 0)."""
    return measure(metric, k / n if n else math.nan, n, wilson(int(k), int(n)), note, **slices)


def skipped(count: int, reason: str, **slices: Any) -> dict[str, Any]:
    """A counted skip: how many inputs were left out and why (the report lists these)."""
    return measure(SKIPPED, count, count, note=reason, **slices)


def tidy(rows: list[dict[str, Any]], audit: str, judge: str) -> pd.DataFrame:
    """Assemble rows into the tidy frame: core columns first, then slices, in first-seen order."""
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=[c for c in CORE if c not in ("audit", "judge")])
    df.insert(0, "audit", audit)
    df.insert(1, "judge", judge)
    slices = [c for c in df.columns if c not in CORE]
    for col in slices:
        if df[col].dtype == object:
            df[col] = df[col].map(lambda v: None if v is None or v != v else str(v))  # v != v: NaN
    return df[list(CORE) + slices].reset_index(drop=True)
