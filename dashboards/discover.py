"""Find the runs under a folder by their marker files, without reading their data.

Each area writes a marker the dashboards can recognise: ``world.json`` (world), ``stats.json``
(curation run), ``manifest.parquet`` (generation), ``run.json`` (audit: ``evaluate run`` writes it
last, listing its audits, and pages read exactly those through ``t2iscope.evaluate.folder``). A
folder holding an audit run's files but no run.json is an unfinished run, which pages never read
and the overview names in ``evaluate report``'s words. We never descend into a recognised run, so
a world with a million images costs one directory listing, not a million. Nothing outside the
runs folder is looked at: an entry that resolves out of it (a symlink to elsewhere) is skipped, as
the dashboards serve only what is inside.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from t2iscope.evaluate.folder import RUN_JSON, unfinished

MAX_DEPTH = 4


@dataclass(frozen=True)
class Runs:
    """The runs found under ``root``, each kind sorted by path."""

    root: Path
    worlds: tuple[Path, ...] = ()
    curations: tuple[Path, ...] = ()
    generations: tuple[Path, ...] = ()
    audits: tuple[Path, ...] = ()
    unfinished: tuple[Path, ...] = ()  # audit folders without run.json

    @property
    def empty(self) -> bool:
        return not (self.worlds or self.curations or self.generations or self.audits or self.unfinished)

    def label(self, path: Path) -> str:
        """A short name for a run: its path relative to the root."""
        rel = os.path.relpath(path, self.root)
        return path.name if rel == "." else rel


def _kind(names: set[str], files: set[str]) -> str | None:
    """The run kind of a folder holding the entries ``names``, of which ``files`` are plain files."""
    if "world.json" in files:
        return "world"
    if "stats.json" in files:
        return "curation"
    if "manifest.parquet" in files:
        return "generation"
    if RUN_JSON in files:
        return "audit"
    if unfinished(names):
        return "unfinished"
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
    found: dict[str, list[Path]] = {k: [] for k in ("world", "curation", "generation", "audit", "unfinished")}
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
        kind = _kind({e.name for e in entries}, {e.name for e in entries if e.is_file()})
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
        unfinished=tuple(sorted(found["unfinished"])),
    )
