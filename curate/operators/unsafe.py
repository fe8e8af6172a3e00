"""``unsafe``: LAION's punsafe (CLIP-based NSFW probability); LAION's safe convention keeps < 0.5."""

from __future__ import annotations

from t2iscope.config import Probability
from t2iscope.curate.operators import Columns, Rules, StageContext, rule_operator, threshold


@rule_operator("unsafe", numeric=True)
def unsafe(cols: Columns, ctx: StageContext, max_score: Probability = 0.5) -> Rules:
    """Keep rows with punsafe below ``max_score``."""
    return threshold(cols, "punsafe", high=max_score, hint="it comes with LAION's -joined sets")
