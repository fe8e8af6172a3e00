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


def check_source(params: dict[str, Any], phase: str) -> None:
    """A score stage's parse-time check (its ``Operator.check``): ``source: model`` needs images."""
    if params.get("source") == "model" and phase != PIXELS:
        raise ValueError("source 'model' needs images; list it under post_download")


def resolve_source(source: ScoreSource, phase: str, stage: str) -> Literal["column", "model"]:
    """``auto`` by phase; refuses ``model`` before download.

    Recipes are checked when read (``check_source``); this guards a direct call of the stage's fn.
    """
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
        registered = rule_operator(
            self.name,
            phases=(METADATA, PIXELS),
            outputs={self.out_column: pa.float32()},
            numeric=True,
            prepare=self.scores,
            check=check_source,
            preload=self.preload,
        )(rule)
        return registered

    def preload(self, params: dict[str, Any], phase: str) -> None:
        """The stage's ``Operator.preload``: load the model it will score ``phase``'s rows with, if any.

        ``t2iscope curate download`` calls it for every post_download stage before img2dataset
        starts, so a missing or broken model folder stops the command before anything is fetched or
        written. The loader caches per process, so the stage's own load later costs nothing.
        """
        # recipe stages carry every parameter (bind_params fills defaults); "auto" is the signature's
        if resolve_source(params.get("source", "auto"), phase, self.name) == "model":
            self.load()

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
