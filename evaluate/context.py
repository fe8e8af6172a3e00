"""What every audit receives: the inputs named in AUDIT.yaml, the judge, and shared, cached work.

Judging a generation run is the expensive step, and three audits (language bias, culture, limbs)
need the same judgments, so the context judges each manifest once and writes the per-image
answers to ``judgments.parquet`` beside the audit tables: every figure in the report can be
traced back to the image rows that produced it.

A manifest's ``image_path`` values become file paths, so each must name a file inside its
generation folder: absolute paths, ``..`` and links that resolve outside are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from t2iscope import fileio
from t2iscope.config import location
from t2iscope.errors import ConfigError, DataError
from t2iscope.evaluate.images import load_image
from t2iscope.evaluate.judges import Judge, make_judge
from t2iscope.evaluate.parquet_inputs import curation_parts, parquet_files
from t2iscope.evaluate.vocabulary import Vocabulary, expectations, read_vocabulary
from t2iscope.generate.attributes import ATTRIBUTES
from t2iscope.generate.limits import A1111_NUMBER_COLUMNS, A1111_TEXT_COLUMNS
from t2iscope.sql import file_names, open_duckdb

MANIFEST_COLUMNS = ("prompt_id", "prompt", "language", "seed", "steps", "cfg_scale", "sampler", "image_path")
# What the audits do with each column: text they compare or parse, numbers they group by, tags they read
MANIFEST_TYPES = {
    **dict.fromkeys(("prompt_id", "prompt", "language", "sampler", "image_path"), "text"),
    **dict.fromkeys(("expect", "vocabulary"), "text"),
    **dict.fromkeys(("seed", "steps", "cfg_scale"), "numbers"),
    "tags": "a list of words",
    # A1111 settings (issue 17), in manifests made since: checked when present, never required
    **dict.fromkeys(A1111_TEXT_COLUMNS, "text"),
    **dict.fromkeys(A1111_NUMBER_COLUMNS, "numbers"),
}
JUDGE_BATCH = 64


# What each field of Inputs holds, as errors about a missing input describe it
INPUT_KINDS = {
    "generation": "a generation folder with manifest.parquet",
    "curation": "a curate run folder",
    "world": "a world folder",
    "data": "parquet with a URL column",
}


def describe_input(name: str) -> str:
    """``inputs.curation (a curate run folder)``: an input as errors name it."""
    return f"inputs.{name} ({INPUT_KINDS[name]})"


@dataclass(frozen=True)
class Inputs:
    """Where the audits read from; every path optional, each audit says which it needs."""

    generation: tuple[Path, ...] = ()
    curation: tuple[Path, ...] = ()
    world: Path | None = None
    data: tuple[Path, ...] = ()

    def unmet(self, needs: tuple[tuple[str, ...], ...]) -> str | None:
        """What an audit's ``needs`` (see ``AUDITS.audit``) lacks here, worded for an error; None if met."""
        for group in needs:
            if not any(getattr(self, name) for name in group):
                if len(group) == 1:
                    return f"needs {describe_input(group[0])}"
                return f"needs one of {', '.join(describe_input(n) for n in group)}"
        return None

    def check(self, source: str) -> None:
        """Every configured path exists and is its kind (``CHECKS``), cheaply: no table is read.

        A ConfigError naming ``source`` and the field (``a.yaml: inputs.generation[0]: ...``): the
        config names the wrong path, so it is refused before any work.
        """
        for name, check in CHECKS.items():
            value = getattr(self, name)
            if value is None or isinstance(value, (str, Path)):  # world: one path or none
                paths = [((name,), value)] if value is not None else []
            else:
                paths = [((name, i), p) for i, p in enumerate(value)]
            for loc, path in paths:
                try:
                    check(path)
                except DataError as exc:
                    raise ConfigError(f"{location(source, ('inputs', *loc))}: {exc}") from None
                except OSError as exc:  # a name too long for the file system, a folder it may not list
                    raise ConfigError(
                        f"{location(source, ('inputs', *loc))}: {path}: {exc.strerror}"
                    ) from None


