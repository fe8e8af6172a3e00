"""Run the audits an AUDIT.yaml names and write one tidy parquet per audit.

``A/<audit>.parquet`` (tidy), ``A/judgments.parquet`` (per-image judge answers, when a
generation run was judged), ``A/audit.resolved.yaml`` and ``A/run.json`` (timings, judge,
versions): everything ``t2iscope evaluate report A`` needs to rebuild the HTML report.
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from t2iscope import __version__, fileio
from t2iscope.config import location
from t2iscope.errors import ConfigError
from t2iscope.evaluate.audits import AUDITS
from t2iscope.evaluate.config import AuditConfig
from t2iscope.evaluate.context import AuditContext


def run_audits(config: AuditConfig, out: str | Path) -> dict[str, Path]:
    """Run every audit of ``config`` in order; return audit name -> parquet path."""
    out = Path(out)
    for name, params in config.audits:  # every audit's parameters and inputs, before any work
        audit = AUDITS.get(name)
        audit.check_params(params, config.source, ("audits", name))
        unmet = config.inputs.unmet(audit.needs)
        if unmet:
            raise ConfigError(f"{location(config.source, ('audits', name))}: {unmet}")
    ctx = AuditContext(config.inputs, config.judge, dict(config.judge_options), out, config.seed)
    if any(AUDITS.get(name).judged for name, _ in config.audits):
        ctx.judge()  # a bad judge, config or checkpoint path fails now, before any work
    config.inputs.check(config.source)  # every configured path exists and is its kind, before any write
    fileio.write_text(out / "audit.resolved.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    written, timings = {}, {}
    for name, params in config.audits:
        start = time.perf_counter()
        table = AUDITS.get(name).fn(ctx, **params)
        path = out / f"{name}.parquet"
        fileio.write_parquet(path, table)
        written[name] = path
        timings[name] = round(time.perf_counter() - start, 3)
    fileio.write_json(
        out / "run.json",
        {
            "t2iscope": __version__,
            "judge": config.judge,
            "audits": list(written),
            "seconds": timings,
            "config": config.source,
        },
    )
    return written
