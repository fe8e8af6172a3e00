"""Benchmark: world generation scales linearly in time and stays flat in memory.

Each size runs `make_world` in a fresh process (so peak RSS is that run's own) and is compared with
a 100k-row metadata-only baseline measured in the same run. Expect time ratio ~= row ratio and
peak-memory ratio ~= 1 (streaming, shard by shard). A small image world shows render throughput.

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
start = time.perf_counter()
make_world(out, rows, seed=0, images=images, shard_size=int(sys.argv[4]), progress=False)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
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
    print(
        f"{'rows':>9} {'seconds':>8} {'rows/s':>9} {'peak MiB':>9} {'time x':>7} {'rows x':>7} {'mem x':>6}"
    )
    for rows in sizes:
        r = base if rows == sizes[0] else run(rows, images=False, shard_size=shard)
        time_x, mem_x = r["seconds"] / base["seconds"], r["peak_mib"] / base["peak_mib"]
        print(
            f"{rows:>9,} {r['seconds']:>8.1f} {rows / r['seconds']:>9,.0f} {r['peak_mib']:>9.0f} "
            f"{time_x:>7.2f} {rows / sizes[0]:>7.1f} {mem_x:>6.2f}"
        )
    n_img = 500 if quick else 2000
    img = run(n_img, images=True, shard_size=shard)
    meta_rate = sizes[0] / base["seconds"]
    print(
        f"images: {n_img} rows with PNGs in {img['seconds']:.1f} s = {n_img / img['seconds']:,.0f} rows/s "
        f"({n_img / img['seconds'] / meta_rate:.3f}x the metadata-only rate)"
    )


if __name__ == "__main__":
    main()
