"""Shared logic of the score stages that read a LAION column or compute it from pixels.

``source: column`` thresholds LAION's precomputed score; ``source: model`` scores downloaded
images with the head in models/; ``auto`` means column before download, model after.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from t2iscope.curate.operators import METADATA, PIXELS, StageContext, require
from t2iscope.errors import ConfigError

SOURCES = ("auto", "column", "model")


def resolve_source(source: str, phase: str, stage: str) -> str:
    if source not in SOURCES:
        raise ConfigError(f"stage '{stage}': source {source!r}; valid: {', '.join(SOURCES)}")
    if source == "auto":
        return "column" if phase == METADATA else "model"
    if source == "model" and phase != PIXELS:
        raise ConfigError(f"stage '{stage}': source 'model' needs images; list it under post_download")
    return source


def scores(
    table: pa.Table,
    ctx: StageContext,
    stage: str,
    source: str,
    column: str,
    out_column: str,
    load: Callable[[], Callable[[list[bytes]], np.ndarray]],
) -> tuple[pa.ChunkedArray | pa.Array, str, dict[str, pa.Array]]:
    """(values to threshold, their name, new columns) for this batch."""
    if resolve_source(source, ctx.phase, stage) == "column":
        hint = "use LAION's -joined/aesthetics sets, or score images after download (source: model)"
        return require(table, column, ctx, stage, hint), column, {}
    scorer = ctx.state.get("scorer")
    if scorer is None:
        scorer = ctx.state["scorer"] = load()
    images = require(table, "image", ctx, stage).to_pylist()
    values = pa.array(scorer(images), pa.float32())
    return values, out_column, {out_column: values}