@dataclass
class AuditContext:
    """Inputs, judge and shared work of one run.

    ``out`` is the audit folder (audits read its human labels); ``staging`` where this run writes
    (the runner's staging folder; ``out`` when unset); ``source`` the audit config's file, named
    by errors an audit raises about its parameters.
    """

    inputs: Inputs
    judge_name: str = "clip"
    judge_options: dict[str, Any] = field(default_factory=dict)
    out: Path | None = None
    seed: int = 0
    staging: Path | None = None
    source: str = "AUDIT.yaml"
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def require(self, name: str, audit: str) -> Any:
        value = getattr(self.inputs, name)
        if not value:
            raise ConfigError(f"audit '{audit}' needs {describe_input(name)} in {self.source}")
        return value

    def judge(self) -> Judge:
        if "judge" not in self._cache:
            where = f"{self.source}: judge"
            try:
                self._cache["judge"] = make_judge(self.judge_name, self.judge_options, where)
            except (ConfigError, DataError) as exc:  # a file an option names: say which config named it
                message = str(exc)
                raise type(exc)(message if message.startswith(where) else f"{where}: {message}") from None
        return self._cache["judge"]

    def url_datasets(self) -> list[tuple[str, Path]]:
        """Datasets with URLs: inputs.data and the world's metadata."""
        out = [(Path(p).stem if Path(p).is_file() else Path(p).name, Path(p)) for p in self.inputs.data]
        if self.inputs.world is not None:
            out.append(("world", self.inputs.world / "metadata"))
        return out

    def truth(self) -> pd.DataFrame:
        """The world's truth table (kind, color, culture, legs, caption_lang, ...), keyed by hash."""
        if "truth" not in self._cache:
            files = check_world(self.require("world", "truth"))
            with open_duckdb() as con:
                truth = con.execute("SELECT * FROM read_parquet($files)", {"files": file_names(files)}).df()
            self._cache["truth"] = truth
        return self._cache["truth"]

    def manifests(self) -> list[tuple[Path, pd.DataFrame, Vocabulary]]:
        """Per generation folder: its manifest (with ``req_*`` columns) and its vocabulary."""
        if "manifests" not in self._cache:
            out = []
            for gen in self.require("generation", "manifest"):
                df = load_manifest(gen)
                path = str(check_generation(gen))
                asked = pd.concat([df, expectations(df, path)], axis=1)
                out.append((Path(gen), asked, read_vocabulary(df, path)))
            self._cache["manifests"] = out
        return self._cache["manifests"]

    def manifest(self) -> pd.DataFrame:
        """Every generation folder's manifest, one frame, with the requested ``req_*`` attributes."""
        if "manifest" not in self._cache:
            self._cache["manifest"] = pd.concat([df for _, df, _ in self.manifests()], ignore_index=True)
        return self._cache["manifest"]

    def check_judge(self) -> None:
        """ConfigError naming the manifest if the judge cannot answer what a suite expects."""
        judge = self.judge()
        for gen, _, vocabulary in self.manifests():
            problem = judge.check(vocabulary)
            if problem:
                raise ConfigError(f"{check_generation(gen)}: column expect {problem}")

    def judged(self) -> pd.DataFrame:
        """The manifests with requested (``req_*``) and judged (``j_*``) attributes and a status.

        Each folder is judged with its own vocabulary. ``status`` is ``ok``, or ``missing``/``corrupt``
        for images that could not be read; those rows stay in the frame (with an ``error``) so
        audits count them as skips.
        """
        if "judged" not in self._cache:
            judge = self.judge()
            parts = [judge_manifest(df, judge, vocabulary) for _, df, vocabulary in self.manifests()]
            df = pd.concat(parts, ignore_index=True)
            dest = self.staging or self.out
            if dest is not None:
                fileio.write_parquet(dest / "judgments.parquet", df)
            self._cache["judged"] = df
        return self._cache["judged"]


# One check per input kind, shared by the runner's preflight (Inputs.check) and the loaders; each
# looks at the file system only (paths, folder listings) and raises DataError naming the path.


def check_generation(gen_dir: str | Path) -> Path:
    """``G/manifest.parquet``, if it is there."""
    path = Path(gen_dir) / "manifest.parquet"
    if not path.is_file():
        raise DataError(f"{path}: generation manifest not found")
    return path


def check_world(world: str | Path) -> list[str]:
    """The world's truth shards (``W/truth/*.parquet``)."""
    return parquet_files(Path(world) / "truth")


