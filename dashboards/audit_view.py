"""One audit metric on a page: the interval chart, the table under it, and the skipped counts."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd
import streamlit as st

from t2iscope.dashboards import charts, data


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
    line: bool = False,
    parity: float | None = None,
) -> pd.DataFrame:
    """Chart ``metric`` by its best slice column, with intervals; returns the rows shown."""
    df = rows[rows["metric"] == metric].dropna(axis=1, how="all")
    slices = data.slice_columns(df)
    x = next((c for c in x_prefer if c in slices), slices[0] if slices else None)
    color = next((c for c in color_prefer if c in slices and c != x), None)
    if x is None:
        st.metric(metric, f"{df['value'].iloc[0]:.3f}", help=f"n = {int(df['n'].iloc[0])}")
    else:
        chart = charts.intervals(df, x, color, title=metric, line=line)
        if parity is not None:
            rule = (
                alt.Chart(pd.DataFrame({"parity": [parity]}))
                .mark_rule(strokeDash=[4, 4])
                .encode(y="parity:Q")
            )
            chart = alt.layer(chart, rule)
        st.altair_chart(chart, width="stretch")
    shown = [c for c in (x, color) if c] + [c for c in slices if c not in (x, color)]
    st.dataframe(df[[*shown, "value", "n", "ci_low", "ci_high", "judge", "run"]], hide_index=True)
    return df


def skipped_note(rows: pd.DataFrame) -> None:
    """Say how many inputs an audit left out, and why (they are rows too)."""
    skipped = rows[rows["metric"] == "skipped"]
    for _, row in skipped.iterrows():
        st.caption(f"Skipped {int(row['value'])}: {row.get('note', '')}")
