"""``aesthetic``: LAION-Aesthetics' AESTHETIC_SCORE, or ``aesthetic_score`` from the head in models/.

LAION-Aesthetics v2 publishes 5+ and 6+ subsets; SD v1.2 trained on score > 5.0.
"""

from __future__ import annotations

from typing import Annotated

from t2iscope.config import Ge, Le
from t2iscope.curate.operators import Columns, Rules, StageContext
from t2iscope.curate.operators.model_score import Scorer, ScoreSource, ScoreStage


def _load() -> Scorer:
    from t2iscope.curate.scorers import aesthetic_scorer

    return aesthetic_scorer()


AESTHETIC = ScoreStage("aesthetic", "AESTHETIC_SCORE", "aesthetic_score", _load)


@AESTHETIC.operator
def aesthetic(
    cols: Columns,
    ctx: StageContext,
    min_score: Annotated[float, Ge(0), Le(10)] = 5.0,  # LAION's predictor scores 1-10
    source: ScoreSource = "auto",
) -> Rules:
    """Keep rows whose aesthetic score is at least ``min_score``."""
    return AESTHETIC.threshold(cols, ctx, source, low=min_score)
