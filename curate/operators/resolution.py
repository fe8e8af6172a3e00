"""``resolution``: minimum side and area, maximum aspect ratio and side.

Before download it reads LAION's WIDTH/HEIGHT, which are swapped or wrong in places; after
download the same stage runs on the decoded image's size (``pixel_width``/``pixel_height``,
written by download.py), so a recipe can check both.
"""

from __future__ import annotations

from typing import Annotated

from t2iscope.config import Ge, NonNegInt, PositiveInt
from t2iscope.curate.operators import (
    METADATA,
    PIXELS,
    Columns,
    Rules,
    StageContext,
    rule_operator,
    sql_missing,
)

SIZE_COLUMNS = {METADATA: ("WIDTH", "HEIGHT"), PIXELS: ("pixel_width", "pixel_height")}


@rule_operator("resolution", phases=(METADATA, PIXELS), numeric=True)
def resolution(
    cols: Columns,
    ctx: StageContext,
    min_side: NonNegInt = 0,
    min_area: NonNegInt = 0,
    max_aspect_ratio: Annotated[float, Ge(1)] | None = None,  # longer side / shorter side: 1 or more
    max_side: PositiveInt | None = None,
) -> Rules:
    """Keep images whose smaller side, area, aspect ratio and larger side are in range."""
    w, h = (cols.col(c) for c in SIZE_COLUMNS[ctx.phase])
    rules = [(f"({sql_missing(w)} OR {sql_missing(h)} OR {w} <= 0 OR {h} <= 0)", "size_missing")]
    if min_side:
        rules.append((f"least({w}, {h}) < {cols.bind(int(min_side))}", f"min_side<{int(min_side)}"))
    if min_area:
        rules.append((f"CAST({w} AS DOUBLE) * {h} < {cols.bind(int(min_area))}", f"min_area<{int(min_area)}"))
    if max_aspect_ratio is not None:
        ratio = f"CAST(greatest({w}, {h}) AS DOUBLE) / least({w}, {h})"
        rules.append((f"{ratio} > {cols.bind(float(max_aspect_ratio))}", f"aspect>{max_aspect_ratio:g}"))
    if max_side is not None:
        rules.append((f"greatest({w}, {h}) > {cols.bind(int(max_side))}", f"max_side>{int(max_side)}"))
    return rules
