"""The label store never loses a label when writers race on a brand-new database."""

from __future__ import annotations

import threading
from pathlib import Path

from t2iscope.evaluate.labels import add_label, load_labels


def test_racing_writers_on_a_fresh_store_keep_every_label(tmp_path: Path) -> None:
    writers, rounds = 8, 20
    for attempt in range(rounds):
        folder = tmp_path / f"audit{attempt}"
        start = threading.Barrier(writers)
        errors: list[BaseException] = []

        def write(
            who: str, folder: Path = folder, start: threading.Barrier = start, errors: list = errors
        ) -> None:
            start.wait()  # every tab's first label hits the new database at once
            try:
                add_label(folder, "images/00000.png", "ok", who)
                add_label(folder, "images/00001.png", "ok", who)
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(f"tab{t}",)) for t in range(writers)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == [], errors[0]
        assert len(load_labels(folder)) == 2 * writers
