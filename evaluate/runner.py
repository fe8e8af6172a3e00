"""Run the audits an AUDIT.yaml names and write one tidy parquet per audit.

``A/<audit>.parquet`` (tidy), ``A/judgments.parquet`` (per-image judge answers, when a
generation run was judged), ``A/audit.resolved.yaml`` and ``A/run.json`` (timings, judge,
versions, the run's audits): everything ``t2iscope evaluate report A`` needs to rebuild the HTML
report. How a run replaces the folder's previous one, and survives failing or being killed, is
``evaluate/folder.py``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import duckdb
import pandas as pd
import yaml

from t2iscope import fileio
from t2iscope.config import location
from t2iscope.errors import ConfigError, DataError
from t2iscope.evaluate import folder
from t2iscope.evaluate.audits import AUDITS
from t2iscope.evaluate.config import AuditConfig
from t2iscope.evaluate.context import AuditContext
from t2iscope.locks import output_lock


def run_audits(config: AuditConfig, out: str | Path, overwrite: bool = False) -> dict[str, Path]:
    """Run every audit of ``config`` in order into the folder ``out``; return audit name -> parquet path.

    Everything is checked before ``out`` is touched; the run then holds the folder's lock and
    replaces its previous run only once every audit has succeeded (``overwrite`` is needed when
    that run was a different one).
    """
    out = Path(out)
    ctx = checked_context(config, out)
    identity = config.identity()
    with output_lock(out):
        staging = folder.prepare(out, identity, overwrite)
        try:
            fileio.write_text(staging / folder.RESOLVED, yaml.safe_dump(config.to_dict(), sort_keys=False))
            timings = {}
            for name, params in config.audits:
                start = time.perf_counter()
                fileio.write_parquet(
                    staging / folder.table_name(name), _run(name, ctx, params, config.source)
                )
                timings[name] = round(time.perf_counter() - start, 3)
            audits = [name for name, _ in config.audits]
            record = folder.run_record(audits, config.judge, identity, config.source, timings)
            folder.commit(out, staging, record)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # a failed run leaves the previous one as it was
    return {name: out / folder.table_name(name) for name, _ in config.audits}


def checked_context(config: AuditConfig, out: Path) -> AuditContext:
    """The run's context, once every check that needs no audit to run has passed; writes nothing.

    Each audit's parameters and declared inputs, the judge (when an audit judges), every input
    path, the generation manifests (image paths included) and each audit's ``check_data``.
    """
    for name, params in config.audits:
        audit = AUDITS.get(name)
        audit.check_params(params, config.source, ("audits", name))
        unmet = config.inputs.unmet(audit.needs)
        if unmet:
            raise ConfigError(f"{location(config.source, ('audits', name))}: {unmet}")
    ctx = AuditContext(
        config.inputs,
        config.judge,
        dict(config.judge_options),
        out,
        config.seed,
        out / folder.STAGING,
        str(config.source),
    )
    judged = any(AUDITS.get(name).judged for name, _ in config.audits)
    if judged:
        ctx.judge()  # a bad judge, config or checkpoint path fails now, before any work
    config.inputs.check(config.source)  # every configured path exists and is its kind, before any write
    if judged and config.inputs.generation:
        ctx.manifest()  # read once now (cached): a malformed manifest stops the run before any audit
        ctx.check_judge()  # a suite asking for what the judge cannot answer, too
    for name, params in config.audits:
        AUDITS.get(name).check_inputs(ctx, params, config.source, ("audits", name))
    return ctx


def _run(name: str, ctx: AuditContext, params: dict[str, object], source: str) -> pd.DataFrame:
    try:
        return AUDITS.get(name).fn(ctx, **params)
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        # a damaged input file met while reading it: DuckDB's message names the file
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{location(source, ('audits', name))}: {message}") from None
