"""One writer per output folder.

Every command that writes a folder (``curate run``, ``curate download``, ``generate suite``,
``evaluate run``/``report``, ``world make``) holds ``<folder>/.t2iscope.lock`` while it works.
The lock is a POSIX ``flock`` on that file, so the kernel releases it when its owner exits in any
way, ``kill -9`` included: a lock file left behind never blocks a rerun. A second writer gets one
line naming the owner's pid and command instead of interleaving its files with the first.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from t2iscope.errors import ConfigError

LOCK_NAME = ".t2iscope.lock"


@contextlib.contextmanager
def output_lock(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Create ``folder`` if needed and hold its lock for the block; yields the folder.

    Raises ConfigError (exit 2) when another live process holds it. Take the lock after every
    check of the command's options, so a refused command creates no folder.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # "a+" never truncates: a refused writer must still read the owner written there.
        fh = open(folder / LOCK_NAME, "a+", encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as exc:  # a name too long, a file in the way, no permission
        raise ConfigError(f"{folder}: cannot write there ({exc.strerror or exc})") from None
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            owner = fh.read().strip() or "another process"
            raise ConfigError(
                f"{folder}: in use by {owner}; wait for it to finish or choose another --out"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} ({' '.join(['t2iscope', *sys.argv[1:3]])})\n")
        fh.flush()
        try:
            yield folder
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def clear_folder(folder: str | os.PathLike[str]) -> None:
    """Delete everything in ``folder`` but its lock (``--overwrite`` while holding the lock)."""
    for entry in Path(folder).iterdir():
        if entry.name == LOCK_NAME:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def is_empty(folder: str | os.PathLike[str]) -> bool:
    """True when ``folder`` is missing or holds nothing but a lock file."""
    path = Path(folder)
    return not path.exists() or all(e.name == LOCK_NAME for e in path.iterdir())
