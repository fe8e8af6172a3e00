"""``resolution``: minimum side and area, maximum aspect ratio and side.

Before download it reads LAION's WIDTH/HEIGHT, which are swapped or wrong in places; after
download the same stage runs on the decoded image's size (``pixel_width``/``pixel_height``,
written by download.py), so a recipe can check both.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from t2iscope.curate.operators import (
    METADATA,
    PIXELS,
    StageContext,
    StageResult,
    decide,
    missing,
    operator,
    require,
    sql_missing,
    to_float,
)

SIZE_COLUMNS = {METADATA: ("WIDTH", "HEIGHT"), PIXELS: ("pixel_width", "pixel_height")}


def _sql(
    columns: set[str],
    min_side: int = 0,
    min_area: int = 0,
    max_aspect_ratio: float | None = None,
    max_side: int | None = None,
) -> list[tuple[str, str]] | None:
    if not {"WIDTH", "HEIGHT"} <= columns:
        return None
    w, h = '"WIDTH"', '"HEIGHT"'
    rules = [(f"({sql_missing('WIDTH')} OR {sql_missing('HEIGHT')} OR {w} <= 0 OR {h} <= 0)", "size_missing")]
    if min_side:
        rules.append((f"least({w}, {h}) < {int(min_side)}", f"min_side<{int(min_side)}"))
    if min_area:
        rules.append((f"CAST({w} AS DOUBLE) * {h} < {int(min_area)}", f"min_area<{int(min_area)}"))
    if max_aspect_ratio is not None:
        ratio = f"CAST(greatest({w}, {h}) AS DOUBLE) / least({w}, {h})"
        rules.append((f"{ratio} > {float(max_aspect_ratio)!r}", f"aspect>{max_aspect_ratio:g}"))
    if max_side is not None:
        rules.append((f"greatest({w}, {h}) > {int(max_side)}", f"max_side>{int(max_side)}"))
    return rules


@operator("resolution", phases=(METADATA, PIXELS), sql=_sql, numeric=True)
def resolution(
    table: pa.Table,
    ctx: StageContext,
    min_side: int = 0,
    min_area: int = 0,
    max_aspect_ratio: float | None = None,
    max_side: int | None = None,
) -> StageResult:
    """Keep images whose smaller side, area, aspect ratio and larger side are in range."""
    wcol, hcol = SIZE_COLUMNS[ctx.phase]
    wv, hv = require(table, wcol, ctx, "resolution"), require(table, hcol, ctx, "resolution")
    w, h = to_float(wv), to_float(hv)
    with np.errstate(invalid="ignore", divide="ignore"):
        unknown = missing(wv) | missing(hv) | (w <= 0) | (h <= 0)
        short, long = np.minimum(w, h), np.maximum(w, h)
        rules = [(unknown, "size_missing")]
        if min_side:
            rules.append((short < min_side, f"min_side<{int(min_side)}"))
        if min_area:
            rules.append((w * h < min_area, f"min_area<{int(min_area)}"))
        if max_aspect_ratio is not None:
            rules.append((long / short > max_aspect_ratio, f"aspect>{max_aspect_ratio:g}"))
        if max_side is not None:
            rules.append((long > max_side, f"max_side>{int(max_side)}"))
    keep, reason = decide(table.num_rows, rules)
    return StageResult(keep, reason)
