"""Human labels for generated images, written by the dashboard while people review, read by audits.

SQLite in WAL mode under the audit folder (``labels.sqlite``): several reviewers (or browser
tabs) can write at once without corrupting anything, and the file stays a single portable table
``labels(image_path, attribute, label, annotator, time)``. ``attribute`` is a name of
``t2iscope.generate.attributes.ATTRIBUTES`` (subject, color, legs, ...); ``label`` is the answer as
text (a word, a count, ``yes``/``no``, ``other`` or ``unclear``). Every label is kept;
``load_labels`` returns all rows and ``latest_labels`` the newest label per (image, attribute,
annotator).

Files written before labels had an attribute (``labels(image_path, label, annotator, time)``, all
about legs: ``ok``/``wrong`` verdicts or leg counts) are migrated when opened: the column is added
with ``legs`` as every old row's value.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from t2iscope.errors import ConfigError
from t2iscope.generate.attributes import ATTRIBUTES

DB_NAME = "labels.sqlite"
COLUMNS = ("image_path", "attribute", "label", "annotator", "time")
DEFAULT_ATTRIBUTE = "legs"  # what every label of the first schema was about
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS labels (image_path TEXT NOT NULL, attribute TEXT NOT NULL, "
    "label TEXT NOT NULL, annotator TEXT NOT NULL, time TEXT NOT NULL)"
)
# Every old row was about legs (DEFAULT_ATTRIBUTE). SQL text is constant: values are bound.
_MIGRATE = "ALTER TABLE labels ADD COLUMN attribute TEXT NOT NULL DEFAULT 'legs'"
_INSERT = "INSERT INTO labels (image_path, attribute, label, annotator, time) VALUES (?, ?, ?, ?, ?)"
_SELECT = "SELECT image_path, attribute, label, annotator, time FROM labels ORDER BY time, rowid"


def _has_attribute(con: sqlite3.Connection) -> bool:
    return any(row[1] == "attribute" for row in con.execute("PRAGMA table_info(labels)"))


def _rollback(con: sqlite3.Connection) -> None:
    """End a failed transaction (SQLite may have ended it already, e.g. on a full disk)."""
    if con.in_transaction:
        con.execute("ROLLBACK")


def _set_up(con: sqlite3.Connection) -> None:
    """WAL mode, the table, and the attribute column on a first-schema table.

    The check and the ``ALTER`` run in one ``BEGIN IMMEDIATE`` transaction: two processes
    opening an old file at once take turns, and the second finds the column already there.
    """
    if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        con.execute("PRAGMA journal_mode=WAL")
    con.execute(_SCHEMA)
    if _has_attribute(con):
        return
    con.execute("BEGIN IMMEDIATE")
    try:
        if not _has_attribute(con):
            con.execute(_MIGRATE)
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise


def _connect(audit_dir: str | Path) -> sqlite3.Connection:
    """Open (creating or migrating on first use) the label store.

    Switching a new file to WAL takes an exclusive lock, and SQLite answers a second writer racing
    to do the same with "database is locked" at once instead of waiting on ``timeout``: two tabs
    labelling the first image would lose a label. So set-up retries until it wins or WAL is on.
    The connection is in autocommit mode: writers open their own transactions.
    """
    folder = Path(audit_dir)
    folder.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(folder / DB_NAME, timeout=30, isolation_level=None)
    deadline = time.monotonic() + 30
    while True:
        try:
            _set_up(con)
            return con
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                con.close()
                raise
            time.sleep(0.02)
        except BaseException:
            con.close()
            raise


def check_attribute(attribute: str) -> str:
    """``attribute`` if it names one of ATTRIBUTES, else a one-line ConfigError naming the valid ones."""
    if attribute not in ATTRIBUTES:
        raise ConfigError(f"label attribute {str(attribute)!r:.80}; valid: {', '.join(ATTRIBUTES)}")
    return attribute


def add_label(
    audit_dir: str | Path, image_path: str, label: str, annotator: str, attribute: str = DEFAULT_ATTRIBUTE
) -> None:
    """Append one human label of ``attribute`` (UTC timestamp); safe to call from concurrent processes."""
    check_attribute(attribute)
    if not str(label).strip() or not str(annotator).strip():
        raise ConfigError("a label needs a non-empty label and annotator")
    con = _connect(audit_dir)
    try:
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute(
                _INSERT,
                (
                    str(image_path),
                    attribute,
                    str(label),
                    str(annotator),
                    datetime.now(timezone.utc).isoformat(),
                ),
            )
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            raise
    finally:
        con.close()


def load_labels(audit_dir: str | Path) -> pd.DataFrame:
    """Every label ever written, oldest first, columns COLUMNS (an empty frame when none exist)."""
    if not (Path(audit_dir) / DB_NAME).is_file():
        return pd.DataFrame(columns=list(COLUMNS))
    con = _connect(audit_dir)
    try:
        return pd.read_sql_query(_SELECT, con)
    finally:
        con.close()


def latest_labels(audit_dir: str | Path) -> pd.DataFrame:
    """The newest label per (image_path, attribute, annotator): a reviewer may change their mind."""
    df = load_labels(audit_dir)
    return df.drop_duplicates(["image_path", "attribute", "annotator"], keep="last").reset_index(drop=True)
