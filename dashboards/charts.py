"""The one chart every audit page draws: a value per group with its 95% interval."""

from __future__ import annotations

import altair as alt
import pandas as pd


def intervals(
    df: pd.DataFrame, x: str, color: str | None = None, title: str = "value", line: bool = False
) -> alt.LayerChart:
    """Points (or lines) at ``value`` with error bars from ``ci_low`` to ``ci_high``."""
    kind = "quantitative" if line and pd.api.types.is_numeric_dtype(df[x]) else "nominal"
    enc_x = alt.X(x, type=kind, title=x, axis=alt.Axis(labelAngle=0))
    enc: dict = {"x": enc_x}
    if color:
        enc["color"] = alt.Color(color, type="nominal")
        if not line:
            enc["xOffset"] = alt.XOffset(color, type="nominal")
    base = alt.Chart(df).encode(**enc)
    mark = base.mark_line(point=True) if line else base.mark_point(filled=True, size=80)
    points = mark.encode(
        y=alt.Y("value:Q", title=title),
        tooltip=[x, *([color] if color else []), "value", "n", "ci_low", "ci_high"],
    )
    bars = base.mark_errorbar(thickness=2).encode(y=alt.Y("ci_low:Q", title=title), y2="ci_high:Q")
    return alt.layer(bars, points)
