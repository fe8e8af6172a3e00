"""The annotation page's view of the audits' human-label table (owned by t2iscope.evaluate.labels).

The dashboards never store labels themselves: ``save`` calls evaluate's ``add_label``, which
appends to a WAL-mode SQLite table, so two tabs labelling at once both land and nothing is ever
overwritten. Reading uses ``latest_labels``: a label written twice keeps the newest (per image,
attribute and annotator).

What to ask comes from the generation folder's manifest, read by ``evaluate.vocabulary``: its
``expect`` and ``vocabulary`` columns (absent in folders made before suites declared expectations)
give the words offered for a word attribute and the images worth asking about legs.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd

from t2iscope.errors import DataError
from t2iscope.evaluate.labels import DB_NAME, add_label, latest_labels
from t2iscope.evaluate.vocabulary import Vocabulary, expectations, read_vocabulary


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


def _readable(manifest: pd.DataFrame) -> pd.DataFrame:
    """The rows whose ``expect`` and ``vocabulary`` cells ``evaluate.vocabulary`` can read: a broken
    cell only loses its own suggestions, never the page."""
    try:
        read_vocabulary(manifest, "manifest.parquet")
        return manifest
    except DataError:
        keep = []
        for i in range(len(manifest)):
            try:
                read_vocabulary(manifest.iloc[[i]], "manifest.parquet")
                keep.append(i)
            except DataError:
                pass
        return manifest.iloc[keep]


def _vocabulary(manifest: pd.DataFrame) -> Vocabulary:
    """The folder's vocabulary (``evaluate.vocabulary``), over its readable rows."""
    return read_vocabulary(_readable(manifest), "manifest.parquet")


def suggestions(manifest: pd.DataFrame, attribute: str) -> list[str]:
    """The words the folder's suite offers for ``attribute`` (its prompts' expects, then its
    ``vocabulary``), sorted (words only)."""
    words = {
        " ".join(v.split()) for v in _vocabulary(manifest).labels.get(attribute, ()) if isinstance(v, str)
    }
    return sorted(w for w in words if w)


def queue(manifest: pd.DataFrame, attribute: str) -> pd.DataFrame:
    """The images to ask ``attribute`` about, in manifest order.

    Every image, except for ``legs``: only the images whose prompt expects a leg count, or every
    image when no prompt of the folder declares one (an old folder, a suite without expectations).
    """
    if attribute != "legs":
        return manifest
    readable = _readable(manifest)
    limbed = expectations(readable, "manifest.parquet")["req_legs"].notna()
    return readable[limbed] if limbed.any() else manifest
