"""AUTOMATIC1111 X/Y/Z-plot value syntax: ``1-5``, ``1-5 (+2)``, ``1-10 [5]``, comma lists.

Rules as in A1111's xyz_grid script: an integer range includes its end; ``(+step)`` sets the step
(negative steps count down); ``[count]`` gives ``count`` evenly spaced values including both ends
(truncated to integers for integer axes). Floats work the same: ``3-9 (+1.5)``, ``0.5-1.0 [3]``.
Every value is a finite number: ``nan`` and ``inf`` are refused, as everywhere in a config.
"""

from __future__ import annotations

import math
import re

import numpy as np

_NUM = r"[+-]?\s*\d+(?:\.\d*)?"
_STEP = re.compile(rf"^\s*({_NUM})\s*-\s*({_NUM})\s*\(\s*([+-]\s*\d+(?:\.\d*)?)\s*\)\s*$")
_COUNT = re.compile(rf"^\s*({_NUM})\s*-\s*({_NUM})\s*\[\s*(\d+)\s*\]\s*$")
_PLAIN = re.compile(rf"^\s*({_NUM})\s*-\s*({_NUM})\s*$")
_INT = re.compile(r"^\s*[+-]?\s*\d+\s*$")  # an integer axis takes integer spellings only: no 20.0, 1e5, 1_000


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


def _one(item: str, kind: type) -> list:
    if m := _STEP.match(item):
        start, end, step = (_num(g, kind) for g in m.groups())
        if step == 0:
            raise ValueError(f"{item.strip()!r}: step must not be 0")
        if (end - start) * step < 0:
            raise ValueError(f"{item.strip()!r}: step goes away from the end")
        count = int(np.floor((end - start) / step + 1e-9)) + 1
        return [kind(round(start + i * step, 10)) for i in range(count)]
    if m := _COUNT.match(item):
        start, end = _num(m[1], kind), _num(m[2], kind)
        count = int(m[3])
        if count < 1:
            raise ValueError(f"{item.strip()!r}: count must be >= 1")
        values = np.linspace(start, end, num=count)
        return [int(v) for v in values] if kind is int else [round(float(v), 10) for v in values]
    if m := _PLAIN.match(item):
        start, end = _num(m[1], kind), _num(m[2], kind)
        if kind is not int:
            raise ValueError(f"{item.strip()!r}: a float range needs (+step) or [count]")
        step = 1 if end >= start else -1
        return list(range(start, end + step, step))
    return [_num(item, kind)]


def parse_values(spec: object, kind: type) -> list:
    """Expand ``spec`` (a number, a string in A1111 syntax, or a list of those) into values of ``kind``.

    ``kind`` is ``int``, ``float`` or ``str`` (str: comma list, no ranges). Raises ValueError with a
    message naming the bad item; callers add the file and key.
    """
    items = spec if isinstance(spec, list) else [spec]
    values: list = []
    for item in items:
        if isinstance(item, bool) or item is None:
            raise ValueError(f"{item!r} is not a value")
        if kind is str:
            parts = [s.strip() for s in str(item).split(",")] if isinstance(item, str) else [str(item)]
            values += [s for s in parts if s]
        elif isinstance(item, float) and kind is int:
            raise ValueError(f"expected an integer, got {item!r}")
        elif isinstance(item, (int, float)):
            values.append(_num(str(item), kind))
        elif isinstance(item, str):
            for part in item.split(","):
                if part.strip():
                    values += _one(part, kind)
        else:
            raise ValueError(f"{item!r} is not a number or range")
    if not values:
        raise ValueError("no values")
    return values
