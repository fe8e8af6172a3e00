"""A judge's measured validity: its agreement with human labels of the same images (issue 15).

A label file (CSV or parquet) has one row per image: ``image`` (a path relative to the label
file) and any of the label columns below, written by a person who looked at the image. Empty cells
and ``unclear`` are "the person could not tell" and are left out of that attribute's count. The
judge reads the same images; per attribute, ``judge_validity`` reports

- ``accuracy``: the share of images where judge and person agree, with a Wilson 95% interval
  (Wilson 1927, as every rate in t2iscope);
- ``kappa``: Cohen's kappa (Cohen 1960), agreement beyond what the two label frequencies give by
  chance, the statistic HEIM and annotation studies report beside raw agreement.

An audit figure is trustworthy only where its judge's accuracy on that attribute, on the same image
domain, is high; ``VALID_ACCURACY`` (0.9, issue 15's bar) is the line this project draws.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image

from t2iscope.errors import DataError
from t2iscope.evaluate import stats
from t2iscope.evaluate.judges import Judge
from t2iscope.intervals import wilson

# label column -> the judge attribute it checks (t2iscope.evaluate.judges.ATTRIBUTES)
LABEL_ATTRIBUTES = {"subject": "kind", "color": "color", "legs": "legs", "culture": "culture"}
UNCLEAR = "unclear"
VALID_ACCURACY = 0.9
COLUMNS = ("judge", "attribute", "metric", "value", "n", "ci_low", "ci_high")


def read_labels(path: str | Path) -> pd.DataFrame:
    """The label file at ``path`` with ``image`` resolved to absolute paths.

    Raises DataError (one line naming the file, and the row or column) for an unreadable file, no
    ``image`` column, no label column, or an image that is missing or lies outside the label
    file's folder.
    """
    path = Path(path)
    try:
        labels = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)
    except FileNotFoundError:
        raise DataError(f"{path}: no such label file") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: not a readable label table ({str(exc).splitlines()[0]})") from None
    if "image" not in labels.columns:
        raise DataError(f"{path}: no 'image' column (paths of the labelled images, relative to the file)")
    found = [c for c in LABEL_ATTRIBUTES if c in labels.columns]
    if not found:
        raise DataError(f"{path}: no label column; expected any of {', '.join(LABEL_ATTRIBUTES)}")
    root = path.parent.resolve()
    files = []
    for row, name in enumerate(labels["image"], start=1):
        file = (root / str(name)).resolve()
        if not isinstance(name, str) or not file.is_relative_to(root) or not file.is_file():
            raise DataError(f"{path}: row {row}: image {name!r} is not a file under {root}")
        files.append(file)
    return labels.assign(image=files)


def judge_validity(judge: Judge, labels: pd.DataFrame) -> pd.DataFrame:
    """Tidy agreement of ``judge`` with ``labels`` (from :func:`read_labels`), per labelled attribute.

    Returns one ``accuracy`` row (value in [0, 1], ``n`` images, Wilson ``ci_low``/``ci_high``) and
    one ``kappa`` row (value in [-1, 1], no interval) per attribute column present; ``n`` counts
    only images whose label is neither empty nor ``unclear``.
    """
    images = []
    for file in labels["image"]:
        with Image.open(file) as im:
            images.append(im.convert("RGB"))
    judged = pd.DataFrame(judge.attributes(images))
    rows = []
    for column, attribute in LABEL_ATTRIBUTES.items():
        if column not in labels.columns:
            continue
        human = labels[column].astype(object).map(_label)
        known = human.notna()
        said = judged[attribute].astype(object).map(_label)[known].tolist()
        truth = human[known].tolist()
        n = len(truth)
        hits = sum(a == b for a, b in zip(said, truth, strict=True))
        low, high = wilson(hits, n)
        rows.append((judge.name, column, "accuracy", hits / n if n else float("nan"), n, low, high))
        rows.append((judge.name, column, "kappa", stats.cohen_kappa(said, truth), n, None, None))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _label(value: object) -> str | None:
    """One spelling for judge and person: ``4``, ``4.0`` and ``"4"`` agree; blanks are unknown."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return None if text in ("", UNCLEAR) else text
