"""AUTOMATIC1111's prompt editing, alternation and composable ``AND``, as pure text functions.

Everything here reproduces AUTOMATIC1111's modules/prompt_parser.py (current master): a prompt that
works in A1111 gives the same texts at the same sampling steps here. The module is a hand-written
parser (no grammar library); its results are checked against A1111's own outputs, computed out of
tree and stored in tests/generate/fixtures/a1111_prompt_schedules.json.

- :func:`split_and` is A1111's ``get_multicond_prompt_list`` for one prompt (``re_AND`` and
  ``re_weight``): ``a cat AND a dog :1.5`` is ``[("a cat", 1.0), (" a dog", 1.5)]``.
- :func:`prompt_schedule` is ``get_learned_conditioning_prompt_schedules`` for one prompt: prompt
  editing ``[from:to:when]``, ``[to:when]``, ``[from::when]`` and alternation ``[a|b|c]``, nested
  freely, becomes a list of ``(end_at_step, text)``.
- :func:`schedule_at` is the lookup of ``reconstruct_cond_batch``: the text in force at a 0-based
  sampling step.

A1111 applies them in that order: the prompt is split on ``AND`` first, and each part is scheduled
on its own (``get_multicond_learned_conditioning``), so an ``AND`` inside brackets splits them.
Each scheduled text still carries its emphasis syntax (``(x:1.2)``, ``[x]``, ``BREAK``) for
:func:`t2iscope.generate.prompt_syntax.parse_prompt_attention`.

The grammar, as A1111's parser accepts it (its ``schedule_parser``):

- a *prompt* is a run of plain text (any character but ``\\ [ ] ( ) : |``, or a backslash and any
  character but a newline, kept with its backslash), ``( prompt )``, ``( prompt : prompt )``,
  ``[ prompt ]`` (these three are kept verbatim, for the emphasis parser), ``[ prompt | prompt ... ]``
  (alternation; options may be empty) and ``[ prompt : number ]`` or ``[ prompt : prompt : number ]``
  (editing; whitespace allowed around the number);
- at the top level only, the characters ``[ ] ( ) :`` that do not open or close one of the above are
  literal text; a ``|`` outside an alternation, or a backslash that ends the prompt or precedes a
  newline, makes the prompt unparseable, and A1111 then uses the whole prompt unscheduled.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["prompt_schedule", "schedule_at", "split_and"]

# --- composable diffusion: AND and :weight ----------------------------------------------------------

# A1111 ``re_AND``: the word AND between word boundaries.
_AND = re.compile(r"\bAND\b")
# A1111 ``re_weight``: a part ends in an optional ":number" (whitespace around the colon allowed,
# a sign, no exponent), then optional whitespace; the text keeps its leading whitespace only.
_PART_WEIGHT = re.compile(r"^([\s\S]*?)(?:\s*:\s*([-+]?(?:\d*\.\d+|\d+\.?)))?\s*$")


def split_and(prompt: str) -> list[tuple[str, float]]:
    """Split ``prompt`` into composable-diffusion parts, each ``(text, weight)``.

    Source: A1111 modules/prompt_parser.py, ``get_multicond_prompt_list`` (``re_AND``, ``re_weight``):
    the prompt is split on the word ``AND`` (``\\bAND\\b``, so ``ANDROID`` and ``and`` do not split,
    ``(x)AND(y)`` does); each part may end in ``:weight`` (``a dog :1.5``, ``a dog: -0.5``, ``.5``,
    ``2.``; no exponent), which is removed, default 1.0. Trailing whitespace is removed, leading
    whitespace kept (``"a AND b"`` is ``[("a", 1.0), (" b", 1.0)]``). A prompt without ``AND`` is one
    part, and its ``:weight`` is read too (``"style:1.2"`` is ``[("style", 1.2)]``), as in A1111.
    Emphasis syntax is left in each part's text.

    >>> split_and("a cat AND a dog :1.5")
    [('a cat', 1.0), (' a dog', 1.5)]
    """
    parts: list[tuple[str, float]] = []
    for part in _AND.split(prompt):
        match = _PART_WEIGHT.match(part)
        if match is None:  # not reached: the pattern matches every string; kept as A1111 has it
            parts.append((part, 1.0))
            continue
        text, weight = match.group(1), match.group(2)
        parts.append((text, float(weight) if weight is not None else 1.0))
    return parts


# --- prompt editing and alternation -----------------------------------------------------------------


@dataclass(frozen=True)
class _Edit:
    """``[before:after:when]``; ``[after:when]`` has an empty ``before``."""

    before: tuple[_Node, ...]
    after: tuple[_Node, ...]
    when: str  # the number as written; its meaning depends on steps (see _edit_step)


@dataclass(frozen=True)
class _Alternation:
    """``[a|b|c]``: option ``(step - 1) % len(options)`` at each step."""

    options: tuple[tuple[_Node, ...], ...]


_Node = str | _Edit | _Alternation

# A1111's schedule grammar terminals: plain text (lark ``plain``), whitespace (``WHITESPACE``), and
# lark's ``common.SIGNED_NUMBER`` (digits 0-9 only; an exponent is allowed here).
_PLAIN = re.compile(r"(?:[^\\\[\]():|]|\\.)+")
_WHEN = re.compile(
    r"\s*([+-]?(?:[0-9]+[eE][+-]?[0-9]+|(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+))\s*\]"
)
_STRAY = "[]():"  # what the top level may hold as literal text
# Brackets nested deeper than this make a prompt unparseable (used whole). A1111 has no such limit
# but its tree transformer recurses per level; no real prompt comes near it.
MAX_NESTING = 150


class _Unparseable(Exception):
    """The prompt is outside A1111's schedule grammar (A1111: ``lark.exceptions.LarkError``)."""


