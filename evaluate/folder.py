"""An audit folder: what one ``evaluate run`` leaves there, how a new run replaces it, how it is read.

``A/<audit>.parquet`` per audit of the run, ``A/judgments.parquet`` (when generations were
judged), ``A/audit.resolved.yaml``, and ``A/run.json``, written last: it lists the run's audits,
so its presence marks a finished run and every reader (report, dashboards) shows exactly those.
``A/report.html`` comes from ``evaluate report``; ``A/labels.sqlite`` holds the dashboard's human
labels, which belong to the folder, not to a run, and are kept.

A run writes into ``A/.staging/``. Only when every audit has succeeded does it move its files in,
delete the previous run's files it does not replace (another run's tables, a stale report) and
write run.json. So a failed run leaves the previous one as it was, and a killed one leaves at
worst a folder without run.json, which readers refuse as unfinished and the next run replaces.
Like ``curate run``, a run refuses a folder that holds a different finished run unless given
``--overwrite``, replaces an identical one, and never deletes files it did not write.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from t2iscope import __version__, fileio
from t2iscope.errors import ConfigError, DataError
from t2iscope.evaluate.audits import AUDITS, Audit
from t2iscope.evaluate.labels import DB_NAME
from t2iscope.evaluate.tables import CORE

RUN_JSON = "run.json"
RESOLVED = "audit.resolved.yaml"
JUDGMENTS = "judgments.parquet"
REPORT = "report.html"
STAGING = ".staging"
RUN_FILES = (RESOLVED, JUDGMENTS, REPORT)  # besides the tables: what a new run replaces or deletes
LABELS = tuple(DB_NAME + suffix for suffix in ("", "-wal", "-shm", "-journal"))
TEXT_COLUMNS = ("audit", "judge", "metric", "note")
NUMBER_COLUMNS = ("value", "n", "ci_low", "ci_high")
UNFINISHED = f"unfinished audit run (no {RUN_JSON}); rerun `t2iscope evaluate run`"


def table_name(audit: str) -> str:
    """The file name of an audit's table."""
    return f"{audit}.parquet"


def _run_file(name: str) -> bool:
    """A file some run of ``evaluate run``/``report`` writes here (never the labels)."""
    return name in (RUN_JSON, *RUN_FILES) or any(name == table_name(a) for a in AUDITS)


def unfinished(names: Iterable[str]) -> bool:
    """Whether a folder without run.json that holds ``names`` is an audit folder whose run did not finish."""
    return any(_run_file(name) or name == STAGING for name in names)


def prepare(out: Path, identity: dict[str, Any], overwrite: bool) -> Path:
    """Make ``out`` ready for a run of ``identity`` (the caller holds its lock); return the staging folder.

    Refuses (ConfigError) a folder holding files no run wrote, and one holding a different
    finished run unless ``overwrite``. Removes what a killed run left: its staging folder and
    temp files.
    """
    names = [e.name for e in out.iterdir()]
    foreign = sorted(n for n in names if not n.startswith(".") and not _run_file(n) and n not in LABELS)
    if foreign:
        raise ConfigError(f"{out}: not an audit folder (holds {foreign[0]!r}); choose another --out")
    record = _finished(out)
    if record is not None and record.get("identity") != identity and not overwrite:
        raise ConfigError(
            f"{out}: holds a different audit run; pass --overwrite to replace it or choose another --out"
        )
    for entry in out.iterdir():
        if entry.name == STAGING and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.name == STAGING:
            entry.unlink()
        elif entry.name.endswith(".tmp") and _run_file(entry.name[1:].rsplit(".", 2)[0]):
            entry.unlink()  # fileio's temp file (".<name>.<random>.tmp") of a killed writer
    staging = out / STAGING
    staging.mkdir()
    return staging


def _finished(out: Path) -> dict[str, Any] | None:
    """run.json's record, or None when there is none; an unreadable one counts as another run's."""
    path = out / RUN_JSON
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_bytes())
    except (ValueError, OSError):
        return {}
    return record if isinstance(record, dict) else {}


def run_record(
    audits: list[str], judge: str, identity: dict[str, Any], config: str, seconds: dict[str, float]
) -> dict[str, Any]:
    """run.json's record of a finished run: its audits in run order, judge, identity (``prepare``
    compares it), config file and seconds per audit."""
    return {
        "t2iscope": __version__,
        "judge": judge,
        "audits": audits,
        "seconds": seconds,
        "config": config,
        "identity": identity,
    }


