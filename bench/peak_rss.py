"""Peak memory of one command, for the memory benchmarks (run by hand, never by tests).

``measure(cmd)`` starts a fresh Python process whose only child is ``cmd``, so
``RUSAGE_CHILDREN``'s ``ru_maxrss`` is that command's peak RSS alone, not the benchmark's.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def measure(cmd: list[str]) -> dict:
    """Run ``cmd`` in a fresh measuring process: {seconds, cpu_seconds, peak_mb, out} (wall s, MB)."""
    done = subprocess.run(
        [sys.executable, __file__, json.dumps(cmd)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def _measure_child(cmd: list[str]) -> None:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # ru_maxrss: kilobytes on Linux
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "peak_mb": usage.ru_maxrss / 1024,
                "out": done.stdout.strip(),
            }
        )
    )


if __name__ == "__main__":
    _measure_child(json.loads(sys.argv[1]))