_Groups = dict[int, "tuple[list[_Node], int] | None"]


def _parse_sequence(s: str, i: int, memo: _Groups, depth: int = 0) -> tuple[list[_Node], int]:
    """A1111 ``prompt``: items from ``i`` until a character that cannot continue one."""
    nodes: list[_Node] = []
    while i < len(s):
        plain = _PLAIN.match(s, i)
        if plain is not None:
            nodes.append(plain.group(0))
            i = plain.end()
            continue
        group = _parse_group(s, i, memo, depth + 1) if s[i] in "([" else None
        if group is None:
            break
        nodes.extend(group[0])
        i = group[1]
    return nodes, i


def _parse_group(s: str, i: int, memo: _Groups, depth: int) -> tuple[list[_Node], int] | None:
    """A bracketed item at ``s[i]`` (``(`` or ``[``), or None when none closes here (memoised by ``i``).

    A1111 ``emphasized`` (kept verbatim), ``scheduled`` and ``alternate``.
    """
    if i not in memo:
        if depth > MAX_NESTING:
            raise _Unparseable(i)
        memo[i] = _parse_group_at(s, i, memo, depth)
    return memo[i]


def _parse_group_at(s: str, i: int, memo: _Groups, depth: int) -> tuple[list[_Node], int] | None:
    opener = s[i]
    first, j = _parse_sequence(s, i + 1, memo, depth)
    if j >= len(s):
        return None
    if opener == "(":
        if s[j] == ")":
            return ["(", *first, ")"], j + 1
        if s[j] == ":":
            second, k = _parse_sequence(s, j + 1, memo, depth)
            if k < len(s) and s[k] == ")":
                return ["(", *first, ":", *second, ")"], k + 1
        return None
    if s[j] == "]":
        return ["[", *first, "]"], j + 1
    if s[j] == "|":
        options = [tuple(first)]
        while j < len(s) and s[j] == "|":
            option, j = _parse_sequence(s, j + 1, memo, depth)
            options.append(tuple(option))
        if j < len(s) and s[j] == "]":
            return [_Alternation(tuple(options))], j + 1
        return None
    if s[j] == ":":
        when = _WHEN.match(s, j + 1)
        if when is not None:  # [to:when]
            return [_Edit((), tuple(first), when.group(1))], when.end()
        second, k = _parse_sequence(s, j + 1, memo, depth)
        if k < len(s) and s[k] == ":":
            when = _WHEN.match(s, k + 1)
            if when is not None:  # [from:to:when]
                return [_Edit(tuple(first), tuple(second), when.group(1))], when.end()
    return None


def _parse(prompt: str) -> list[_Node]:
    """A1111 ``start``: prompt items, with unmatched ``[ ] ( ) :`` as literal text."""
    nodes: list[_Node] = []
    memo: _Groups = {}
    i = 0
    while i < len(prompt):
        items, j = _parse_sequence(prompt, i, memo)
        nodes.extend(items)
        if j < len(prompt):
            if prompt[j] not in _STRAY:
                raise _Unparseable(j)  # a "|" outside [a|b], a lone trailing backslash, "\\\n"
            nodes.append(prompt[j])
            j += 1
        i = j
    return nodes


def _iter_nodes(nodes: Sequence[_Node]):
    for node in nodes:
        yield node
        if isinstance(node, _Edit):
            yield from _iter_nodes(node.before)
            yield from _iter_nodes(node.after)
        elif isinstance(node, _Alternation):
            for option in node.options:
                yield from _iter_nodes(option)