CHECKS: dict[str, Callable[[Path], object]] = {
    "generation": check_generation,
    "curation": curation_parts,
    "world": check_world,
    "data": parquet_files,
}


def load_manifest(gen_dir: str | Path) -> pd.DataFrame:
    """Read ``G/manifest.parquet``; image paths become files in G (``image_file``); refuse malformed.

    DataError for an empty manifest, a missing column, a column of another type than the audits
    read (``MANIFEST_TYPES``), or an ``image_path`` that is not a relative path staying inside G
    (see :func:`image_file`).
    """
    path = check_generation(gen_dir)
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"{path}: unreadable parquet ({type(exc).__name__})") from None
    missing = [c for c in MANIFEST_COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    if table.num_rows == 0:
        raise DataError(f"{path}: the manifest has no rows (empty suite?)")
    for name in table.column_names:
        kind = table.schema.field(name).type
        expected = MANIFEST_TYPES.get(name)
        if expected is not None and not _is_type(kind, expected):
            raise DataError(f"{path}: column {name} holds {kind}, expected {expected}")
    df = table.to_pandas()
    root = Path(gen_dir)
    inside = root.resolve()
    df = df.reset_index(drop=True)
    df["image_file"] = [str(image_file(path, root, inside, i, v)) for i, v in enumerate(df["image_path"])]
    return df


def _is_type(kind: pa.DataType, expected: str) -> bool:
    text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
    if expected == "text":
        return text
    if expected == "numbers":
        return pa.types.is_integer(kind) or pa.types.is_floating(kind)
    # "a list of words" (tags): a list of words, one word, or none at all
    listed = pa.types.is_list(kind) or pa.types.is_large_list(kind)
    words = listed and (pa.types.is_string(kind.value_type) or pa.types.is_null(kind.value_type))
    return text or words or pa.types.is_null(kind)


def image_file(manifest: Path, root: Path, inside: Path, row: int, value: Any) -> Path:
    """Row ``row``'s (from 0) ``image_path`` as a file under ``root``; DataError unless it stays there.

    ``inside`` is ``root`` resolved: the path, its links followed, must resolve under it. A missing
    file is fine here (the audits count it as a skip); one outside the folder is never read.
    """
    where = f"{manifest}: row {row}, column image_path"
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise DataError(f"{where}: expected a file path relative to {root}, got {value!r}")
    rel = Path(value)
    if rel.is_absolute() or ".." in rel.parts:
        raise DataError(f"{where}: {value!r} leaves the generation folder (paths are relative to {root})")
    path = root / rel
    try:
        target = path.resolve()
    except (RuntimeError, OSError):  # a link loop (RuntimeError on Python 3.11)
        raise DataError(f"{where}: {value!r} is a link that does not resolve") from None
    if not target.is_relative_to(inside):
        raise DataError(f"{where}: {value!r} is a link to a file outside the generation folder {root}")
    return path


def judge_manifest(manifest: pd.DataFrame, judge: Judge, vocabulary: Vocabulary) -> pd.DataFrame:
    """Judge every readable image of a manifest in batches; unreadable ones get a status.

    Adds ``j_<attribute>`` for every attribute of ``generate.attributes`` (None where the judge
    does not answer it), ``status``, ``error`` and ``judge``.
    """
    df = manifest.copy()
    status, errors = ["ok"] * len(df), [""] * len(df)
    answers: list[dict[str, Any] | None] = [None] * len(df)
    files = list(df["image_file"])
    for start in tqdm(range(0, len(df), JUDGE_BATCH), desc=f"judge ({judge.name})", unit="batch"):
        batch = {}
        for i in range(start, min(start + JUDGE_BATCH, len(df))):
            try:
                batch[i] = load_image(files[i])
            except DataError as exc:
                status[i] = "missing" if "not found" in str(exc) else "corrupt"
                errors[i] = str(exc)
        for i, ans in zip(batch, judge.attributes(list(batch.values()), vocabulary), strict=True):
            answers[i] = ans
    df["status"] = status
    df["error"] = errors
    for key in ATTRIBUTES:
        df[f"j_{key}"] = pd.Series([a.get(key) if a else None for a in answers], dtype=object, index=df.index)
    df["judge"] = judge.name
    return df
