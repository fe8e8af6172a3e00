"""Prompt suites on Ray against the local run: images/s with 1 and 2 Ray workers, as ratios.

The same slice of a shipped suite (first ``--images`` images, ``--steps`` steps) on the embedded
model, into fresh folders: the local engine (this process, torch's default threads) and the Ray
engine with 1 and 2 CPU workers on one local Ray of ``--cpus`` CPUs (a worker's torch threads are
its CPU share). Each run is timed twice: the whole call (wall, model loads and Ray's actor start
included) and generation alone (from ``run.json``, which both engines write once the model is
loaded, to the end of the call). Rounds alternate engines so a busy machine slows all alike;
medians are reported, with the machine's load average so a shared machine is visible.

    .venv/bin/python bench/bench_suite_ray.py [--suite neutral] [--images 32] [--steps 15] \
        [--batch-size 8] [--rounds 2] [--cpus 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from t2iscope.generate.models import load_model
from t2iscope.generate.run_suite import RUN_JSON, run_suite
from t2iscope.generate.suite_ray import ModelSource, run_suite_ray
from t2iscope.generate.suites import load_suite
from t2iscope.paths import REPO_ROOT
from t2iscope.ray_runtime import connect


def _timed(run: Callable[[Path], object], out: Path) -> tuple[float, float]:
    """(wall seconds of the call, seconds from run.json, i.e. model loaded, to the end)."""
    shutil.rmtree(out, ignore_errors=True)
    start = time.time()
    run(out)
    end = time.time()
    return end - start, end - (out / RUN_JSON).stat().st_mtime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default="neutral", help="shipped suite (default neutral)")
    ap.add_argument("--images", type=int, default=32, help="first N images of the grid")
    ap.add_argument("--steps", type=int, default=15, help="sampling steps (neutral ships 15)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_suite_ray_"))
    data = yaml.safe_load((REPO_ROOT / "generate" / "suites" / f"{args.suite}.yaml").read_text("utf-8"))
    data.setdefault("defaults", {})["steps"] = args.steps
    (work / "suite.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    suite = load_suite(work / "suite.yaml")
    common = {"limit": args.images, "batch_size": args.batch_size}
    ray = connect(None, num_cpus=args.cpus)
    cpu = ModelSource(device="cpu")
    engines: dict[str, Callable[[Path], object]] = {
        "local": lambda out: run_suite(suite, out, lambda: load_model(None, device="cpu"), **common),
        "ray, 1 worker": lambda out: run_suite_ray(suite, out, cpu, workers=1, **common),
        "ray, 2 workers": lambda out: run_suite_ray(suite, out, cpu, workers=2, **common),
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in engines}
    for _ in range(args.rounds):
        for name, run in engines.items():
            times[name].append(_timed(run, work / "out"))
    ray.shutdown()
    shutil.rmtree(work, ignore_errors=True)

    n = args.images
    rate = {
        name: (n / statistics.median(w for w, _ in t), n / statistics.median(g for _, g in t))
        for name, t in times.items()
    }
    print(
        f"suite {args.suite}, first {n} images, {args.steps} steps, batch {args.batch_size}, embedded "
        f"model, CPU; local Ray of {args.cpus} CPUs; median of {args.rounds} rounds; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"{'engine':<16}{'wall img/s':>11}{'x local':>9}{'gen img/s':>11}{'x local':>9}")
    for name, (wall, gen) in rate.items():
        base_wall, base_gen = rate["local"]
        print(f"{name:<16}{wall:>11.2f}{wall / base_wall:>9.2f}{gen:>11.2f}{gen / base_gen:>9.2f}")
    one, two = rate["ray, 1 worker"][1], rate["ray, 2 workers"][1]
    print(f"scaling 1 -> 2 workers (generation): {two / one:.2f}x, efficiency {two / one / 2:.0%}")


if __name__ == "__main__":
    main()