def commit(out: Path, staging: Path, record: dict[str, Any]) -> None:
    """Make the staged run the folder's run: move its files in, drop the old run's others, run.json last."""
    (out / RUN_JSON).unlink(missing_ok=True)  # from here until the end the folder reads as unfinished
    new = {e.name for e in staging.iterdir()}
    for entry in out.iterdir():
        if _run_file(entry.name) and entry.name not in new and entry.is_file():
            entry.unlink()
    for name in sorted(new):
        os.replace(staging / name, out / name)  # each staged file is complete (fileio), so is each move
    fileio.write_json(out / RUN_JSON, record)
    staging.rmdir()


@dataclass(frozen=True)
class FinishedRun:
    """The run recorded in an audit folder: run.json's record and its audits' tables, in report order."""

    root: Path
    record: dict[str, Any]
    tables: list[tuple[Audit, pd.DataFrame]]


def read_record(root: str | Path) -> dict[str, Any]:
    """run.json of a finished run in ``root``, checked; DataError naming the folder or file otherwise."""
    root = Path(root)
    try:
        found = root.is_dir()
    except OSError as exc:  # a name too long for the file system
        raise DataError(f"{root}: {exc.strerror}") from None
    if not found:
        raise DataError(f"{root}: audit folder not found")
    path = root / RUN_JSON
    if not path.is_file():
        if unfinished(e.name for e in root.iterdir()):
            raise DataError(f"{root}: {UNFINISHED}")
        raise DataError(f"{root}: no audit run here (no {RUN_JSON}); run `t2iscope evaluate run` first")
    try:
        record = json.loads(path.read_bytes())
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not valid JSON ({type(exc).__name__})") from None
    audits = record.get("audits") if isinstance(record, dict) else None
    if isinstance(record, dict) and audits is None and "suite" in record:  # generate suite's run.json
        raise DataError(
            f"{root}: a generation folder (suite {record['suite']!r}), not an audit folder; "
            "audit it with `t2iscope evaluate run AUDIT.yaml --out DIR` and report DIR"
        )
    if not isinstance(audits, list) or not audits or not all(isinstance(a, str) for a in audits):
        raise DataError(f"{path}: 'audits' must list the run's audit names")
    for name in audits:
        if name not in AUDITS:
            raise DataError(f"{path}: unknown audit {name!r}; valid: {', '.join(AUDITS.names())}")
    return record


def read_run(root: str | Path) -> FinishedRun:
    """The finished run in ``root`` with every table it lists, each checked to be that audit's table.

    A missing, corrupt or foreign table (no ``metric`` column, another audit's rows) is a
    DataError naming the file; files run.json does not list are not read at all.
    """
    root = Path(root)
    record = read_record(root)
    listed = set(record["audits"])
    audits = [a for a in AUDITS.in_report_order() if a.name in listed]
    return FinishedRun(root, record, [(a, read_table(root / table_name(a.name), a.name)) for a in audits])


def read_table(path: Path, audit: str) -> pd.DataFrame:
    """One audit's tidy table; DataError naming ``path`` unless it is one ``audit`` wrote."""
    if not path.is_file():
        raise DataError(f"{path}: missing, though {RUN_JSON} lists audit {audit!r}")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:  # truncated, random bytes, not parquet
        raise DataError(f"{path}: unreadable parquet ({type(exc).__name__})") from None
    schema = table.schema
    missing = [c for c in CORE if c not in schema.names]
    if missing:
        raise DataError(f"{path}: not an audit table (missing column(s) {', '.join(missing)})")
    for col in TEXT_COLUMNS:
        kind = schema.field(col).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)):
            raise DataError(f"{path}: column {col} holds {kind}, expected text")
    for col in NUMBER_COLUMNS:
        kind = schema.field(col).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)):
            raise DataError(f"{path}: column {col} holds {kind}, expected numbers")
    df = table.to_pandas()
    for col in NUMBER_COLUMNS:  # an all-null column would arrive as objects: numbers, like the others
        df[col] = pd.to_numeric(df[col])
    if not df["audit"].eq(audit).all():
        others = sorted(set(df["audit"].dropna().astype(str)) - {audit})
        raise DataError(f"{path}: holds rows of audit {', '.join(others) or '(none)'}, expected {audit!r}")
    return df
