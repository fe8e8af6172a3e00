"""Compare two run folders file by file, ignoring timing fields: did a refactor change any output?

How #13's "same outputs as before" was checked: `make demo` on the parent commit (a clean
`git worktree add /tmp/baseline <commit>`), `make demo` on the change, then

    .venv/bin/python docs/experiments/compare_runs.py /tmp/baseline/runs/demo runs/demo

Parquet files compare as tables without columns named like timings; JSON without timing keys;
everything else byte for byte. Expect differences only in img2dataset's own shard files (they hold
the random server port and thread order) and, when a download timed out under load in one run but
not the other, in that row's `attempt` in shards/status.parquet and shards/kept.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

TIMING = ("seconds", "elapsed", "time", "duration", "start", "end")
PROVENANCE = ("git_commit",)  # differs by design between two commits


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        keep = {k: v for k, v in value.items() if k not in PROVENANCE}
        return {k: _strip(v) for k, v in keep.items() if not any(t in k.lower() for t in TIMING)}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def differences(a: Path, b: Path) -> list[str]:
    """One line per file that is in only one folder or differs beyond timings."""
    fa = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    fb = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    out = [f"only in {'A' if p in fa else 'B'}: {p}" for p in sorted(fa ^ fb)]
    for p in sorted(fa & fb):
        x, y = a / p, b / p
        if x.read_bytes() == y.read_bytes():
            continue
        if p.suffix == ".parquet":
            dx, dy = pd.read_parquet(x), pd.read_parquet(y)
            cols = [c for c in dx.columns if not any(t in c.lower() for t in TIMING)]
            if list(dx.columns) == list(dy.columns) and dx[cols].equals(dy[cols]):
                continue
        elif p.suffix == ".json" and _strip(json.loads(x.read_text())) == _strip(json.loads(y.read_text())):
            continue
        out.append(f"differs: {p}")
    return out


if __name__ == "__main__":
    lines = differences(Path(sys.argv[1]), Path(sys.argv[2]))
    print("\n".join(lines) or "no differences")
