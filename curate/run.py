"""``curate run``: a recipe over an input, written as a resumable run folder.

Layout (docs/architecture.md): ``kept/part-NNNNN.parquet``, ``dropped/part-NNNNN.parquet``
(+ ``stage``, ``reason``; key columns only or absent under the recipe's ``dropped: keys|none``),
``stats.json``, ``recipe.resolved.yaml``. ``_state/`` holds the run's identity (``run.json``: recipe
and input files with their sizes and modification times), the cutoffs of top-fraction stages over
the whole input (``cutoffs.json``, computed once before any shard), one finished-marker per shard
(its tallies) and the dedup keys it added, and DuckDB's spill files while the run works
(``_state/spill``, unless ``--temp-directory``).

Every check comes before the folder is touched: options, the recipe, every input file's columns.
Then the run holds the folder's lock (``t2iscope.locks``) to the end. Resume decides from what is
finished: a rerun with the same recipe skips finished shards, reloads their dedup keys, deletes what
killed work left (temp files, parts of unfinished shards, DuckDB's spill files) and ends with the
same bytes as an uninterrupted run. A folder with no finished shard is simply started over, and an
input file may change (fixed after a failure) as long as no finished shard was curated from it;
anything else is refused with one line saying what differs. A resumed run reuses its cutoffs; as
they rank every input file, a run with cutoffs and finished shards refuses any changed input.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from tqdm import tqdm

from t2iscope import __version__
from t2iscope.curate import engine_ray
from t2iscope.curate.engine_local import LocalEngine, metadata_contexts
from t2iscope.curate.limits import MAX_BATCH_ROWS, MAX_THREADS
from t2iscope.curate.operators import CUTOFF, METADATA
from t2iscope.curate.operators.dedup import restore_keys, save_keys
from t2iscope.curate.plan import Tally
from t2iscope.curate.readers import (
    DEFAULT_MEMORY_LIMIT,
    InputShard,
    check_memory_limit,
    check_temp_directory,
    is_url,
    resolve_inputs,
)
from t2iscope.curate.recipe import Engine, Recipe
from t2iscope.errors import ConfigError
from t2iscope.fileio import write_json, write_text
from t2iscope.locks import LOCK_NAME, clear_folder, is_empty, output_lock
from t2iscope.paths import REPO_ROOT
from t2iscope.ray_runtime import connect, require_ray

SPILL = "spill"  # DuckDB's default temp folder, inside _state: removed with the run's other state
_PART = re.compile(r"part-(\d+)\.json")
_LAYOUT = {"_state", "kept", "dropped", "stats.json", "recipe.resolved.yaml", LOCK_NAME}
_STATE = re.compile(r"(part-\d+)\.json|keys-\d+-(part-\d+)\.npy")  # a shard's marker and dedup keys
CUTOFFS = "cutoffs.json"  # top-fraction cutoffs over the whole input, with the inputs they ranked


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
        h.update(f"{s.path}\0{s.size}\0{s.modified}\n".encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Resume:
    """What ``curate run`` does with its ``--out``: start it, resume it, or start it over."""

    action: Literal["new", "resume", "restart"]
    finished: frozenset[int] = field(default_factory=frozenset)  # shard indices with a marker


def plan_out(out: Path, identity: dict[str, Any], overwrite: bool) -> Resume:
    """Decide, reading only, what to do with ``out`` for the run ``identity`` (recipe + inputs).

    New when ``out`` is missing or empty. Restart when ``--overwrite`` names a run folder, or when
    the run there never finished a shard. Resume when the recipe is the same and every finished
    shard's input file is unchanged (unfinished ones may have changed: a fixed input). Raises
    ConfigError naming what differs otherwise, and for a folder that is not a run folder.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    if is_empty(out):
        return Resume("new")
    marker = out / "_state" / "run.json"
    if not marker.exists():
        names = {e.name for e in out.iterdir()}
        # A folder a run wrote has its lock file, and nothing outside the run's layout.
        ours = LOCK_NAME in names and all(n in _LAYOUT or _is_temp(n) for n in names)
        if (ours and "stats.json" not in names) or (overwrite and (ours or "stats.json" in names)):
            return Resume("restart")  # without --overwrite: killed before it wrote its identity
        if ours or "stats.json" in names:
            raise ConfigError(
                f"{out}: holds a run without its _state/run.json, which cannot be resumed; "
                "pass --overwrite to replace it, or choose another --out"
            )
        raise ConfigError(f"{out}: not a curation run folder; refusing to use it (choose another --out)")
    if overwrite:
        return Resume("restart")
    try:
        old = json.loads(marker.read_text(encoding="utf-8"))
        old_inputs = [tuple(i) for i in old["inputs"]]
        old["recipe"] = {k: v for k, v in old["recipe"].items() if k != "engine"}  # a run.json before it left
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise ConfigError(f"{marker}: unreadable; pass --overwrite to start over") from None
    finished = frozenset(int(m[1]) for p in (out / "_state").iterdir() if (m := _PART.fullmatch(p.name)))
    if old == identity:
        return Resume("resume", finished)
    cutoffs = out / "_state" / CUTOFFS
    if finished and old.get("recipe") == identity["recipe"] and cutoffs.exists():
        raise ConfigError(
            f"{out}: holds a run whose top_fraction cutoffs ranked other input files, and "
            f"{len(finished)} shard(s) were curated with them; pass --overwrite to start over"
        )
    if not finished:  # nothing worth keeping: a run that failed or was killed in its first shards
        return Resume("restart")
    if old.get("recipe") != identity["recipe"]:
        raise ConfigError(
            f"{out}: holds a different run ({len(finished)} shard(s) finished with another recipe or "
            "--dropped mode); pass --overwrite to replace it, or choose another --out"
        )
    new_inputs = [tuple(i) for i in identity["inputs"]]
    for i in sorted(finished):
        was, now = (inputs[i] if i < len(inputs) else None for inputs in (old_inputs, new_inputs))
        if was == now:
            continue
        if was and now and was[0] == now[0] and was[1] != now[1]:
            what = f"{now[0]} changed ({was[1]} -> {now[1]} bytes) after shard {i} was curated from it"
        elif was and now and was[0] == now[0]:
            what = f"{now[0]} was rewritten after shard {i} was curated from it"
        else:
            what = f"shard {i} was curated from {was[0] if was else '?'}, which --input no longer gives there"
        raise ConfigError(
            f"{out}: holds a different run: {what}; pass --overwrite to start over, or choose another --out"
        )
    return Resume("resume", finished)


