"""Find the runs under a folder by their marker files, without reading their data.

Each area writes a marker the dashboards can recognise: ``world.json`` (world), ``stats.json``
(curation run), ``manifest.parquet`` (generation), tidy ``*.parquet`` tables or ``report.html``
(audit). We never descend into a recognised run, so a world with a million images costs one
directory listing, not a million. Nothing outside the runs folder is looked at: an entry that
resolves out of it (a symlink to elsewhere) is skipped, as the dashboards serve only what is inside.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

MAX_DEPTH = 4
AUDIT_COLUMNS = frozenset({"metric", "value", "n"})


@dataclass(frozen=True)
class Runs:
    """The runs found under ``root``, each kind sorted by path."""

    root: Path
    worlds: tuple[Path, ...] = ()
    curations: tuple[Path, ...] = ()
    generations: tuple[Path, ...] = ()
    audits: tuple[Path, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.worlds or self.curations or self.generations or self.audits)

    def label(self, path: Path) -> str:
        """A short name for a run: its path relative to the root."""
        rel = os.path.relpath(path, self.root)
        return path.name if rel == "." else rel


def audit_tables(folder: Path) -> list[Path]:
    """The tidy audit tables in ``folder`` (parquet files with metric/value/n columns)."""
    tables = []
    for path in sorted(folder.glob("*.parquet")):
        if not path.is_file():  # a FIFO named *.parquet would block the read forever
            continue
        try:
            names = set(pq.read_schema(path).names)
        except (OSError, ValueError, pa.ArrowException):  # a corrupt or foreign file is no table
            continue
        if names >= AUDIT_COLUMNS:
            tables.append(path)
    return tables


def _kind(folder: Path, files: set[str]) -> str | None:
    if "world.json" in files:
        return "world"
    if "stats.json" in files:
        return "curation"
    if "manifest.parquet" in files:
        return "generation"
    if "report.html" in files or (any(f.endswith(".parquet") for f in files) and audit_tables(folder)):
        return "audit"
    return None


def _within(entry: os.DirEntry[str], top: Path) -> bool:
    """Whether ``entry`` is a plain entry or a symlink that stays inside the runs folder ``top``."""
    if not entry.is_symlink():
        return True
    try:
        return Path(entry.path).resolve().is_relative_to(top)
    except (OSError, RuntimeError):  # a symlink loop
        return False


def discover(root: str | os.PathLike[str]) -> Runs:
    """Walk ``root`` (at most MAX_DEPTH levels) and classify every run folder found."""
    root = Path(root)
    found: dict[str, list[Path]] = {"world": [], "curation": [], "generation": [], "audit": []}
    if not root.is_dir():
        return Runs(root=root)
    top = root.resolve()
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = [e for e in os.scandir(folder) if _within(e, top)]
        except OSError:
            continue
        files = {e.name for e in entries if e.is_file()}
        kind = _kind(folder, files)
        if kind:
            found[kind].append(folder)
            continue
        if depth < MAX_DEPTH:
            stack.extend(
                (Path(e.path), depth + 1) for e in entries if e.is_dir() and not e.name.startswith(".")
            )
    return Runs(
        root=root,
        worlds=tuple(sorted(found["world"])),
        curations=tuple(sorted(found["curation"])),
        generations=tuple(sorted(found["generation"])),
        audits=tuple(sorted(found["audit"])),
    )
