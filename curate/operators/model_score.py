"""Shared logic of the score stages that read a LAION column or compute it from pixels.

``source: column`` thresholds LAION's precomputed score; ``source: model`` scores downloaded
images with the head in models/; ``auto`` means column before download, model after. Either way
the threshold is the stage's one SQL rule, on whichever column holds the scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from t2iscope.curate.operators import (
    METADATA,
    PIXELS,
    Columns,
    RuleFn,
    Rules,
    StageContext,
    require,
    rule_operator,
    threshold,
)
from t2iscope.errors import ConfigError

ScoreSource = Literal["auto", "column", "model"]
Scorer = Callable[[list[bytes]], np.ndarray]  # encoded images -> one score each
COLUMN_HINT = "use LAION's -joined/aesthetics sets, or score images after download (source: model)"


def resolve_source(source: ScoreSource, phase: str, stage: str) -> Literal["column", "model"]:
    """``auto`` by phase; refuses ``model`` before download (the recipe parser checked the value)."""
    if source == "auto":
        return "column" if phase == METADATA else "model"
    if source == "model" and phase != PIXELS:
        raise ConfigError(f"stage '{stage}': source 'model' needs images; list it under post_download")
    return source


@dataclass(frozen=True)
class ScoreStage:
    """A score stage: LAION's ``column``, or ``out_column`` from the scorer ``load`` builds."""

    name: str
    column: str
    out_column: str
    load: Callable[[], Scorer]  # imports and loads lazily: called once per run, on first use

    def operator(self, rule: RuleFn) -> RuleFn:
        """Register ``rule`` (its parameters include ``source``) as this stage, model scoring included."""
        return rule_operator(
            self.name,
            phases=(METADATA, PIXELS),
            outputs={self.out_column: pa.float32()},
            numeric=True,
            prepare=self.scores,
        )(rule)

    def scores(
        self, table: pa.Table, ctx: StageContext, source: ScoreSource, **_: Any
    ) -> dict[str, pa.Array]:
        """``{out_column: scores}`` of the batch's images when the stage scores pixels, else nothing."""
        if resolve_source(source, ctx.phase, self.name) == "column":
            return {}
        scorer = ctx.state.get("scorer")
        if scorer is None:
            scorer = ctx.state["scorer"] = self.load()
        images = require(table, "image", ctx, self.name).to_pylist()
        return {self.out_column: pa.array(scorer(images), pa.float32())}

    def threshold(
        self,
        cols: Columns,
        ctx: StageContext,
        source: ScoreSource,
        *,
        low: float | None = None,
        high: float | None = None,
    ) -> Rules:
        """The stage's rule: ``low <= score < high`` on the column ``source`` picks for this phase."""
        column = self.column if resolve_source(source, ctx.phase, self.name) == "column" else self.out_column
        return threshold(cols, column, low=low, high=high, hint=COLUMN_HINT)