def _identity(recipe: Recipe) -> dict[str, Any]:
    """The recipe as run.json records it: without its engine, whose outputs are the same (issue
    18), so a run killed under one engine resumes under the other."""
    return {k: v for k, v in recipe.to_dict().items() if k != "engine"}


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (symlinks resolved)."""
    return path.resolve().is_relative_to(folder.resolve())


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def clean_leftovers(out: Path, finished: frozenset[int], complete: bool) -> None:
    """Delete what killed or failed work left in ``out``; keep what finished shards wrote.

    Under kept/ and dropped/ only finished shards' part files stay (temp files of atomic writes,
    DuckDB's ``tmp_*`` files and parts of unfinished shards go); under _state/ the identity and
    finished shards' markers and keys; at the top, hidden temp files, and ``stats.json`` unless
    ``complete`` (a folder with stats.json is always a whole run).
    """
    parts = {f"part-{i:05d}" for i in finished}
    for sub in ("kept", "dropped"):
        if (out / sub).is_dir():
            for entry in (out / sub).iterdir():
                if entry.suffix != ".parquet" or entry.stem not in parts or not entry.is_file():
                    _remove(entry)
    for entry in (out / "_state").iterdir():
        own = _STATE.fullmatch(entry.name)
        if entry.name not in ("run.json", CUTOFFS) and not (
            own and entry.is_file() and (own[1] or own[2]) in parts
        ):
            _remove(entry)
    for entry in out.iterdir():
        if _is_temp(entry.name) or (entry.name == "stats.json" and not complete):
            _remove(entry)


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")  # t2iscope.fileio's writes in flight


def run_recipe(
    recipe: Recipe,
    input_spec: str,
    out: str | Path,
    *,
    overwrite: bool = False,
    batch_rows: int = 131_072,
    threads: int | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    temp_directory: str | Path | None = None,
    progress: bool = True,
    engine: Engine | None = None,
    address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Run ``recipe``'s metadata stages over ``input_spec`` into ``out``; returns stats.json's content.

    ``engine`` overrides the recipe's (``local``, or ``ray``: the same plan and outputs on a Ray
    cluster, engine_ray.py); under ``ray``, ``address`` is the cluster to join (None: start a
    local Ray with this machine's CPUs; ``auto``; ``host:port``; ``ray://host:port``) and
    ``workers`` the shards curated at once (None: the cluster's CPUs). ``--engine ray`` without
    Ray installed, or an address that does not answer, is a ConfigError before ``out`` is touched.

    ``batch_rows`` (1..MAX_BATCH_ROWS) rows per Arrow batch; ``threads`` (1..MAX_THREADS, None: all
    cores) DuckDB threads
    and shards run side by side; ``memory_limit`` DuckDB's limit (``4GB``, ``512MiB``, ``50%`` of
    RAM: :func:`readers.check_memory_limit`), past which it spills to ``temp_directory`` (default
    ``out/_state/spill``, removed with the run's state). ``overwrite`` replaces a run in ``out``;
    otherwise a run there is resumed (module docstring). Raises ConfigError for bad options or
    ``out`` (before any file is written), DataError for unreadable inputs or missing columns (before
    ``out`` is created, when the file's schema says so), and ConfigError when another process holds
    ``out``.
    """
    if type(batch_rows) is not int or not 1 <= batch_rows <= MAX_BATCH_ROWS:  # bool is no count
        raise ConfigError(f"--batch-rows must be an integer from 1 to {MAX_BATCH_ROWS}, got {batch_rows!r}")
    if threads is not None and (type(threads) is not int or not 1 <= threads <= MAX_THREADS):
        raise ConfigError(f"--threads must be an integer from 1 to {MAX_THREADS}, got {threads!r}")
    memory_limit = check_memory_limit(memory_limit)
    if engine is not None:
        recipe = dataclasses.replace(recipe, engine=engine)
    if recipe.engine != "ray" and (address is not None or workers is not None):
        raise ConfigError("--address and --workers choose the Ray cluster; add --engine ray")
    if workers is not None and (type(workers) is not int or workers < 1):
        raise ConfigError(f"--workers must be a positive integer, got {workers!r}")
    if recipe.engine == "ray":
        require_ray()  # the install command, before any work
        engine_ray.check_recipe(recipe)
    out = Path(out)
    spill = out / "_state" / SPILL if temp_directory is None else check_temp_directory(temp_directory)
    if temp_directory is not None and _inside(spill, out):  # resume would delete it mid-run
        raise ConfigError(f"--temp-directory {spill}: inside --out; omit it to spill to {out}/_state/{SPILL}")
    shards = resolve_inputs(input_spec, recipe.columns)
    inside = next((s.path for s in shards if not is_url(s.path) and _inside(Path(s.path), out)), None)
    if inside:  # a glob over a parent of --out: a rerun would curate the run's own output
        raise ConfigError(f"--input {input_spec}: includes {inside}, inside --out {out}")
    identity = json.loads(
        json.dumps(
            {"recipe": _identity(recipe), "inputs": [[s.path, s.size, s.modified] for s in shards]},
            default=str,
        )
    )
    plan = plan_out(out, identity, overwrite)
    local = LocalEngine(batch_rows, threads, input_spec, recipe.dropped, memory_limit, spill)
    ray, started = None, False
    try:
        for shard in shards:  # every schema problem before the folder is created or changed
            if shard.index not in plan.finished:
                local.check(shard, recipe.stages)
        if recipe.engine == "ray":  # a silent address is one line here, before the folder is touched
            started = not require_ray().is_initialized()
            ray = connect(address)
        with output_lock(out):
            plan = plan_out(out, identity, overwrite)  # again: the folder may have changed meanwhile
            if plan.action == "restart":
                clear_folder(out)
            # The identity first: a kill from here on leaves a folder the next run can resume.
            if plan.action != "resume" or identity != json.loads((out / "_state" / "run.json").read_text()):
                write_json(out / "_state" / "run.json", identity)
            if plan.action == "resume":
                clean_leftovers(out, plan.finished, complete=len(plan.finished) == len(shards))
            spill.mkdir(parents=True, exist_ok=True)  # DuckDB creates only the last folder of it
            try:
                cutoffs = pool_cutoffs(out, recipe, shards, local, identity)
                if ray is None:
                    return _run(recipe, shards, out, local, threads, is_url(input_spec), progress, cutoffs)
                job = engine_ray.ShardJob(
                    recipe,
                    tuple(shards),
                    str(out.absolute()),
                    input_spec,
                    batch_rows,
                    memory_limit,
                    str(spill.absolute()),
                    tuple((i, pool["cutoff"]) for i, pool in cutoffs.items()),
                    engine_ray.operator_modules(recipe),
                )
                return _run_ray(ray, job, workers, progress, cutoffs)
            finally:
                local.close()  # DuckDB deletes its spill files; the folder is ours to remove
                if temp_directory is None:
                    shutil.rmtree(spill, ignore_errors=True)
    finally:
        local.close()
        if started and ray is not None:
            ray.shutdown()


