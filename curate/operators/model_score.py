"""Shared logic of the score stages that read a LAION column or compute it from pixels.

``source: column`` thresholds LAION's precomputed score; ``source: model`` scores downloaded
images with the head in models/; ``auto`` means column before download, model after. Either way
the threshold is the stage's one SQL rule, on whichever column holds the scores: an absolute bound,
or (a stage with a ``top_fraction`` parameter) the top fraction of the whole pool
(:class:`~t2iscope.curate.operators.TopFraction`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t2iscope.curate.operators import (
    METADATA,
    PIXELS,
    SCORES,
    Check,
    Columns,
    RuleFn,
    Rules,
    StageContext,
    TopFraction,
    require,
    rule_operator,
    threshold,
    top,
)
from t2iscope.errors import ConfigError, DataError

ScoreSource = Literal["auto", "column", "model"]
# The device the scorers load their models on when their caller names none (default cpu):
# Ray's post-download actors that hold a GPU set it to cuda in their own process (engine_ray).
DEVICE_ENV = "T2ISCOPE_SCORE_DEVICE"
# The columns ScoreStage.inputs names, as lists (encoded images first) -> one float score each.
Scorer = Callable[..., np.ndarray]
COLUMN_HINT = (
    "use LAION's -joined/aesthetics sets, map your column with the recipe's columns: entry, "
    "or score images after download (source: model)"
)


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
    # Imports and loads lazily, once per run, on first use: load(*the stage parameters load_params names).
    load: Callable[..., Scorer]
    inputs: tuple[str, ...] = ("image",)  # the batch columns the scorer takes, in order
    load_params: tuple[str, ...] = ()  # stage parameters that choose the model (a folder)
    hint: str = COLUMN_HINT  # where inputs without ``column`` can get it
    check: Check | None = None  # parse-time checks besides check_source

    def operator(self, rule: RuleFn) -> RuleFn:
        """Register ``rule`` (its parameters include ``source``) as this stage, model scoring included."""

        def checks(params: dict[str, Any], phase: str) -> None:
            check_source(params, phase)
            if self.check is not None:
                self.check(params, phase)

        registered = rule_operator(
            self.name,
            phases=(METADATA, PIXELS),
            outputs={self.out_column: pa.float32()},
            numeric=True,
            prepare=self.scores,
            check=checks,
            preload=self.preload,
            pool=self.pool,
        )(rule)
        return registered

    def score_column(self, source: ScoreSource, phase: str) -> str:
        """The column the stage thresholds in ``phase``: LAION's, or the one it scores."""
        return self.column if resolve_source(source, phase, self.name) == "column" else self.out_column

    def pool(self, params: dict[str, Any], phase: str) -> TopFraction | None:
        """The stage's ``Operator.pool``: its ``top_fraction`` of the pool by the phase's column."""
        fraction = params.get("top_fraction")
        if fraction is None:
            return None
        return TopFraction(self.score_column(params.get("source", "auto"), phase), fraction)

    def _load(self, params: dict[str, Any]) -> Scorer:
        return self.load(*(params.get(name) for name in self.load_params))

    def preload(self, params: dict[str, Any], phase: str) -> None:
        """The stage's ``Operator.preload``: load the model it will score ``phase``'s rows with, if any.

        ``t2iscope curate download`` calls it for every post_download stage before img2dataset
        starts, so a missing or broken model folder stops the command before anything is fetched or
        written. The loader caches per process, so the stage's own load later costs nothing.
        """
        # recipe stages carry every parameter (bind_params fills defaults); "auto" is the signature's
        if resolve_source(params.get("source", "auto"), phase, self.name) == "model":
            self._load(params)

    def scores(
        self, table: pa.Table, ctx: StageContext, source: ScoreSource, **params: Any
    ) -> dict[str, pa.Array]:
        """``{out_column: scores}`` of the batch's images when the stage scores pixels, else nothing.

        Scores the pool pass computed (``ctx.state[SCORES]``) are looked up by ``row_id``.
        """
        if resolve_source(source, ctx.phase, self.name) == "column":
            return {}
        ahead = ctx.state.get(SCORES)
        if ahead is not None:
            row_ids = require(table, "row_id", ctx, self.name)
            at = pc.index_in(row_ids, ahead.column("row_id").combine_chunks())
            if at.null_count:
                raise DataError(f"{ctx.source}: stage '{self.name}': rows the pool pass did not score")
            return {self.out_column: ahead.column(self.out_column).take(at).combine_chunks()}
        scorer = ctx.state.get("scorer")
        if scorer is None:
            scorer = ctx.state["scorer"] = self._load(params)
        inputs = [require(table, name, ctx, self.name).to_pylist() for name in self.inputs]
        return {self.out_column: pa.array(scorer(*inputs), pa.float32())}

    def threshold(
        self,
        cols: Columns,
        ctx: StageContext,
        source: ScoreSource,
        *,
        low: float | None = None,
        high: float | None = None,
        top_fraction: float | None = None,
    ) -> Rules:
        """The stage's rule on the column ``source`` picks for this phase: ``low <= score < high``,
        or, with ``top_fraction``, the score at least the pool's cutoff (``operators.top``)."""
        column = self.score_column(source, ctx.phase)
        if top_fraction is not None:
            return top(cols, column, top_fraction, ctx, hint=self.hint)
        return threshold(cols, column, low=low, high=high, hint=self.hint)


def check_open_clip_folder(model: str) -> None:
    """A stage's ``model:`` parameter, checked when the recipe is read: an existing open_clip folder
    (``open_clip_config.json`` and its weights). Raises ValueError with a plain message."""
    from t2iscope.weights import OPEN_CLIP, inspect_folder  # imports torch: only when a folder is named

    if not Path(model).is_dir():
        raise ValueError(f"model: {model}: no such folder")
    try:
        architecture = inspect_folder(model).architecture
    except (ConfigError, DataError):
        architecture = None
    if architecture != OPEN_CLIP:
        raise ValueError(f"model: {model}: not an open_clip folder (open_clip_config.json and its weights)")
