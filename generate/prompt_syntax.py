"""AUTOMATIC1111's prompt emphasis syntax, parsed into (text, weight) runs.

The rules are A1111's ``parse_prompt_attention`` (modules/prompt_parser.py), so a prompt copied from
an A1111 infotext weights the same words the same way here:

- ``(x)`` multiplies the weight of x by 1.1, ``((x))`` by 1.21, ``[x]`` divides it by 1.1;
- ``(x:1.3)`` multiplies it by 1.3; the number is A1111's ``[+-]?[.\\d]+`` and, as in current A1111,
  may have whitespace on either side: ``(x: 1.3)`` is "x" at 1.3 and ``( x : 0.8 )`` is " x " at 0.8
  (the spaces before the colon are text). A sign is allowed (``(x:-0.5)`` is a negative weight), an
  exponent is not: ``(x:1e-3)`` is the text "x:1e-3" at 1.1, as in A1111;
- ``\\(``, ``\\)``, ``\\[``, ``\\]``, ``\\\\`` are the literal characters; any other backslash is dropped;
- a bracket left open applies to everything after it, a stray closing bracket is literal text;
- the word ``BREAK`` (with the whitespace around it) becomes the run ``("BREAK", -1.0)``, which the
  text encoder turns into "start a new 75-token chunk";
- runs with equal weights are merged; an empty prompt is ``[("", 1.0)]``.

``BREAK`` inside brackets is what A1111 makes of it, not what it looks like: brackets scale the
marker's weight like any run's (``(a BREAK b)`` is ``("BREAK", -1.1)``, which neither A1111's encoder
nor ours reads as a chunk break, so the word "BREAK" is encoded at weight -1.1), and a marker whose
scaled weight equals its neighbours' merges into them (``(a BREAK b:0)`` is the text "aBREAKb" at 0).

One deliberate difference, where A1111 breaks: a malformed number such as ``(x:1.2.3)`` or
``(x: 1.2.3 )`` is kept as literal text (``"x: 1.2.3 "`` at 1.1) where A1111 raises ``ValueError``.
Prompt editing (``[a:b:0.5]``, ``[a|b]``) is not emphasis syntax: it is resolved first by
:mod:`t2iscope.generate.prompt_schedule`, and left in a prompt it is parsed as brackets, as A1111's
emphasis parser does too.

Checked against A1111's own outputs: tests/generate/test_prompt_syntax_a1111.py (hand-picked cases
and seeded random prompts, tests/generate/fixtures/a1111_emphasis.json).
"""

from __future__ import annotations

import re

BREAK = "BREAK"
BREAK_WEIGHT = -1.0
ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1

# A1111's tokens, in its order: escapes, lone backslash, open brackets, ": number )", close brackets,
# plain text, lone colon. This is current A1111's ``re_attention`` (whitespace allowed around the
# number); older A1111 had ``:([+-]?[.\d]+)\)``, which read ``(red: 1.2)`` as the text "red: 1.2".
_TOKEN = re.compile(
    r"""
    \\\(|\\\)|\\\[|\\]|\\\\|\\|
    \(|\[|
    :\s*([+-]?[.\d]+)\s*\)|
    \)|]|
    [^\\()\[\]:]+|
    :
    """,
    re.X,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse_prompt_attention(text: str) -> list[tuple[str, float]]:
    """Split ``text`` into runs of (text, weight) with A1111's emphasis rules (see module docstring).

    >>> parse_prompt_attention("an (important) word")
    [('an ', 1.0), ('important', 1.1), (' word', 1.0)]
    """
    runs: list[list] = []  # [text, weight]
    round_open: list[int] = []
    square_open: list[int] = []

    def scale_from(start: int, multiplier: float) -> None:
        for run in runs[start:]:
            run[1] *= multiplier

    def add_plain(chunk: str) -> None:
        for i, part in enumerate(_BREAK.split(chunk)):
            if i > 0:
                runs.append([BREAK, BREAK_WEIGHT])
            runs.append([part, 1.0])

    for match in _TOKEN.finditer(text):
        token, number = match.group(0), match.group(1)
        weight = _float_or_none(number) if number is not None else None
        if token.startswith("\\"):
            runs.append([token[1:], 1.0])
        elif token == "(":
            round_open.append(len(runs))
        elif token == "[":
            square_open.append(len(runs))
        elif weight is not None and round_open:
            scale_from(round_open.pop(), weight)
        elif number is not None and round_open:
            add_plain(token[:-1])  # malformed number: literal text, then the ")" closes as usual
            scale_from(round_open.pop(), ROUND_MULTIPLIER)
        elif token == ")" and round_open:
            scale_from(round_open.pop(), ROUND_MULTIPLIER)
        elif token == "]" and square_open:
            scale_from(square_open.pop(), SQUARE_MULTIPLIER)
        else:
            add_plain(token)

    for start in round_open:
        scale_from(start, ROUND_MULTIPLIER)
    for start in square_open:
        scale_from(start, SQUARE_MULTIPLIER)

    merged: list[list] = []
    for run in runs:
        prev = merged[-1] if merged else None
        if prev is not None and prev[1] == run[1]:  # A1111 merges by weight alone, BREAK included
            prev[0] += run[0]
        else:
            merged.append(run)
    if not merged:
        return [("", 1.0)]
    return [(t, float(w)) for t, w in merged]