def _run_ray(
    ray: ModuleType,
    job: engine_ray.ShardJob,
    workers: int | None,
    progress: bool,
    cutoffs: dict[int, dict[str, Any]],
) -> dict[str, Any]:
    """:func:`_run` on Ray (engine_ray.run_shards): the same markers, parts and summary."""
    out, start = Path(job.out), time.perf_counter()
    finished = frozenset(
        s.index for s in job.shards if (out / "_state" / f"part-{s.index:05d}.json").exists()
    )
    results = engine_ray.run_shards(ray, job, finished, workers, progress)
    # Temp files of attempts a killed worker left (retried, finished by another): gone, as is
    # the key pass's state, which every run rebuilds.
    clean_leftovers(out, frozenset(s.index for s in job.shards), complete=False)
    return _finish(job.recipe, list(job.shards), out, results, time.perf_counter() - start, cutoffs)


def _run(
    recipe: Recipe,
    shards: list[InputShard],
    out: Path,
    engine: LocalEngine,
    threads: int | None,
    remote: bool,
    progress: bool,
    cutoffs: dict[int, dict[str, Any]],
) -> dict[str, Any]:
    """Curate every shard not yet finished into ``out`` (locked and prepared), then write the summary.

    ``cutoffs``: :func:`pool_cutoffs`, handed to their stages' rules and recorded in stats.json.
    """
    state = out / "_state"
    contexts = metadata_contexts(recipe.stages)
    for i, pool in cutoffs.items():
        contexts[i].state[CUTOFF] = pool["cutoff"]
    stateful = [i for i, s in enumerate(recipe.stages) if s.op.stateful]
    start = time.perf_counter()

    def one(shard: InputShard) -> dict[str, Any]:
        part = f"part-{shard.index:05d}"
        done = state / f"{part}.json"
        if done.exists():
            if all((state / f"keys-{i}-{part}.npy").exists() for i in stateful):
                restore_keys(contexts, stateful, state, part)
            else:  # finished on Ray, whose key pass keeps no per-shard keys: replay the shard for them
                with tempfile.TemporaryDirectory(dir=state) as scratch:
                    engine.run_shard(shard, recipe.stages, contexts, *(Path(scratch) / n for n in ("k", "d")))
                save_keys(contexts, stateful, state, part)
            return json.loads(done.read_text())
        kept, dropped = out / "kept" / f"{part}.parquet", out / "dropped" / f"{part}.parquet"
        result = engine.run_shard(shard, recipe.stages, contexts, kept, dropped)
        save_keys(contexts, stateful, state, part)  # keys first: a shard with a marker has its keys
        write_json(done, result)
        return result

    bar = tqdm(total=len(shards), desc=f"curate {recipe.name}", unit="shard", disable=not progress)
    workers = min(len(shards), threads or os.cpu_count() or 1)
    try:
        if workers > 1 and _independent(recipe) and not remote:
            # Shards share nothing here, and one file often has too few row groups to keep every
            # DuckDB thread busy: run as many shards at once as there are threads.
            with ThreadPoolExecutor(workers, initializer=engine.bind_thread) as pool:
                results = [*pool.map(lambda s: _ticked(bar, one(s)), shards)]
        else:
            results = [_ticked(bar, one(shard)) for shard in shards]
    finally:
        bar.close()
    return _finish(recipe, shards, out, results, time.perf_counter() - start, cutoffs)


