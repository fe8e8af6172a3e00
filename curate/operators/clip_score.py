"""``clip_score``: image-caption CLIP similarity; LAION's ``similarity``, or ``clip_score`` from pixels.

Anchors: LAION-400M kept CLIP ViT-B/32 image-text cosine >= 0.3 and LAION-5B >= 0.28, and both
ship that cosine as ``similarity``; DataComp's "CLIP score" baseline keeps the top 30% of its pool
by ViT-L/14 cosine (``clip_l14_similarity_score``). Before download the stage reads ``similarity``
(the readers map DataComp's ``clip_b32_similarity_score`` and COYO's ``clip_similarity_vitb32``
onto it). After download (``source: model``, the default there) it computes ``clip_score``: the
cosine of the downloaded image's and its TEXT's L2-normalised embeddings (float32 in [-1, 1]), with
the embedded tiny CLIP (``models/clip``) or the open_clip folder ``model`` names
(``open_clip_config.json`` and its weights; absolute, or relative to the working folder), loaded
once per process and before img2dataset starts. A missing image or a missing or blank caption
scores NaN and is dropped as ``clip_score_missing`` (``similarity_missing`` before download).

Give exactly one threshold. ``min_score`` keeps rows with cosine >= it. ``top_fraction`` keeps
the top fraction of the pool, as DataComp does: the pool is every row the phase starts from
(every input row of ``curate run``; every successfully downloaded image of ``curate download``),
not only the rows earlier stages leave, so the cutoff does not depend on stage order and the
stage composes with others as DataComp's baselines intersect. The cutoff is the pool's
linear-interpolated ``1 - top_fraction`` quantile of the scores that are neither null nor NaN
(``operators.pool_cutoff``; rows without a score are dropped, never ranked); rows at or above it
are kept, ties included, so ``top_fraction`` of a pool without ties and without missing scores
stays, exactly when ``top_fraction x N`` is whole. ``curate run`` computes it with one DuckDB
query over all input files before the shards run and keeps it in ``_state/cutoffs.json`` (a resumed
run reuses it); ``curate download`` first scores every downloaded image once (kept per shard in
``_state/post``, reused by the filtering pass and by a resumed command). stats.json records the
cutoff and the pool's size; the drop reason names both (``similarity<0.2871(top 30%)``).
"""

from __future__ import annotations

from typing import Annotated, Any

from t2iscope.config import Ge, Gt, Le
from t2iscope.curate.operators import Columns, Rules, StageContext
from t2iscope.curate.operators.model_score import (
    Scorer,
    ScoreSource,
    ScoreStage,
    check_open_clip_folder,
    resolve_source,
)
from t2iscope.errors import ConfigError

HINT = "LAION's metadata has it, DataComp and COYO under other names; or score images after download"


def _load(model: str | None) -> Scorer:
    from t2iscope.curate.scorers import clip_scorer

    return clip_scorer(model)


def _threshold_problem(min_score: float | None, top_fraction: float | None) -> str | None:
    if (min_score is None) == (top_fraction is None):
        return (
            "give exactly one of min_score (a cosine; LAION kept >= 0.28) and top_fraction "
            "(a share of the pool; DataComp kept 0.3)"
        )
    return None


def _check(params: dict[str, Any], phase: str) -> None:
    """What the signature cannot say: one threshold, and a ``model`` that is an open_clip folder."""
    problem = _threshold_problem(params.get("min_score"), params.get("top_fraction"))
    if problem:
        raise ValueError(problem)
    model = params.get("model")
    if model is None:
        return
    if resolve_source(params.get("source", "auto"), phase, "clip_score") == "column":
        raise ValueError("model scores images (source: model, under post_download); here similarity is read")
    check_open_clip_folder(model)


CLIP_SCORE = ScoreStage(
    "clip_score",
    "similarity",
    "clip_score",
    _load,
    inputs=("image", "TEXT"),
    load_params=("model",),
    hint=HINT,
    check=_check,
)


@CLIP_SCORE.operator
def clip_score(
    cols: Columns,
    ctx: StageContext,
    min_score: Annotated[float, Ge(-1), Le(1)] | None = None,
    top_fraction: Annotated[float, Gt(0), Le(1)] | None = None,
    source: ScoreSource = "auto",
    model: str | None = None,
) -> Rules:
    """Keep rows whose image-caption CLIP cosine is at least ``min_score``, or in the top ``top_fraction``."""
    problem = _threshold_problem(min_score, top_fraction)
    if problem:
        raise ConfigError(f"stage 'clip_score': {problem}")
    return CLIP_SCORE.threshold(cols, ctx, source, low=min_score, top_fraction=top_fraction)
