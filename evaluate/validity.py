"""A judge's measured validity: its agreement with human labels of the same images (issue 15).

A label file (CSV or parquet) has one row per image: ``image`` (a path relative to the label
file) and any attribute of ``generate.attributes`` as a column (subject, color, legs, count,
culture, gender, watermark, ...), written by a person who looked at the image; an optional
``model_id`` column names the model that generated it (the image domain). Empty cells and
``unclear`` are "the person could not tell" and are left out of that attribute's count. The
judge reads the same images, asked with the words the labels use (``vocabulary.from_labels``);
per attribute it answers, ``judge_validity`` reports

- ``accuracy``: the share of images where judge and person agree, with a Wilson 95% interval
  (Wilson 1927, as every rate in t2iscope);
- ``kappa``: Cohen's kappa (Cohen 1960), agreement beyond what the two label frequencies give by
  chance, the statistic HEIM and annotation studies report beside raw agreement.

An audit figure is trustworthy only where its judge's accuracy on that attribute, on the same image
domain, is high; ``VALID_ACCURACY`` (0.9, issue 15's bar) is the line this project draws, and
:func:`grade` says how an accuracy measured on n labels is read.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from t2iscope.errors import DataError
from t2iscope.evaluate import stats
from t2iscope.evaluate.images import load_image
from t2iscope.evaluate.judges import Judge
from t2iscope.evaluate.vocabulary import from_labels
from t2iscope.generate.attributes import ATTRIBUTES, NO, UNCLEAR, YES, spelled
from t2iscope.intervals import wilson

VALID_ACCURACY = 0.9  # trusted: issue 15's bar for a default judge
USABLE_ACCURACY = 0.8  # below this, a figure is marked in the report instead of shown as a finding
# An accuracy whose 95% interval is wider than the step between the two bars (0.8 -> 0.9, twice
# over) cannot tell valid from not valid: too few labels (a perfect n=16 reaches 0.19, 172/190 0.08).
MAX_INTERVAL_WIDTH = 2 * (VALID_ACCURACY - USABLE_ACCURACY)
GRADES = ("valid", "usable", "too few labels", "NOT valid")
COLUMNS = ("judge", "attribute", "metric", "value", "n", "ci_low", "ci_high")


RUN_IMAGE = "image_path"  # a label file of a run's own images names them as its manifest does


def grade(accuracy: float, low: float, high: float) -> str:
    """How an accuracy with Wilson interval [low, high] is read (one of ``GRADES``).

    ``NOT valid`` when even the interval's top is below ``USABLE_ACCURACY`` or the accuracy is;
    ``too few labels`` when the interval is wider than ``MAX_INTERVAL_WIDTH`` (n=1 at 1.00 spans
    [0.21, 1.00]); else ``valid`` at >= ``VALID_ACCURACY``, ``usable`` at >= ``USABLE_ACCURACY``.
    """
    if high < USABLE_ACCURACY:
        return "NOT valid"
    if not high - low <= MAX_INTERVAL_WIDTH:  # NaN bounds (no labels) are too few as well
        return "too few labels"
    return "valid" if accuracy >= VALID_ACCURACY else "usable" if accuracy >= USABLE_ACCURACY else "NOT valid"


def read_label_table(path: str | Path) -> pd.DataFrame:
    """A label file as written: ``image`` (files beside it) or ``image_path`` (a run's images).

    Raises DataError (one line naming the file and the column or row) for an unreadable file,
    neither image column, no label column, a column twice in the header, a bad label, or an image
    on two rows.
    """
    path = Path(path)
    try:
        labels = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)
    except FileNotFoundError:
        raise DataError(f"{path}: no such label file") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: not a readable label table ({str(exc).splitlines()[0]})") from None
    if "image" not in labels.columns and RUN_IMAGE not in labels.columns:
        raise DataError(
            f"{path}: no 'image' column (paths of the labelled images, relative to the file) "
            f"and no '{RUN_IMAGE}' column (the manifest's image_path of a run's images)"
        )
    found = [c for c in ATTRIBUTES if c in labels.columns]
    if not found:
        raise DataError(f"{path}: no label column; expected any of {', '.join(ATTRIBUTES)}")
    for column in labels.columns:  # pandas reads a repeated CSV header "subject" as "subject.1"
        base, _, suffix = str(column).rpartition(".")
        if suffix.isdigit() and base in labels.columns:
            raise DataError(f"{path}: column {base!r} appears twice in the header")
    for column in found:
        check_label_column(labels[column], ATTRIBUTES[column].kind, f"{path}: ", column)
    key = "image" if "image" in labels.columns else RUN_IMAGE
    check_once(path, key, labels[key].astype(str))
    return labels


def check_once(path: Path, key: str, images: Any) -> None:
    """DataError (file, row) for an image labelled on two rows: one vote per image, or it counts twice."""
    first: dict[Any, int] = {}
    for row, name in enumerate(images, start=1):
        if name in first:
            raise DataError(
                f"{path}: row {row}: {key} {str(name)!r} is labelled again (first at row {first[name]})"
            )
        first[name] = row


def check_label_column(values: pd.Series, kind: str, where: str, column: str) -> None:
    """DataError (``where``, row from 1, column) for a cell that is not a label of its kind: counts are
    whole numbers >= 0 (``4`` or ``4.0``), flags yes or no; blank and ``unclear`` always pass."""
    for row, value in enumerate(values, start=1):
        text = spelled(value)
        if text is None or text == UNCLEAR:
            continue
        if kind == "number" and not text.isdigit():
            raise DataError(
                f"{where}row {row}: {column}: expected a count (a whole number >= 0), got {value!r}"
            )
        if kind == "flag" and text not in (YES, NO):
            raise DataError(f"{where}row {row}: {column}: expected yes or no, got {value!r}")


def read_labels(path: str | Path) -> pd.DataFrame:
    """The label file at ``path`` (see :func:`read_label_table`) with ``image`` resolved to absolute paths.

    Raises DataError (one line naming the file, and the row or column) for an unreadable file, no
    ``image`` column, no label column, or an image that is missing or lies outside the label
    file's folder.
    """
    return with_image_files(Path(path), read_label_table(path))


def with_image_files(path: Path, labels: pd.DataFrame) -> pd.DataFrame:
    """``labels`` (read from ``path``) with ``image`` resolved under the label file's folder; DataError
    as :func:`read_labels` says."""
    if "image" not in labels.columns:
        raise DataError(f"{path}: no 'image' column (paths of the labelled images, relative to the file)")
    root = path.parent.resolve()
    files = []
    for row, name in enumerate(labels["image"], start=1):
        file = (root / str(name)).resolve()
        if not isinstance(name, str) or not file.is_relative_to(root) or not file.is_file():
            raise DataError(
                f"{path}: row {row}: image {name!r} is missing or lies outside the label file's folder {root}"
            )
        files.append(file)
    check_once(path, "image", files)  # "a.png" and "./a.png" are one image
    return labels.assign(image=files)


def judge_validity(judge: Judge, labels: pd.DataFrame, where: str = "labels") -> pd.DataFrame:
    """Tidy agreement of ``judge`` with ``labels`` (from :func:`read_labels`), per labelled attribute.

    The judge is asked with the words the labels use. Returns one ``accuracy`` row (value in
    [0, 1], ``n`` images, Wilson ``ci_low``/``ci_high``) and one ``kappa`` row (value in [-1, 1],
    no interval) per attribute column the judge answers; ``n`` counts only images whose label is
    neither empty nor ``unclear``. DataError (``where``: the label file) when the labels use words
    the judge cannot read (the world judge knows only the world's).
    """
    columns = tuple(c for c in ATTRIBUTES if c in labels.columns)
    vocabulary = from_labels(labels, columns)
    answered = judge.answers(vocabulary)
    problem = judge.check(
        replace(vocabulary, labels={a: v for a, v in vocabulary.labels.items() if a in answered})
    )
    if problem:
        raise DataError(f"{where}: {problem}")
    images = [load_image(file) for file in labels["image"]]
    judged = pd.DataFrame(judge.attributes(images, vocabulary), index=labels.index)
    rows = []
    for column in columns:
        if column in answered:
            rows += agreement(judge.name, column, judged[column], labels[column])
    return pd.DataFrame(rows, columns=list(COLUMNS))


def agreement(judge: str, attribute: str, said: pd.Series, human: pd.Series) -> list[tuple]:
    """Accuracy (Wilson interval) and Cohen's kappa of ``said`` against ``human``, one attribute.

    Rows as ``COLUMNS``; images a person could not tell (empty, ``unclear``) are left out.
    """
    truth = human.astype(object).map(_label)
    known = truth.notna()
    said_k = said.astype(object).map(_label)[known].tolist()
    truth_k = truth[known].tolist()
    n = len(truth_k)
    hits = sum(a == b for a, b in zip(said_k, truth_k, strict=True))
    low, high = wilson(hits, n)
    return [
        (judge, attribute, "accuracy", hits / n if n else float("nan"), n, low, high),
        (judge, attribute, "kappa", stats.cohen_kappa(said_k, truth_k), n, None, None),
    ]


def _label(value: object) -> str | None:
    """One spelling for judge and person (``vocabulary.spelled``); blanks and ``unclear`` are unknown."""
    text = spelled(value)
    return None if text == UNCLEAR else text
