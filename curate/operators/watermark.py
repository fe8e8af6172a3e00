"""``watermark``: LAION's pwatermark, or ``watermark_score`` from the classifier in models/watermark.

LAION's "clean" subsets keep pwatermark < 0.8; SD v1.2's improved-aesthetics subset used < 0.5.
"""

from __future__ import annotations

from t2iscope.config import Probability
from t2iscope.curate.operators import Columns, Rules, StageContext
from t2iscope.curate.operators.model_score import Scorer, ScoreSource, ScoreStage


def _load() -> Scorer:
    from t2iscope.curate.scorers import watermark_scorer

    return watermark_scorer()


WATERMARK = ScoreStage("watermark", "pwatermark", "watermark_score", _load)


@WATERMARK.operator
def watermark(
    cols: Columns, ctx: StageContext, max_score: Probability = 0.8, source: ScoreSource = "auto"
) -> Rules:
    """Keep rows whose watermark probability is below ``max_score``."""
    return WATERMARK.threshold(cols, ctx, source, high=max_score)
