"""Human labels for judged images, written by the dashboard while people review, read by audits.

SQLite in WAL mode under the audit folder (``labels.sqlite``): several reviewers (or browser
tabs) can write at once without corrupting anything, and the file stays a single portable table
``labels(image_path, label, annotator, time)``. Every label is kept; ``load_labels`` returns all
rows and ``latest_labels`` the newest label per (image, annotator).
"""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from t2iscope.errors import ConfigError

DB_NAME = "labels.sqlite"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS labels (image_path TEXT NOT NULL, label TEXT NOT NULL, "
    "annotator TEXT NOT NULL, time TEXT NOT NULL)"
)


def _connect(audit_dir: str | Path) -> sqlite3.Connection:
    """Open (creating on first use) the label store.

    Switching a new file to WAL takes an exclusive lock, and SQLite answers a second writer racing
    to do the same with "database is locked" at once instead of waiting on ``timeout``: two tabs
    labelling the first image would lose a label. So set-up retries until it wins or WAL is on.
    """
    folder = Path(audit_dir)
    folder.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(folder / DB_NAME, timeout=30)
    deadline = time.monotonic() + 30
    while True:
        try:
            if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                con.execute("PRAGMA journal_mode=WAL")
            con.execute(_SCHEMA)
            return con
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                con.close()
                raise
            time.sleep(0.02)


def add_label(audit_dir: str | Path, image_path: str, label: str, annotator: str) -> None:
    """Append one human label (UTC timestamp); safe to call from concurrent processes."""
    if not str(label).strip() or not str(annotator).strip():
        raise ConfigError("a label needs a non-empty label and annotator")
    con = _connect(audit_dir)
    try:
        with con:
            con.execute(
                "INSERT INTO labels VALUES (?, ?, ?, ?)",
                (str(image_path), str(label), str(annotator), datetime.now(timezone.utc).isoformat()),
            )
    finally:
        con.close()


def load_labels(audit_dir: str | Path) -> pd.DataFrame:
    """Every label ever written, oldest first (empty frame with the columns when none exist)."""
    if not (Path(audit_dir) / DB_NAME).is_file():
        return pd.DataFrame(columns=["image_path", "label", "annotator", "time"])
    con = _connect(audit_dir)
    try:
        return pd.read_sql_query("SELECT * FROM labels ORDER BY time, rowid", con)
    finally:
        con.close()


def latest_labels(audit_dir: str | Path) -> pd.DataFrame:
    """The newest label per (image_path, annotator): a reviewer may change their mind."""
    df = load_labels(audit_dir)
    return df.drop_duplicates(["image_path", "annotator"], keep="last").reset_index(drop=True)
