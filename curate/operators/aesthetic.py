"""``aesthetic``: LAION-Aesthetics' AESTHETIC_SCORE, or ``aesthetic_score`` from the head in models/.

LAION-Aesthetics v2 publishes 5+ and 6+ subsets; SD v1.2 trained on score > 5.0.
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


def _sql(columns: set[str], min_score: float = 5.0, source: str = "auto") -> list[tuple[str, str]] | None:
    if source == "model" or "AESTHETIC_SCORE" not in columns:
        return None
    return threshold_sql("AESTHETIC_SCORE", low=min_score)


def _load():
    from t2iscope.curate.scorers import aesthetic_scorer

    return aesthetic_scorer()


@operator(
    "aesthetic", phases=(METADATA, PIXELS), outputs={"aesthetic_score": pa.float32()}, sql=_sql, numeric=True
)
def aesthetic(
    table: pa.Table, ctx: StageContext, min_score: float = 5.0, source: str = "auto"
) -> StageResult:
    """Keep rows whose aesthetic score is at least ``min_score``."""
    values, name, cols = scores(table, ctx, "aesthetic", source, "AESTHETIC_SCORE", "aesthetic_score", _load)
    keep, reason = decide(table.num_rows, threshold_rules(values, name, low=min_score))
    return StageResult(keep, reason, cols)
