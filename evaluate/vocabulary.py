"""What a judge is asked about a generation folder: per attribute, the labels it may answer.

A suite declares, per prompt, what it asks for (``expect: {subject: horse, legs: 4}``) and, for
the whole suite, extra labels (``vocabulary: {gender: [feminine, masculine]}``) and zero-shot
templates (``generate/suites.py``). Generation writes both into every manifest row (columns
``expect`` and ``vocabulary``, JSON text), so a generation folder alone says what its audits
compare. This module reads them back: :func:`expectations` per row, :func:`read_vocabulary` per
folder. Nothing here knows any particular word: the vocabulary is open.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from t2iscope.errors import DataError
from t2iscope.generate.attributes import ATTRIBUTES, EXPECTABLE, OTHER, UNCLEAR, spelled, word_problem

Label = str | int


@dataclass(frozen=True)
class Vocabulary:
    """Per attribute, the labels offered to a judge (in order), and zero-shot templates.

    ``labels`` maps an attribute of ``generate.attributes.EXPECTABLE`` to its labels (words, or
    integers for counts); ``templates`` maps an attribute, or ``other``, to English text with one
    ``{}`` for the label (``other``'s has none). A judge answers each attribute in ``labels`` with
    one of its labels or ``other``.
    """

    labels: Mapping[str, tuple[Label, ...]] = field(default_factory=dict)
    templates: Mapping[str, str] = field(default_factory=dict)

    def attributes(self) -> tuple[str, ...]:
        """The attributes asked about, in ``generate.attributes`` order."""
        return tuple(a for a in ATTRIBUTES if a in self.labels)


def _json_object(text: Any, where: str) -> dict[str, Any]:
    if text is None or (isinstance(text, float) and text != text):
        return {}
    try:
        value = json.loads(text)
    except (TypeError, json.JSONDecodeError):
        raise DataError(f"{where}: expected a JSON object, got {str(text)[:60]!r}") from None
    if not isinstance(value, dict):
        raise DataError(f"{where}: expected a JSON object, got {str(text)[:60]!r}")
    return value


def _value(name: str, value: Any, where: str) -> Label:
    """One expected value, checked against its attribute's kind."""
    if name not in EXPECTABLE:
        raise DataError(f"{where}: unknown attribute {name!r}; valid: {', '.join(EXPECTABLE)}")
    if ATTRIBUTES[name].kind == "number":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise DataError(f"{where}.{name}: expected a count (an integer >= 0), got {value!r}")
        return value
    problem = word_problem(value, limit=None)
    if problem:
        raise DataError(f"{where}.{name}: {problem}")
    return value.strip()


def expectations(manifest: pd.DataFrame, path: str) -> pd.DataFrame:
    """Per manifest row, ``req_<attribute>`` for every expectable attribute (None where not asked).

    ``path`` names the manifest in errors. A manifest without an ``expect`` column (made before
    suites declared expectations) asks for nothing. DataError (file, row, column) for a cell that
    is not a JSON object of known attributes with values of their kind.
    """
    cells = manifest["expect"] if "expect" in manifest.columns else pd.Series([None] * len(manifest))
    rows = []
    for i, text in enumerate(cells):
        where = f"{path}: row {i}, column expect"
        rows.append({k: _value(k, v, where) for k, v in _json_object(text, where).items()})
    return pd.DataFrame(
        {f"req_{a}": pd.Series([r.get(a) for r in rows], dtype=object) for a in EXPECTABLE},
        index=manifest.index,
    )


def read_vocabulary(manifest: pd.DataFrame, path: str) -> Vocabulary:
    """The vocabulary of one generation folder's manifest: its expects, then its suites' vocabularies.

    Labels keep first-seen order (the prompts' expects come first). Templates of several suites in
    one manifest must agree. DataError naming the file and row for a malformed cell.
    """
    req = expectations(manifest, path)
    labels: dict[str, list[Label]] = {}
    for a in EXPECTABLE:
        labels[a] = [v for v in req[f"req_{a}"] if v is not None]
    templates: dict[str, str] = {}
    cells = manifest["vocabulary"] if "vocabulary" in manifest.columns else pd.Series([], dtype=object)
    for i, text in enumerate(dict.fromkeys(cells)):  # one suite writes the same cell on every row
        where = f"{path}: column vocabulary ({i + 1}. distinct value)"
        cell = _json_object(text, where)
        for a, values in (cell.get("labels") or {}).items():
            if not isinstance(values, list):
                raise DataError(f"{where}: labels.{a}: expected a list")
            labels.setdefault(a, []).extend(_value(a, v, f"{where}: labels") for v in values)
        for a, template in (cell.get("templates") or {}).items():
            if (a not in ATTRIBUTES and a != OTHER) or not isinstance(template, str):
                raise DataError(f"{where}: templates.{a}: not an attribute's template")
            if templates.setdefault(a, template) != template:
                raise DataError(
                    f"{where}: templates.{a}: suites in one folder disagree "
                    f"({templates[a]!r} vs {template!r})"
                )
    return Vocabulary({a: tuple(dict.fromkeys(v)) for a, v in labels.items() if v}, templates)


def from_labels(labels: pd.DataFrame, attributes: tuple[str, ...]) -> Vocabulary:
    """The vocabulary of a human label table: per attribute column, the words people used.

    Used to judge labelled images with the same label sets the labels have; numbers and flags are
    answered without a list, so only word attributes are listed.
    """
    out = {}
    for a in attributes:
        if a not in labels.columns or a not in EXPECTABLE:
            continue
        words = [str(v).strip() for v in labels[a] if spelled(v) not in (None, UNCLEAR, OTHER)]
        if ATTRIBUTES[a].kind == "number":  # checked counts (validity.check_label_column)
            out[a] = tuple(sorted({int(spelled(v) or 0) for v in words}))
        else:
            out[a] = tuple(dict.fromkeys(words))
    return Vocabulary({a: v for a, v in out.items() if v})
