"""``unsafe``: LAION's punsafe (CLIP-based NSFW probability); LAION's safe convention keeps < 0.5."""

from __future__ import annotations

import pyarrow as pa

from t2iscope.curate.operators import (
    StageContext,
    StageResult,
    decide,
    operator,
    require,
    threshold_rules,
    threshold_sql,
)


def _sql(columns: set[str], max_score: float = 0.5) -> list[tuple[str, str]] | None:
    return threshold_sql("punsafe", high=max_score) if "punsafe" in columns else None


@operator("unsafe", sql=_sql, numeric=True)
def unsafe(table: pa.Table, ctx: StageContext, max_score: float = 0.5) -> StageResult:
    """Keep rows with punsafe below ``max_score``."""
    values = require(table, "punsafe", ctx, "unsafe", "it comes with LAION's -joined sets")
    keep, reason = decide(table.num_rows, threshold_rules(values, "punsafe", high=max_score))
    return StageResult(keep, reason)
