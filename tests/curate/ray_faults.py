"""Curation stages that misbehave on purpose, for the Ray engine's fault tests.

Imported by tests/curate/test_engine_ray.py (which removes them from the registry afterwards);
Ray workers import this module by name (engine_ray.operator_modules), with tests/curate on
their PYTHONPATH.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from t2iscope.curate.operators import StageContext, StageResult, operator

NAMES = ("die_once", "pause")


def _keep_all(table: pa.Table) -> StageResult:
    return StageResult(np.ones(table.num_rows, dtype=bool), pa.nulls(table.num_rows, pa.string()))


@operator("die_once")
def die_once(table: pa.Table, ctx: StageContext, flag: str = "") -> StageResult:
    """Kill this worker process with SIGKILL the first time any process runs it (``flag``: a file
    that records it); keep every row."""
    if not Path(flag).exists():
        Path(flag).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return _keep_all(table)


@operator("pause")
def pause(table: pa.Table, ctx: StageContext, seconds: float = 0.0) -> StageResult:
    """Sleep ``seconds`` per batch; keep every row (a slow shard, so a driver can be killed mid-run)."""
    time.sleep(seconds)
    return _keep_all(table)
