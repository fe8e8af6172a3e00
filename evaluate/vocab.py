"""Read the world's vocabulary back out of a prompt: which color, kind and culture it asks for.

Audits need the *requested* attributes to score adherence; suites may not tag them, so we parse
the prompt with the same words the world's captions use (``curate/world/spec.py``). Latin and
Cyrillic words match on word boundaries; Chinese and Japanese by substring, longest word first.
"""

from __future__ import annotations

import re
from functools import cache

from t2iscope.curate.world import spec

_NO_SPACES = ("zh", "ja")


@cache
def _patterns(language: str, field: str) -> list[tuple[re.Pattern[str], str]]:
    words, names = {
        "color": (spec.COLOR_WORDS, list(spec.COLORS)),
        "kind": (spec.KIND_WORDS, list(spec.KINDS)),
        "culture": (spec.CULTURE_WORDS, list(spec.CULTURES)),
    }[field]
    pairs = sorted(zip(words.get(language, words["en"]), names, strict=False), key=lambda p: -len(p[0]))
    out = []
    for word, name in pairs:
        body = re.escape(word.lower())
        pattern = body if language in _NO_SPACES else rf"(?<!\w){body}(?!\w)"
        out.append((re.compile(pattern), name))
    return out


def find(prompt: str, language: str, field: str) -> str | None:
    """The first vocabulary ``field`` (color/kind/culture) named in ``prompt``, or None."""
    text = prompt.lower()
    for pattern, name in _patterns(language, field):
        if pattern.search(text):
            return name
    return None


def requested(prompt: str, language: str) -> dict[str, str | None]:
    """Color, kind and culture a prompt asks for (None where it names none)."""
    return {f: find(prompt, language, f) for f in ("color", "kind", "culture")}
