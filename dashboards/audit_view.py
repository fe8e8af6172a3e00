"""One audit metric on a page: the interval chart, the table under it, and the skipped counts.

Audit tables are tidy with their own slice columns (``language``; ``source, culture, kind``;
``by, level, subject``; ``method, attack, strength``...). A page names which slice goes on the
x axis and which gets colors; every other slice that varies gets a picker, so one chart never
mixes rows of different slices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import streamlit as st

from t2iscope.dashboards import charts, data, ui
from t2iscope.evaluate.tables import CORE

ALL = "(all)"  # the audits' name for the pooled slice


def pick_metric(rows: pd.DataFrame, prefer: Sequence[str], key: str, label: str = "Metric") -> str | None:
    """A metric of the audit rows; the first whose name contains a ``prefer`` word is the default."""
    metrics = sorted(m for m in rows["metric"].dropna().unique() if m != "skipped")
    if not metrics:
        return None
    default = next((i for w in prefer for i, m in enumerate(metrics) if w in m), 0)
    return st.selectbox(label, metrics, index=default, key=key)


def show(
    rows: pd.DataFrame,
    metric: str,
    x_prefer: Sequence[str],
    color_prefer: Sequence[str] = (),
    mark: str = "point",
    pins: Mapping[str, str] | None = None,
    key: str = "audit",
) -> pd.DataFrame:
    """Chart ``metric`` by its best slice column with intervals; returns the rows shown."""
    df = rows[rows["metric"] == metric]
    df = df.drop(columns=[c for c in df if c not in (*CORE, "run") and df[c].isna().all()])
    slices = data.slice_columns(df)
    x = next((c for c in x_prefer if c in slices), None)
    color = next((c for c in color_prefer if c in slices and c != x), None)
    for col in [c for c in slices if c not in (x, color)]:
        values = sorted(df[col].dropna().astype(str).unique())
        wanted = (pins or {}).get(col, ALL)
        chosen = st.selectbox(  # the label is a column name from the file: Markdown-escaped
            ui.literal(col), values, index=values.index(wanted) if wanted in values else 0, key=f"{key}_{col}"
        )
        df = df[df[col].astype(str) == chosen]
    slices = data.slice_columns(df)
    x = x if x in slices else (slices[0] if slices else None)
    color = color if color in slices and color != x else None
    if x is None:
        st.metric(ui.literal(metric), f"{df['value'].iloc[0]:.3f}", help=f"n = {df['n'].iloc[0]:g}")
    else:
        st.altair_chart(charts.intervals(df, x, color, title=metric, mark=mark), width="stretch")
    shown = [c for c in (x, color) if c] + [c for c in slices if c not in (x, color)]
    st.dataframe(df[[*shown, "value", "n", "ci_low", "ci_high", "judge", "run"]], hide_index=True)
    return df


def skipped_note(rows: pd.DataFrame) -> None:
    """Say how many inputs an audit left out, and why (they are rows too)."""
    for _, row in rows[rows["metric"] == "skipped"].iterrows():
        st.caption(f"Skipped {row['value']:g}: {ui.literal(row['note'] or '')}")
