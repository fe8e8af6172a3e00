"""Helpers shared by the audits over judged generations: skip rows and grouped rates."""

from __future__ import annotations

from typing import Any

import pandas as pd

from t2iscope.evaluate.tables import rate, skipped


def split_ok(judged: pd.DataFrame, **slices: Any) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Readable rows, plus one counted-skip row per failure status (missing, corrupt)."""
    rows = [
        skipped(int(n), f"image {status}", **slices)
        for status, n in judged.loc[judged["status"] != "ok", "status"].value_counts().items()
    ]
    return judged[judged["status"] == "ok"], rows


def grouped_rates(
    df: pd.DataFrame, success: pd.Series, metric: str, by: str, **slices: Any
) -> list[dict[str, Any]]:
    """One Wilson-interval rate of ``success`` per value of column ``by``."""
    rows = []
    for value, idx in df.groupby(by, sort=True, dropna=False).groups.items():
        s = success.loc[idx]
        rows.append(rate(metric, int(s.sum()), len(s), by=by, level=str(value), **slices))
    return rows
