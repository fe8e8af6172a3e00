"""``curate run``: a recipe over an input, written as a resumable run folder.

Layout (docs/architecture.md): ``kept/part-NNNNN.parquet``, ``dropped/part-NNNNN.parquet``
(+ ``stage``, ``reason``; key columns only or absent under the recipe's ``dropped: keys|none``),
``stats.json``, ``recipe.resolved.yaml``. ``_state/`` holds one
finished-marker per shard (its tallies) and the dedup keys it added: a killed run started again
with the same recipe and input skips finished shards, reloads their keys, and ends with the same
rows as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from t2iscope import __version__
from t2iscope.curate.engine_local import LocalEngine, merge_extra, metadata_contexts
from t2iscope.curate.operators.dedup import KeySet
from t2iscope.curate.readers import InputShard, is_url, resolve_inputs
from t2iscope.curate.recipe import Recipe
from t2iscope.errors import ConfigError
from t2iscope.fileio import write_bytes, write_json, write_text
from t2iscope.paths import REPO_ROOT


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def fingerprint(shards: list[InputShard]) -> str:
    h = hashlib.sha256()
    for s in shards:
        h.update(f"{s.path}\0{s.size}\n".encode())
    return h.hexdigest()[:16]


def prepare_out(out: Path, identity: dict[str, Any], overwrite: bool) -> None:
    """Create ``out``, resume a matching run in it, or refuse to mix two runs."""
    marker = out / "_state" / "run.json"
    if out.exists() and any(out.iterdir()):
        is_run = marker.exists() or (out / "stats.json").exists()
        if overwrite and is_run:
            shutil.rmtree(out)
        elif overwrite:
            raise ConfigError(
                f"{out}: not a curation run folder; refusing to delete it (choose another --out)"
            )
        elif not marker.exists() or json.loads(marker.read_text()) != identity:
            raise ConfigError(f"{out}: holds a different run; pass --overwrite or choose another --out")
    (out / "_state").mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        write_json(marker, identity)


def run_recipe(
    recipe: Recipe,
    input_spec: str,
    out: str | Path,
    *,
    overwrite: bool = False,
    batch_rows: int = 131_072,
    threads: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run ``recipe``'s metadata stages over ``input_spec`` into ``out``; returns stats.json's content."""
    out = Path(out)
    shards = resolve_inputs(input_spec)
    identity = {"recipe": recipe.to_dict(), "inputs": [[s.path, s.size] for s in shards]}
    prepare_out(out, identity, overwrite)
    state = out / "_state"
    engine = LocalEngine(batch_rows=batch_rows, threads=threads, spec=input_spec, dropped=recipe.dropped)
    contexts = metadata_contexts(recipe.stages)
    stateful = [i for i, s in enumerate(recipe.stages) if s.op.stateful]
    start = time.perf_counter()

    def one(shard: InputShard) -> dict[str, Any]:
        part = f"part-{shard.index:05d}"
        done = state / f"{part}.json"
        if done.exists():
            for i in stateful:
                keys = np.load(state / f"keys-{i}-{part}.npy")
                contexts[i].state.setdefault("keys", KeySet()).add(keys)
                contexts[i].state["keys"].take_pending()
            return json.loads(done.read_text())
        kept, dropped = out / "kept" / f"{part}.parquet", out / "dropped" / f"{part}.parquet"
        result = engine.run_shard(shard, recipe.stages, contexts, kept, dropped)
        for i in stateful:
            keys = contexts[i].state.setdefault("keys", KeySet()).take_pending()
            with _npy(state / f"keys-{i}-{part}.npy") as buf:
                np.save(buf, keys)
        write_json(done, result)
        return result

    bar = tqdm(total=len(shards), desc=f"curate {recipe.name}", unit="shard", disable=not progress)
    workers = min(len(shards), threads or os.cpu_count() or 1)
    try:
        if workers > 1 and _independent(recipe) and not is_url(input_spec):
            # Shards share nothing here, and one file often has too few row groups to keep every
            # DuckDB thread busy: run as many shards at once as there are threads.
            with ThreadPoolExecutor(workers, initializer=engine.bind_thread) as pool:
                results = [*pool.map(lambda s: _ticked(bar, one(s)), shards)]
        else:
            results = [_ticked(bar, one(shard)) for shard in shards]
    finally:
        bar.close()
        engine.close()
    stats = summarize(recipe, shards, results, time.perf_counter() - start)
    write_json(out / "stats.json", stats)
    write_text(out / "recipe.resolved.yaml", recipe.to_yaml())
    return stats


def _independent(recipe: Recipe) -> bool:
    """Every stage is SQL and none remembers rows: shards can run in any order, side by side."""
    return all(s.op.rule is not None for s in recipe.stages)


def _ticked(bar: tqdm, result: dict[str, Any]) -> dict[str, Any]:
    bar.update()
    return result


class _npy:
    """Collect np.save output in memory, then write it atomically."""

    def __init__(self, path: Path) -> None:
        import io

        self.path, self.buf = path, io.BytesIO()

    def __enter__(self):
        return self.buf

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            write_bytes(self.path, self.buf.getvalue())


def summarize(
    recipe: Recipe, shards: list[InputShard], results: list[dict[str, Any]], seconds: float
) -> dict[str, Any]:
    stages: list[dict[str, Any]] = []
    for i, stage in enumerate(recipe.stages):
        total: dict[str, Any] = {"stage": stage.name, "params": stage.params, "rows_in": 0, "rows_out": 0}
        dropped: Counter = Counter()
        secs, extra = 0.0, {}
        for r in results:
            s = r["stages"][i]
            total["rows_in"] += s["rows_in"]
            total["rows_out"] += s["rows_out"]
            dropped.update(s["dropped"])
            secs += s["seconds"]
            merge_extra(extra, {k: v for k, v in s.items() if isinstance(v, dict) and k != "dropped"})
        total.update(dropped=dict(sorted(dropped.items())), seconds=round(secs, 4), **extra)
        total["pushed_down"] = any(r["stages"][i]["pushed_down"] for r in results)
        stages.append(total)
    lang_in: dict[str, Any] = {}
    lang_out: dict[str, Any] = {}
    for r in results:
        merge_extra(lang_in, r["languages"]["in"])
        merge_extra(lang_out, r["languages"]["out"])
    rows_in = stages[0]["rows_in"] if stages else 0
    rows_out = stages[-1]["rows_out"] if stages else 0
    return {
        "recipe": recipe.name,
        "engine": recipe.engine,
        "dropped": recipe.dropped,
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rows_dropped": rows_in - rows_out,
        "stages": stages,
        "languages": {"in": dict(sorted(lang_in.items())), "out": dict(sorted(lang_out.items()))},
        "timings": {
            "seconds": round(seconds, 3),
            "shard_seconds": round(sum(r["seconds"] for r in results), 3),
            "duckdb_seconds": round(sum(r["duckdb_seconds"] for r in results), 3),
        },
        "input": {
            "files": len(shards),
            "bytes": sum(s.size for s in shards),
            "fingerprint": fingerprint(shards),
        },
        "t2iscope": __version__,
        "git_commit": git_commit(),
    }