def _finish(
    recipe: Recipe,
    shards: list[InputShard],
    out: Path,
    results: list[dict[str, Any]],
    seconds: float,
    cutoffs: dict[int, dict[str, Any]],
) -> dict[str, Any]:
    """Write the run's summary (stats.json, last) and resolved recipe; returns the summary."""
    stats = summarize(recipe, shards, results, seconds)
    for i, pool in cutoffs.items():
        stats["stages"][i]["top_fraction"] = pool
    write_text(out / "recipe.resolved.yaml", recipe.to_yaml())
    write_json(out / "stats.json", stats)  # last: its presence marks the run finished (download.py)
    return stats


def pool_cutoffs(
    out: Path, recipe: Recipe, shards: list[InputShard], engine: LocalEngine, identity: dict[str, Any]
) -> dict[int, dict[str, Any]]:
    """The run's top-fraction cutoffs (``LocalEngine.pool_cutoffs``), by stage index: read back
    from ``_state/cutoffs.json`` when they ranked these inputs (a resumed run), else computed over
    every input file and written there before any shard runs."""
    if not any(s.op.pool and s.op.pool(s.params, METADATA) for s in recipe.stages):
        return {}
    path = out / "_state" / CUTOFFS
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved["inputs"] == identity["inputs"]:
            return {int(i): pool for i, pool in saved["stages"].items()}
    cutoffs = engine.pool_cutoffs(shards, recipe.stages)
    write_json(path, {"inputs": identity["inputs"], "stages": cutoffs})
    return cutoffs


