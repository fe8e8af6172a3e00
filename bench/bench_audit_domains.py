"""Domain audit on 10M URL rows: seconds and peak memory, against naive pandas + tldextract per row.

    .venv/bin/python bench/bench_audit_domains.py [--rows 10000000] [--baseline-rows 200000]

The rows are synthetic LAION-like URLs (skewed over ~200k hosts under ~60k registrable domains,
several public suffixes), written once to a temp folder. Ours: DuckDB host extraction + one
tldextract lookup per distinct host. Baseline: pandas reading the URLs and calling tldextract on
every row, timed on --baseline-rows and scaled to the full row count (its rate is flat in n).
Each side runs in a fresh subprocess so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

OURS = """
import json, resource, sys, time
from t2iscope.evaluate.audits.domains import distribution_rows, host_counts, level_counts
from t2iscope.evaluate.parquet_inputs import parquet_files
t = time.perf_counter()
counts = level_counts(host_counts(parquet_files(sys.argv[1])))
rows = [r for level, c in counts.items() for r in distribution_rows(c, "bench", level, 20)]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"s": time.perf_counter() - t, "rss_mb": rss,
                  "domains": len(counts["domain"]), "hosts": len(counts["host"])}))
"""

BASELINE = """
import json, resource, sys, time
import pandas as pd, tldextract
from urllib.parse import urlsplit
ext = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
t = time.perf_counter()
df = pd.read_parquet(sys.argv[1], columns=["URL"]).head(int(sys.argv[2]))
df["host"] = [urlsplit(u).hostname or "" for u in df["URL"]]
df["domain"] = [ext(h).top_domain_under_public_suffix for h in df["host"]]
df.groupby("domain").size().sort_values(ascending=False)
df.groupby("host").size().sort_values(ascending=False)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"s": time.perf_counter() - t, "rss_mb": rss,
                  "rows": len(df)}))
"""


def make_rows(folder: Path, rows: int) -> None:
    duckdb.sql("SELECT setseed(0.42)")
    duckdb.sql(
        f"""COPY (
          SELECT 'https://' || ['www.', 'cdn.', 'img.', 'i', ''][1 + (h % 5)] || 'site' || (h // 3)
                 || ['.com', '.co.uk', '.de', '.com.au', '.org', '.blogspot.com'][1 + (h % 6)]
                 || '/p/' || i || '.jpg' AS URL
          FROM (SELECT i, CAST(floor(pow(random(), 3) * 200000) AS BIGINT) AS h FROM range({rows}) t(i))
        ) TO '{folder}' (FORMAT parquet, PER_THREAD_OUTPUT true)"""
    )


def run(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--baseline-rows", type=int, default=200_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "urls"
        t = time.perf_counter()
        make_rows(data, args.rows)
        print(f"made {args.rows:,} URL rows in {time.perf_counter() - t:.1f}s")
        ours = run(OURS, str(data))
        base = run(BASELINE, str(data), str(args.baseline_rows))
    scaled = base["s"] * args.rows / base["rows"]
    print(
        f"ours:     {ours['s']:.1f}s for {args.rows:,} rows ({ours['hosts']:,} hosts, "
        f"{ours['domains']:,} domains), peak RSS {ours['rss_mb']:.0f} MB"
    )
    print(
        f"baseline: {base['s']:.1f}s for {base['rows']:,} rows -> {scaled:.0f}s scaled to {args.rows:,}, "
        f"peak RSS {base['rss_mb']:.0f} MB at {base['rows']:,} rows"
    )
    print(f"speed-up: {scaled / ours['s']:.1f}x")


if __name__ == "__main__":
    main()
