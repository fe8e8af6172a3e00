"""The one chart every audit page draws: a value per group with its 95% interval."""

from __future__ import annotations

import altair as alt
import pandas as pd


def intervals(
    df: pd.DataFrame, x: str, color: str | None = None, title: str = "value", mark: str = "point"
) -> alt.LayerChart:
    """``value`` per ``x`` (points, bars or a line) with error bars from ``ci_low`` to ``ci_high``."""
    line = mark == "line" and pd.api.types.is_numeric_dtype(df[x])
    enc: dict = {
        "x": alt.X(x, type="quantitative" if line else "nominal", title=x, axis=alt.Axis(labelAngle=0))
    }
    if color:
        enc["color"] = alt.Color(color, type="nominal")
        if not line:
            enc["xOffset"] = alt.XOffset(color, type="nominal")
    base = alt.Chart(df).encode(**enc)
    shapes = {"line": base.mark_line(point=True), "bar": base.mark_bar(opacity=0.8)}
    tooltip = [x, *([color] if color else []), "value", "n", "ci_low", "ci_high"]
    values = shapes.get(mark, base.mark_point(filled=True, size=80)).encode(
        y=alt.Y("value:Q", title=title), tooltip=tooltip
    )
    bars = base.mark_errorbar(thickness=2).encode(y=alt.Y("ci_low:Q", title=title), y2="ci_high:Q")
    return alt.layer(values, bars)
