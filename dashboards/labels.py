"""The annotation page's view of the audits' human-label table (owned by t2iscope.evaluate.labels).

The dashboards never store labels themselves: ``save`` calls evaluate's ``add_label``, which
appends to a WAL-mode SQLite table, so two tabs labelling at once both land and nothing is ever
overwritten. Reading uses ``latest_labels``: a label written twice keeps the newest.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd

from t2iscope.errors import DataError
from t2iscope.evaluate.labels import DB_NAME, add_label, latest_labels


def load(audit_dir: Path) -> pd.DataFrame:
    """Each annotator's newest label per image (``image_path, label, annotator, time``)."""
    try:
        return latest_labels(audit_dir)
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:
        raise DataError(f"{Path(audit_dir) / DB_NAME}: unreadable label table ({exc})") from None


def save(audit_dir: Path, image_path: str, label: str, annotator: str) -> str | None:
    """Store a label; return this annotator's previous label of the image, if there was one."""
    current = load(audit_dir)
    prior = current[(current["image_path"] == image_path) & (current["annotator"] == annotator)]
    try:
        add_label(audit_dir, image_path, label, annotator)
    except sqlite3.Error as exc:
        raise DataError(f"{Path(audit_dir) / DB_NAME}: could not store the label ({exc})") from None
    return None if prior.empty else str(prior["label"].iloc[-1])
