"""AUTOMATIC1111 X/Y/Z-plot value syntax: ``1-5``, ``1-5 (+2)``, ``1-10 [5]``, comma lists.

Rules as in A1111's xyz_grid script: an integer range includes its end; ``(+step)`` sets the step
(negative steps count down); ``[count]`` gives ``count`` evenly spaced values including both ends
(numpy's linspace, truncated to integers for integer axes). Floats work the same: ``3-9 (+1.5)``,
``0.5-1.0 [3]``. Every value is a finite number: ``nan`` and ``inf`` are refused, as everywhere in
a config.

Ranges stay lazy: ``seeds: 0-100000000`` is a Python ``range``, not a list of 10**8 integers, and
a float range computes its i-th value on demand, so a grid is counted and sliced (``--limit``)
without being built. One axis holds at most ``limits.MAX_AXIS_VALUES`` (2**32) values.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

from t2iscope.generate.limits import MAX_AXIS_VALUES

_NUM = r"[+-]?\s*\d+(?:\.\d*)?"
_STEP = re.compile(rf"^\s*({_NUM})\s*-\s*({_NUM})\s*\(\s*([+-]\s*\d+(?:\.\d*)?)\s*\)\s*$")
_COUNT = re.compile(rf"^\s*({_NUM})\s*-\s*({_NUM})\s*\[\s*(\d+)\s*\]\s*$")
_PLAIN = re.compile(rf"^\s*({_NUM})\s*-\s*({_NUM})\s*$")
_INT = re.compile(r"^\s*[+-]?\s*\d+\s*$")  # an integer axis takes integer spellings only: no 20.0, 1e5, 1_000


class _Computed(Sequence):
    """``count`` values, the i-th computed by ``at(i)`` when asked for; monotonic, like every range."""

    def __init__(self, count: int, at: Callable[[int], Any]) -> None:
        self._count, self._at = count, at

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._count))]
        if not -self._count <= i < self._count:
            raise IndexError(i)
        return self._at(i % self._count)


class Values(_Computed):
    """An axis's values in order: parts (ranges, computed ranges, lists) joined without copying."""

    def __init__(self, parts: Sequence[Sequence]) -> None:
        self._parts = tuple(p for p in parts if len(p))
        self._ends = list(itertools.accumulate(len(p) for p in self._parts))
        super().__init__(self._ends[-1] if self._ends else 0, self._value)

    def _value(self, i: int) -> Any:
        k = bisect.bisect_right(self._ends, i)
        return self._parts[k][i - (self._ends[k - 1] if k else 0)]

    def __iter__(self) -> Iterator:
        return itertools.chain.from_iterable(self._parts)

    def __repr__(self) -> str:
        return f"Values({list(self._parts)!r})"

    def bounds(self) -> tuple[Any, Any]:
        """(smallest, largest) value, from each range's ends: no range is walked."""
        ends = [v for p in self._parts for v in ((p[0], p[-1]) if _is_range(p) else (min(p), max(p)))]
        return min(ends), max(ends)


def _is_range(part: Sequence) -> bool:
    return isinstance(part, range | _Computed)


def _float(text: str) -> float | None:
    try:
        return float(text.replace(" ", ""))
    except ValueError:
        return None


def _num(text: str, kind: type) -> int | float:
    value = _float(text)
    if kind is int:
        if _INT.match(text):
            return int(text.replace(" ", ""))
        if value is not None and math.isfinite(value) and value % 1:
            raise ValueError(f"{text.strip()!r} is not an integer")
        raise ValueError(f"expected an integer, got {text.strip()!r}")  # 20.0 and 1e5 are no integer spelling
    if value is None:
        raise ValueError(f"expected a number, got {text.strip()!r}")
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {text.strip()!r}")
    return value


def _too_many(item: str) -> ValueError:
    return ValueError(f"{item.strip()!r}: more than {MAX_AXIS_VALUES} values")


def _linspace(start: float, end: float, count: int) -> Callable[[int], float]:
    """numpy.linspace(start, end, count)'s i-th value, computed the way numpy does it."""
    step = (end - start) / (count - 1) if count > 1 else 0.0

    def at(i: int) -> float:
        return float(end) if i == count - 1 and count > 1 else i * 1.0 * step + start

    return at


def _one(item: str, kind: type) -> Sequence:
    if m := _STEP.match(item):
        start, end, step = (_num(g, kind) for g in m.groups())
        if step == 0:
            raise ValueError(f"{item.strip()!r}: step must not be 0")
        if (end - start) * step < 0:
            raise ValueError(f"{item.strip()!r}: step goes away from the end")
        if kind is int:
            count = (end - start) // step + 1
            if count > MAX_AXIS_VALUES:
                raise _too_many(item)
            return range(start, start + count * step, step)
        ratio = (end - start) / step + 1e-9
        if not ratio < MAX_AXIS_VALUES:  # also catches inf (1e308 / 1e-308) before floor() would raise
            raise _too_many(item)
        return _Computed(math.floor(ratio) + 1, lambda i: round(start + i * step, 10))
    if m := _COUNT.match(item):
        start, end = _num(m[1], kind), _num(m[2], kind)
        count = int(m[3])
        if count > MAX_AXIS_VALUES:
            raise _too_many(item)
        if count < 1:
            raise ValueError(f"{item.strip()!r}: count must be >= 1")
        at = _linspace(start, end, count)
        return _Computed(count, (lambda i: int(at(i))) if kind is int else (lambda i: round(at(i), 10)))
    if m := _PLAIN.match(item):
        start, end = _num(m[1], kind), _num(m[2], kind)
        if kind is not int:
            raise ValueError(f"{item.strip()!r}: a float range needs (+step) or [count]")
        step = 1 if end >= start else -1
        if abs(end - start) + 1 > MAX_AXIS_VALUES:
            raise _too_many(item)
        return range(start, end + step, step)
    return (_num(item, kind),)


def parse_values(spec: object, kind: type) -> Values:
    """Expand ``spec`` (a number, a string in A1111 syntax, or a list of those) into values of ``kind``.

    ``kind`` is ``int``, ``float`` or ``str`` (str: comma list, no ranges). Ranges are not walked
    (see the module docstring). Raises ValueError with a message naming the bad item (including a
    range of more than 2**32 values); callers add the file and key.
    """
    items = spec if isinstance(spec, list) else [spec]
    parts: list[Sequence] = []
    for item in items:
        if isinstance(item, bool) or item is None:
            raise ValueError(f"{item!r} is not a value")
        if kind is str:
            text = [s.strip() for s in str(item).split(",")] if isinstance(item, str) else [str(item)]
            parts.append(tuple(s for s in text if s))
        elif isinstance(item, float) and kind is int:
            raise ValueError(f"expected an integer, got {item!r}")
        elif isinstance(item, (int, float)):
            parts.append((_num(str(item), kind),))
        elif isinstance(item, str):
            parts += [_one(part, kind) for part in item.split(",") if part.strip()]
        else:
            raise ValueError(f"{item!r} is not a number or range")
    total = sum(len(p) for p in parts)  # checked before len(Values), which must fit a machine integer
    if not total:
        raise ValueError("no values")
    if total > MAX_AXIS_VALUES:
        raise ValueError(f"more than {MAX_AXIS_VALUES} values")
    return Values(parts)