def _independent(recipe: Recipe) -> bool:
    """Every stage is SQL and none remembers rows: shards can run in any order, side by side."""
    return all(s.op.rule is not None for s in recipe.stages)


def _ticked(bar: tqdm, result: dict[str, Any]) -> dict[str, Any]:
    bar.update()
    return result


def summarize(
    recipe: Recipe, shards: list[InputShard], results: list[dict[str, Any]], seconds: float
) -> dict[str, Any]:
    """stats.json's content: the shards' tallies (``Tally.to_dict``, any engine) added up."""
    total = Tally.empty(len(recipe.stages))
    for result in results:
        total.add(result)
    stages: list[dict[str, Any]] = []
    for stage, counts in zip(recipe.stages, total.stages, strict=True):
        stages.append(
            {
                "stage": stage.name,
                "params": stage.params,
                "rows_in": counts.rows_in,
                "rows_out": counts.rows_out,
                "dropped": dict(sorted(counts.dropped.items())),
                "seconds": round(counts.seconds, 4),
                **counts.extra,
                "pushed_down": counts.pushed_down,
            }
        )
    lang_in, lang_out = total.lang_in, total.lang_out
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
            "shard_seconds": round(total.seconds, 3),
            "duckdb_seconds": round(total.duckdb_seconds, 3),
        },
        "input": {
            "files": len(shards),
            "bytes": sum(s.size for s in shards),
            "fingerprint": fingerprint(shards),
        },
        "t2iscope": __version__,
        "git_commit": git_commit(),
    }
