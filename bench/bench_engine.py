"""Local vs Ray engine on this machine: Ray's overhead, its 1 -> 2 worker scaling, model stages in images/s.

    .venv/bin/python bench/bench_engine.py [--rows 200000] [--shards 8] [--images 600]

1. ``curate run`` of the shipped recipes ``laion2b-en`` (caption SQL, then language ID and dedup
   in Python, so a key pass) and ``sd-improved-aesthetics`` (SQL stages, then dedup) over a
   synthetic world's metadata (``--rows`` rows in ``--shards`` parquet shards). Baseline, in the
   same run: the local engine (all cores). Then ``--engine ray`` on a local Ray of 2 CPUs with 1
   and with 2 workers. Ray is started once and warmed by one untimed run (workers import
   t2iscope), so its figures are per run, not per cluster start; the start is timed on its own.
   Printed: seconds, rows/s, Ray's overhead (ray 2 workers / local) and scaling efficiency
   (t(1 worker) / (2 x t(2 workers)); 1.0 is linear).
2. The post-download model stages (``aesthetic`` and ``watermark``, ``source: model``, the shipped
   models/) over ``--images`` images served by ``t2iscope world serve``: downloaded once, then
   only the post-download stages timed, local (in-process) and Ray (actor pool, 2 CPUs), in
   images/s.

Figures move with the machine's load (printed first): on shared cores, run it when quiet.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

RECIPES = ("laion2b-en", "sd-improved-aesthetics")
MODEL_RECIPE = {
    "name": "bench-scores",
    "stages": [],
    "post_download": [
        {"aesthetic": {"source": "model", "min_score": 4.0}},
        {"watermark": {"source": "model", "max_score": 0.5}},
    ],
}


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_runs(root: Path, rows: int, shards: int) -> None:
    from t2iscope.curate.recipe import load_recipe
    from t2iscope.curate.run import run_recipe
    from t2iscope.curate.world.make import make_world
    from t2iscope.ray_runtime import connect

    world = root / "world"
    make_world(world, rows, seed=0, images=False, shard_size=max(1, rows // shards), progress=False)
    started = _timed(lambda: connect(None, num_cpus=2))
    print(f"ray start (local, 2 CPUs): {started:.1f} s")
    print(f"{'recipe':<24} {'engine':<14} {'seconds':>8} {'rows/s':>10}")
    for name in RECIPES:
        recipe = load_recipe(name)

        def run(out: str, recipe: Any = recipe, **kw: Any) -> float:
            return _timed(
                lambda: run_recipe(recipe, str(world), root / out, overwrite=True, progress=False, **kw)
            )

        run("warm", engine="ray", workers=2)  # workers import t2iscope once per process
        local = run("local")
        one = run("ray1", engine="ray", workers=1)
        two = run("ray2", engine="ray", workers=2)
        for engine, seconds in (("local", local), ("ray 1 worker", one), ("ray 2 workers", two)):
            print(f"{name:<24} {engine:<14} {seconds:>8.2f} {rows / seconds:>10.0f}")
        print(
            f"{name:<24} overhead ray(2)/local = {two / local:.2f}x; "
            f"scaling efficiency 1->2 workers = {one / (2 * two):.2f}"
        )


def bench_model_stages(root: Path, images: int) -> None:
    from t2iscope.curate.download import DownloadOptions, download_run
    from t2iscope.curate.recipe import recipe_from_dict
    from t2iscope.curate.run import run_recipe
    from t2iscope.curate.world.make import make_world
    from t2iscope.curate.world.serve import serve_world

    world = root / "world-images"
    make_world(world, images, seed=1, images=True, shard_size=max(1, images // 4), progress=False)
    recipe = recipe_from_dict(MODEL_RECIPE, "bench-scores.yaml")
    run_recipe(recipe, str(world), root / "scored-run", progress=False)
    server = serve_world(world, host="127.0.0.1", port=0, timeout_seconds=0.5)
    try:
        options = DownloadOptions(timeout=1, threads=16, via=server.url, rows_per_shard=max(1, images // 8))
        out = root / "scored"
        summary = download_run(root / "scored-run", out, options, progress=False)
    finally:
        server.stop()
    n = summary["success"]
    print(f"model stages (aesthetic + watermark) on {n} downloaded images")
    for engine in ("local", "ray"):
        # What a kill after status.parquet leaves: a rerun does only the post-download stages.
        for sub in ("kept", "dropped", "_state/post"):
            shutil.rmtree(out / sub, ignore_errors=True)
        (out / "stats.json").unlink()
        seconds = _timed(
            lambda e=engine: download_run(root / "scored-run", out, options, progress=False, engine=e)
        )
        print(f"  {engine:<6} {seconds:7.2f} s  {n / seconds:8.1f} images/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--images", type=int, default=600)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        bench_runs(Path(tmp), args.rows, args.shards)
        bench_model_stages(Path(tmp), args.images)


if __name__ == "__main__":
    main()
