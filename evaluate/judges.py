"""Judges: map images to attributes (``generate.attributes``), one interface, every result naming its judge.

A judge is asked with a :class:`~t2iscope.evaluate.vocabulary.Vocabulary` (per attribute, the
labels a suite declared) and returns, per image, one answer per attribute it answers: a label of
the vocabulary, ``other``, a count, or ``yes``/``no`` for flags. ``world`` reads the synthetic
world's scenes exactly from its rendering rules (and knows only the world's words); ``clip`` does
zero-shot classification with any open_clip checkpoint over the suite's own words, so the same
audits run on real models, real suites and photos. Judges that can also score text-image
agreement implement ``text_score``.
A judge module registers its factory with ``@judge(name)``; ``MODULES`` lists those modules.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from t2iscope.errors import ConfigError
from t2iscope.evaluate.vocabulary import Vocabulary
from t2iscope.registry import Registry, check_params


@runtime_checkable
class Judge(Protocol):
    name: str

    def answers(self, vocabulary: Vocabulary) -> tuple[str, ...]:
        """The attributes this judge answers when asked with ``vocabulary``."""
        ...

    def check(self, vocabulary: Vocabulary) -> str | None:
        """Why this judge cannot answer ``vocabulary`` (an attribute or word it cannot judge), or None."""
        ...

    def attributes(self, images: Sequence[Image.Image], vocabulary: Vocabulary) -> list[dict[str, Any]]:
        """Per image: attribute -> answer, for every attribute of ``answers(vocabulary)``."""
        ...


@runtime_checkable
class TextScorer(Protocol):
    def text_score(self, images: Sequence[Image.Image], texts: Sequence[str]) -> list[float]:
        """Per (image, text) pair: the cosine similarity of their embeddings (CLIPScore's core)."""
        ...


@dataclass(frozen=True)
class JudgeKind:
    """A registered judge: its name and the factory that builds it from AUDIT.yaml's judge_options."""

    name: str
    make: Callable[..., Judge]


JUDGES: Registry[JudgeKind] = Registry("judge")

# The modules that register judges. They import this one, so they are imported on first use.
MODULES = ("t2iscope.evaluate.judge_world", "t2iscope.evaluate.judge_clip")


def judge(name: str) -> Callable[[Callable[..., Judge]], Callable[..., Judge]]:
    """Decorator registering a judge factory (its parameters are the judge's options) as ``name``."""

    def add(make: Callable[..., Judge]) -> Callable[..., Judge]:
        JUDGES.register(name)(JudgeKind(name, make))
        return make

    return add


def load_all() -> None:
    """Import every judge module so the registry is complete."""
    for module in MODULES:
        importlib.import_module(module)


def judge_names() -> list[str]:
    """Every judge name that ``make_judge`` accepts."""
    load_all()
    return JUDGES.names()


def make_judge(name: str, options: dict[str, Any] | None = None, where: str = "judge") -> Judge:
    """Build the judge ``name`` with ``options`` validated against its factory's signature."""
    load_all()
    if name not in JUDGES:
        raise ConfigError(f"{where}: unknown judge {name!r}; valid: {', '.join(JUDGES.names())}")
    kind = JUDGES.get(name)
    opts = dict(options or {})
    check_params(kind.make, opts, f"{where} ({name})")
    return kind.make(**opts)
