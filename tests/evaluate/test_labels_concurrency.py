"""The label store: one row per label of one attribute, never losing a label when writers race on
a brand-new database or on a file of the first schema (no attribute column) being migrated."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from t2iscope.errors import ConfigError
from t2iscope.evaluate.labels import DB_NAME, add_label, latest_labels, load_labels
from t2iscope.generate.attributes import ATTRIBUTES

OLD_ROWS = [
    ("images/00000.png", "ok", "ann", "2024-01-01T00:00:00+00:00"),
    ("images/00001.png", "4", "bob", "2024-01-01T00:00:01+00:00"),
]


def old_store(folder: Path, wal: bool = False) -> None:
    """A label file as the first schema wrote it: every label about legs, no attribute column."""
    folder.mkdir(parents=True)
    con = sqlite3.connect(folder / DB_NAME)
    if wal:
        con.execute("PRAGMA journal_mode=WAL")
    con.execute(
        "CREATE TABLE labels (image_path TEXT NOT NULL, label TEXT NOT NULL, "
        "annotator TEXT NOT NULL, time TEXT NOT NULL)"
    )
    con.executemany("INSERT INTO labels VALUES (?, ?, ?, ?)", OLD_ROWS)
    con.commit()
    con.close()


def race(writers: int, write: Callable[[str], None]) -> None:
    """Run ``write(name)`` in ``writers`` threads released at once; re-raise the first failure."""
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def run(who: str) -> None:
        start.wait()  # every tab's first label hits the database at once
        try:
            write(who)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"tab{t}",)) for t in range(writers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == [], errors[0]


def test_racing_writers_on_a_fresh_store_keep_every_label(tmp_path: Path) -> None:
    writers, rounds = 8, 20
    for attempt in range(rounds):
        folder = tmp_path / f"audit{attempt}"

        def write(who: str, folder: Path = folder) -> None:
            add_label(folder, "images/00000.png", "4", who)
            add_label(folder, "images/00001.png", "red", who, attribute="color")

        race(writers, write)
        stored = load_labels(folder)
        assert len(stored) == 2 * writers
        assert sorted(stored["attribute"].unique()) == ["color", "legs"]


@pytest.mark.parametrize("wal", [False, True])
def test_an_old_store_is_migrated_and_keeps_its_rows_as_legs(tmp_path: Path, wal: bool) -> None:
    folder = tmp_path / "audit"
    old_store(folder, wal)
    stored = load_labels(folder)
    assert list(stored.columns) == ["image_path", "attribute", "label", "annotator", "time"]
    assert stored[["image_path", "attribute", "label", "annotator"]].values.tolist() == [
        ["images/00000.png", "legs", "ok", "ann"],
        ["images/00001.png", "legs", "4", "bob"],
    ]
    add_label(folder, "images/00000.png", "dog", "ann", attribute="subject")
    add_label(folder, "images/00000.png", "wrong", "ann")  # the default attribute is still legs
    latest = latest_labels(folder)
    assert sorted(
        zip(latest["image_path"], latest["attribute"], latest["label"], latest["annotator"], strict=True)
    ) == [
        ("images/00000.png", "legs", "wrong", "ann"),
        ("images/00000.png", "subject", "dog", "ann"),
        ("images/00001.png", "legs", "4", "bob"),
    ]


def test_racing_writers_migrating_an_old_store_keep_every_label(tmp_path: Path) -> None:
    writers, rounds = 8, 10
    for attempt in range(rounds):
        folder = tmp_path / f"audit{attempt}"
        old_store(folder)
        race(writers, lambda who, folder=folder: add_label(folder, "images/00002.png", "yes", who, "present"))
        stored = load_labels(folder)
        assert len(stored) == len(OLD_ROWS) + writers
        assert stored["attribute"].tolist() == ["legs"] * len(OLD_ROWS) + ["present"] * writers


def test_an_unknown_attribute_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        add_label(tmp_path / "audit", "images/00000.png", "red", "ann", attribute="colour")
    message = str(exc.value)
    assert len(message.splitlines()) == 1
    assert "'colour'" in message and f"valid: {', '.join(ATTRIBUTES)}" in message
    assert not (tmp_path / "audit" / DB_NAME).exists()  # nothing written


def test_latest_is_per_image_attribute_and_annotator(tmp_path: Path) -> None:
    folder = tmp_path / "audit"
    add_label(folder, "a.png", "4", "ann", attribute="legs")
    add_label(folder, "a.png", "red", "ann", attribute="color")
    add_label(folder, "a.png", "blue", "bob", attribute="color")
    add_label(folder, "a.png", "3", "ann", attribute="legs")  # ann changes her mind on legs only
    add_label(folder, "b.png", "no", "ann", attribute="watermark")
    assert len(load_labels(folder)) == 5
    latest = latest_labels(folder)
    assert sorted(
        zip(latest["image_path"], latest["attribute"], latest["annotator"], latest["label"], strict=True)
    ) == [
        ("a.png", "color", "ann", "red"),
        ("a.png", "color", "bob", "blue"),
        ("a.png", "legs", "ann", "3"),
        ("b.png", "watermark", "ann", "no"),
    ]


def test_an_empty_store_has_the_columns(tmp_path: Path) -> None:
    assert list(load_labels(tmp_path).columns) == ["image_path", "attribute", "label", "annotator", "time"]
    assert latest_labels(tmp_path).empty
