"""The annotation page's view of the audits' human-label table (owned by t2iscope.evaluate.labels).

The dashboards never store labels themselves: ``save`` calls evaluate's ``add_label``, which
appends to a WAL-mode SQLite table, so two tabs labelling at once both land and nothing is ever
overwritten. Reading uses ``latest_labels``: a label written twice keeps the newest (per image,
attribute and annotator).

What to ask comes from the generation folder's manifest: its ``expect`` column (JSON text such as
``{"subject": "horse", "legs": 4}``, absent in folders made before suites declared expectations)
gives the words offered for a word attribute and the images worth asking about legs.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd

from t2iscope.errors import DataError
from t2iscope.evaluate.labels import DB_NAME, add_label, latest_labels

EXPECT = "expect"  # the manifest column


def load(audit_dir: Path) -> pd.DataFrame:
    """Each annotator's newest label per image and attribute (columns of evaluate.labels.COLUMNS)."""
    try:
        return latest_labels(audit_dir)
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:
        raise DataError(f"{Path(audit_dir) / DB_NAME}: unreadable label table ({exc})") from None


def save(audit_dir: Path, image_path: str, label: str, annotator: str, attribute: str) -> str | None:
    """Store a label of ``attribute``; return this annotator's previous label of it for the image, if any."""
    current = load(audit_dir)
    prior = current[
        (current["image_path"] == image_path)
        & (current["attribute"] == attribute)
        & (current["annotator"] == annotator)
    ]
    try:
        add_label(audit_dir, image_path, label, annotator, attribute=attribute)
    except sqlite3.Error as exc:
        raise DataError(f"{Path(audit_dir) / DB_NAME}: could not store the label ({exc})") from None
    return None if prior.empty else str(prior["label"].iloc[-1])


def expects(manifest: pd.DataFrame) -> list[dict[str, Any]]:
    """Each manifest row's ``expect`` as a dict; ``{}`` where the column is absent or a cell is
    not a JSON object (an unreadable cell only loses its suggestions, never the page)."""
    if EXPECT not in manifest.columns:
        return [{} for _ in range(len(manifest))]
    found = []
    for cell in manifest[EXPECT]:
        try:
            value = json.loads(cell) if isinstance(cell, str) else None
        except ValueError:
            value = None
        found.append(value if isinstance(value, dict) else {})
    return found


def suggestions(manifest: pd.DataFrame, attribute: str) -> list[str]:
    """The distinct words the folder's prompts expect for ``attribute``, sorted (words only)."""
    words = {" ".join(e[attribute].split()) for e in expects(manifest) if isinstance(e.get(attribute), str)}
    return sorted(w for w in words if w)


def queue(manifest: pd.DataFrame, attribute: str) -> pd.DataFrame:
    """The images to ask ``attribute`` about, in manifest order.

    Every image, except for ``legs``: only the images whose prompt expects a leg count, or every
    image when no prompt of the folder declares one (an old folder, a suite without expectations).
    """
    if attribute != "legs":
        return manifest
    limbed = [attribute in e for e in expects(manifest)]
    return manifest[limbed] if any(limbed) else manifest
