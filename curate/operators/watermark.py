"""``watermark``: LAION's pwatermark, or ``watermark_score`` from the classifier in models/watermark.

LAION's "clean" subsets keep pwatermark < 0.8; SD v1.2's improved-aesthetics subset used < 0.5.
"""

from __future__ import annotations

import pyarrow as pa

from t2iscope.curate.operators import (
    METADATA,
    PIXELS,
    StageContext,
    StageResult,
    decide,
    operator,
    threshold_rules,
    threshold_sql,
)
from t2iscope.curate.operators.model_score import scores


def _sql(columns: set[str], max_score: float = 0.8, source: str = "auto") -> list[tuple[str, str]] | None:
    if source == "model" or "pwatermark" not in columns:
        return None
    return threshold_sql("pwatermark", high=max_score)


def _load():
    from t2iscope.curate.scorers import watermark_scorer

    return watermark_scorer()


@operator(
    "watermark", phases=(METADATA, PIXELS), outputs={"watermark_score": pa.float32()}, sql=_sql, numeric=True
)
def watermark(
    table: pa.Table, ctx: StageContext, max_score: float = 0.8, source: str = "auto"
) -> StageResult:
    """Keep rows whose watermark probability is below ``max_score``."""
    values, name, cols = scores(table, ctx, "watermark", source, "pwatermark", "watermark_score", _load)
    keep, reason = decide(table.num_rows, threshold_rules(values, name, high=max_score))
    return StageResult(keep, reason, cols)
