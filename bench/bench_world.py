"""Benchmark: world generation scales linearly in time and stays flat in memory.

Each size runs `make_world` in a fresh process (so peak RSS is that run's own) and is compared with
a 100k-row metadata-only baseline measured in the same run. Expect cpu ratio ~= row ratio and
peak-memory ratio ~= 1 (streaming, shard by shard). A small image world shows render throughput.
CPU seconds sit beside wall seconds because the machine is shared: other people's load stretches
wall time, not CPU time.

    .venv/bin/python bench/bench_world.py            # 100k baseline, 300k, 1M (metadata only)
    .venv/bin/python bench/bench_world.py --quick    # 20k baseline, 60k
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

CHILD = """
import json, resource, sys, time
from t2iscope.curate.world.make import make_world
rows, images, out = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
start, cpu = time.perf_counter(), time.process_time()
make_world(out, rows, seed=0, images=images, shard_size=int(sys.argv[4]), progress=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
wall = time.perf_counter() - start
print(json.dumps({"seconds": wall, "cpu": time.process_time() - cpu, "peak_mib": peak}))
"""


def run(rows: int, images: bool, shard_size: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        args = [sys.executable, "-c", CHILD, str(rows), "1" if images else "0", f"{tmp}/w", str(shard_size)]
        proc = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    quick = "--quick" in sys.argv
    shard = 20_000 if quick else 100_000
    sizes = [shard, 3 * shard] if quick else [shard, 3 * shard, 10 * shard]
    base = run(sizes[0], images=False, shard_size=shard)
    header = ("rows", "wall s", "cpu s", "rows/cpu-s", "peak MiB", "cpu x", "rows x", "mem x")
    print("".join(f"{h:>11}" for h in header))
    for rows in sizes:
        r = base if rows == sizes[0] else run(rows, images=False, shard_size=shard)
        cells = (
            f"{rows:,}", f"{r['seconds']:.1f}", f"{r['cpu']:.1f}", f"{rows / r['cpu']:,.0f}",
            f"{r['peak_mib']:.0f}", f"{r['cpu'] / base['cpu']:.2f}", f"{rows / sizes[0]:.1f}",
            f"{r['peak_mib'] / base['peak_mib']:.2f}",
        )  # fmt: skip
        print("".join(f"{c:>11}" for c in cells))
    n_img = 500 if quick else 2000
    img = run(n_img, images=True, shard_size=shard)
    ratio = (n_img / img["cpu"]) / (sizes[0] / base["cpu"])
    print(
        f"images: {n_img} rows with PNGs in {img['seconds']:.1f} s wall, {img['cpu']:.1f} s cpu "
        f"({n_img / img['cpu']:,.0f} rows/cpu-s, {ratio:.3f}x the metadata-only rate)"
    )


if __name__ == "__main__":
    main()