def _edit_step(when: str, steps: int, int_offset: int, fraction_offset: float, old: bool) -> int:
    """The last step that shows ``before`` (A1111 ``CollectSteps.scheduled``).

    Current rule: a number written with a ``.`` is a fraction of ``steps`` (``0.5``, ``1.``), any
    other (``3``, ``1e1``) a step number; with a hires-fix pass both are counted from the start of
    the first pass (a fraction from 1.0, a step from ``base_steps``). The old rule
    (``use_old_scheduling``): a value below 1 is a fraction, else a step. Either way the step is
    truncated toward zero and capped at ``steps``; A1111 would raise ``OverflowError`` for an
    infinite value (``1e999``), here it counts as ``steps``.
    """
    value = float(when)
    if old:
        value = value * steps if value < 1 else value
    elif "." in when:
        value = (value - fraction_offset) * steps
    else:
        value = value - int_offset
    if math.isinf(value):
        return steps if value > 0 else -steps
    return min(steps, int(value))


def _render(nodes: Sequence[_Node], step: int, whens: dict[int, int]) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, _Edit):
            out.append(_render(node.before if step <= whens[id(node)] else node.after, step, whens))
        else:
            out.append(_render(node.options[(step - 1) % len(node.options)], step, whens))
    return "".join(out)


def prompt_schedule(
    prompt: str, steps: int, hires_steps: int | None = None, *, use_old_scheduling: bool = False
) -> list[tuple[int, str]]:
    """The texts of one prompt (one ``AND`` part) over sampling, as ``(end_at_step, text)`` pairs.

    Source: A1111 modules/prompt_parser.py, ``get_learned_conditioning_prompt_schedules(prompts,
    base_steps, hires_steps, use_old_scheduling)``. ``text`` is used for steps up to
    ``end_at_step`` (see :func:`schedule_at`); the last entry ends at ``steps`` (``hires_steps`` for
    a hires-fix second pass, then ``when`` is counted from the start of the first pass: ``1.5``
    is halfway through the second pass, ``25`` with 20 base steps is its step 5).

    - ``[from:to:when]`` shows ``from`` up to step ``when`` and ``to`` after it; ``[to:when]`` has an
      empty ``from``; ``[from::when]`` an empty ``to``. ``when`` with a ``.`` is a fraction of the
      steps (``0.25``, ``1.``), else a step number (``5``, ``1e1``); see :func:`_edit_step`.
      ``when`` that maps below step 1 adds no entry and ``to`` is used throughout; at or past the
      last step ``from`` is used throughout.
    - ``[a|b|c]`` shows option ``(step - 1) % 3`` at each step 1..steps, so a prompt with any
      alternation has one entry per step (equal neighbours are not merged).
    - Brackets that are not editing or alternation, and emphasis, stay in the text.
    - A prompt outside the grammar (a ``|`` outside an alternation, a lone trailing ``\\``) is
      returned whole: ``[(steps, prompt)]``; so is one with brackets nested deeper than
      ``MAX_NESTING`` (our limit, where A1111's recursion would fail).

    >>> prompt_schedule("a [cat:dog:0.5] in [snow|rain]", 4)
    [(1, 'a cat in snow'), (2, 'a cat in rain'), (3, 'a dog in snow'), (4, 'a dog in rain')]
    """
    if hires_steps is None or use_old_scheduling:
        int_offset, fraction_offset, total = 0, 0.0, steps
    else:
        int_offset, fraction_offset, total = steps, 1.0, hires_steps
    try:
        nodes = _parse(prompt)
    except _Unparseable:
        return [(total, prompt)]
    ends = {total}
    whens: dict[int, int] = {}
    for node in _iter_nodes(nodes):
        if isinstance(node, _Edit):
            when = _edit_step(node.when, total, int_offset, fraction_offset, use_old_scheduling)
            whens[id(node)] = when
            if when >= 1:
                ends.add(when)
        elif isinstance(node, _Alternation):
            ends.update(range(1, total + 1))
    return [(end, _render(nodes, end, whens)) for end in sorted(ends)]


def schedule_at(schedule: Sequence[tuple[int, str]], step: int) -> str:
    """The text in force at 0-based sampling step ``step``.

    Source: A1111 modules/prompt_parser.py, ``reconstruct_cond_batch``: the first entry with
    ``step <= end_at_step``, and the first entry when there is none. A1111's denoiser counts steps
    from 0, so ``[a:b:3]`` over 10 steps (``[(3, 'a'), (10, 'b')]``) shows ``a`` at steps 0-3.

    >>> schedule_at([(3, "a"), (10, "b")], 3), schedule_at([(3, "a"), (10, "b")], 4)
    ('a', 'b')
    """
    for end, text in schedule:
        if step <= end:
            return text
    return schedule[0][1]
