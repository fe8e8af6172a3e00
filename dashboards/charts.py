"""The one chart every audit page draws: a value per group with its 95% interval."""

from __future__ import annotations

import altair as alt
import pandas as pd


def intervals(
    df: pd.DataFrame, x: str, color: str | None = None, title: str = "value", mark: str = "point"
) -> alt.LayerChart:
    """``value`` per ``x`` (points, bars or a line) with error bars from ``ci_low`` to ``ci_high``."""
    # Vega reads "." and "[...]" in a field name as a path into nested data, so the chart gets its
    # own column names; the audit table's (any text at all) are only titles.
    plot = pd.DataFrame({"x": df[x].to_numpy()})
    for col in ("value", "n", "ci_low", "ci_high"):
        plot[col] = df[col].to_numpy()
    line = mark == "line" and pd.api.types.is_numeric_dtype(plot["x"])
    enc: dict = {
        "x": alt.X("x", type="quantitative" if line else "nominal", title=x, axis=alt.Axis(labelAngle=0))
    }
    tooltip = [alt.Tooltip("x", title=x)]
    if color:
        plot["group"] = df[color].to_numpy()
        enc["color"] = alt.Color("group", type="nominal", title=color)
        tooltip.append(alt.Tooltip("group", title=color))
        if not line:
            enc["xOffset"] = alt.XOffset("group", type="nominal")
    base = alt.Chart(plot).encode(**enc)
    shapes = {"line": base.mark_line(point=True), "bar": base.mark_bar(opacity=0.8)}
    tooltip += ["value", "n", "ci_low", "ci_high"]
    values = shapes.get(mark, base.mark_point(filled=True, size=80)).encode(
        y=alt.Y("value:Q", title=title), tooltip=tooltip
    )
    bars = base.mark_errorbar(thickness=2).encode(y=alt.Y("ci_low:Q", title=title), y2="ci_high:Q")
    return alt.layer(values, bars)
