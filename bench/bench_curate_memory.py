"""Peak memory of ``curate run`` against input size: 1M vs 8M rows in one file (issue 14).

Each input is one LAION-like parquet file (one shard: the engine's unit of work, so the whole
file passes through one query), generated with DuckDB in seconds and cached under
``runs/bench/curate_memory/``. For each size and ``--dropped`` mode the bench runs
``t2iscope curate run`` as the only child of a fresh Python process, which reports the child's
peak RSS (``getrusage(RUSAGE_CHILDREN).ru_maxrss``). The recipe's stages all run in DuckDB
(sizes, scores, the URL and caption checks), the path whose memory used to follow the input.
Flat means the 8M/1M ratio stays near 1; it prints the figures and ratios and asserts nothing.
CPU seconds (user + system) compare engines on a busy machine better than wall time does.

    .venv/bin/python bench/bench_curate_memory.py [--sizes 1000000 8000000] [--modes full keys none]
        [--memory-limit 1GB] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from peak_rss import measure

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "runs" / "bench" / "curate_memory"
RECIPE = """\
name: bench-memory
stages:
  - resolution: {min_side: 512}
  - watermark: {max_score: 0.5}
  - aesthetic: {min_score: 5.0}
  - unsafe: {max_score: 0.5}
"""
# LAION-like rows: ~90-character URLs over a few thousand hosts (some malformed), captions of
# varied length (a few empty), sizes and scores spread so every stage drops some rows.
ROWS_SQL = """
SELECT
    CASE WHEN i % 211 = 0 THEN 'not a url ' || i
         ELSE 'https://img' || (i % 7) || '.site' || (hash(i) % 4099) || '.com/images/'
              || md5(i::VARCHAR) || '/' || (i % 1000) || '.jpg' END AS URL,
    CASE WHEN i % 503 = 0 THEN NULL
         ELSE 'a photo of a ' || ['red', 'blue', 'green', 'tall', 'small'][1 + i % 5] || ' '
              || ['dog', 'cat', 'house', 'tree', 'car', 'mountain at dusk'][1 + i % 6]
              || repeat(' with details', (i % 9)::INTEGER) END AS TEXT,
    (128 + (hash(i * 3) % 1900))::BIGINT AS WIDTH,
    (128 + (hash(i * 5) % 1900))::BIGINT AS HEIGHT,
    ['en', 'de', 'fr', 'es', 'nolang'][1 + i % 5] AS LANGUAGE,
    (hash(i * 7) % 1000) / 1000.0 * 0.2 + 0.2 AS similarity,
    (hash(i * 11) % 1000) / 1000.0 AS pwatermark,
    (hash(i * 13) % 1000) / 1000.0 AS punsafe,
    3.0 + (hash(i * 17) % 1000) / 1000.0 * 5.0 AS AESTHETIC_SCORE,
    (hash(i * 19) // 2)::BIGINT AS hash
FROM range({rows}) t(i)
"""


def make_input(rows: int) -> Path:
    """One parquet file of ``rows`` LAION-like rows, written once and reused."""
    import duckdb

    path = DATA / f"laion-{rows}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        con.execute(f"COPY ({ROWS_SQL.format(rows=int(rows))}) TO $p (FORMAT parquet)", {"p": str(tmp)})
        con.close()
        tmp.rename(path)
    return path


def run_once(src: Path, mode: str, memory_limit: str | None, threads: int | None) -> dict[str, float]:
    """``curate run`` over ``src`` in a fresh measuring process: {seconds, cpu_seconds, peak_mb}."""
    recipe = DATA / "recipe.yaml"
    recipe.write_text(RECIPE)
    out = DATA / "out" / f"{src.stem}-{mode}"
    cmd = [str(Path(sys.executable).with_name("t2iscope")), "curate", "run", str(recipe)]
    cmd += ["--input", str(src), "--out", str(out), "--overwrite", "--dropped", mode]
    if memory_limit:
        cmd += ["--memory-limit", memory_limit]
    if threads:
        cmd += ["--threads", str(threads)]
    return measure(cmd)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 8_000_000])
    parser.add_argument("--modes", nargs="+", default=["full", "keys", "none"])
    parser.add_argument("--memory-limit", default=None, help="Passed to curate run (default: its own).")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    inputs = {rows: make_input(rows) for rows in args.sizes}
    base = min(args.sizes)
    for mode in args.modes:
        results = {rows: run_once(src, mode, args.memory_limit, args.threads) for rows, src in inputs.items()}
        for rows, r in results.items():
            ratio = r["peak_mb"] / results[base]["peak_mb"]
            print(
                f"--dropped {mode:<4} {rows:>10,} rows  {r['seconds']:6.1f}s wall "
                f"{r['cpu_seconds']:6.1f}s CPU  peak RSS {r['peak_mb']:6.0f} MB  "
                f"({ratio:.2f}x the {base:,}-row run)"
            )


if __name__ == "__main__":
    main()
