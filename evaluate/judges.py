"""Judges: map images to the world's attributes, one interface, every result naming its judge.

A judge returns, per image, ``color, kind, legs, culture, watermark`` (None where it cannot
tell). ``world`` reads synthetic scenes exactly from the rendering rules; ``clip`` does zero-shot
classification with any open_clip checkpoint, so the same audits run on real models and photos.
Judges that can also score text-image agreement implement ``text_score``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from t2iscope.errors import ConfigError
from t2iscope.registry import Registry, check_params

ATTRIBUTES = ("color", "kind", "legs", "culture", "watermark")


@runtime_checkable
class Judge(Protocol):
    name: str

    def attributes(self, images: Sequence[Image.Image]) -> list[dict[str, Any]]:
        """Per image: a dict with every key of ATTRIBUTES."""
        ...


@runtime_checkable
class TextScorer(Protocol):
    def text_score(self, images: Sequence[Image.Image], texts: Sequence[str]) -> list[float]:
        """Per (image, text) pair: the cosine similarity of their embeddings (CLIPScore's core)."""
        ...


JUDGES: Registry[Callable[..., Judge]] = Registry("judge")

_MODULES = {"world": "t2iscope.evaluate.judge_world", "clip": "t2iscope.evaluate.judge_clip"}


def judge_names() -> list[str]:
    """Every judge name that ``make_judge`` accepts."""
    return sorted({*_MODULES, *JUDGES.names()})


def make_judge(name: str, options: dict[str, Any] | None = None, where: str = "judge") -> Judge:
    """Build the judge ``name`` with ``options`` validated against its factory's signature."""
    if name in _MODULES and name not in JUDGES:
        importlib.import_module(_MODULES[name])
    if name not in JUDGES:
        valid = ", ".join(judge_names())
        raise ConfigError(f"{where}: unknown judge {name!r}; valid: {valid}")
    factory = JUDGES.get(name)
    opts = dict(options or {})
    check_params(factory, opts, f"{where} ({name})")
    return factory(**opts)
