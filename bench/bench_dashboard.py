"""First paint of each dashboard page on a 1M-row world, against a naive pandas full load.

Builds (once, reused) a 1,000,000-row world without images and a curation run over it under
runs/bench-dashboard/, then times each page's first render through Streamlit's AppTest with an
empty query cache. The baseline, measured in the same run, is what a page would cost if it
loaded the table into pandas and aggregated there. Target: every page under 2 s.

Run: .venv/bin/python bench/bench_dashboard.py [--rows 1000000] [--out runs/bench-dashboard]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.testing.v1 import AppTest

from t2iscope import fileio

REPEATS = 3  # the machine is shared: a median of cold runs is steadier than one
APP = Path(__file__).resolve().parents[1] / "dashboards" / "app.py"
RECIPE = """\
name: dashboard-bench
description: Language and domain columns for the explorer, two filtering stages for the funnel.
stages:
  - language: {min_score: 0.0}
  - domain: {}
  - resolution: {min_side: 256}
  - aesthetic: {min_score: 4.5}
"""


def t2iscope(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "t2iscope.cli", *args], check=True)


def build(root: Path, rows: int) -> None:
    world, curated = root / "world", root / "curated"
    info = world / "world.json"
    if not info.is_file() or json.loads(info.read_text()).get("rows") != rows:
        t2iscope("world", "make", "--out", str(world), "--rows", str(rows), "--no-images", "--overwrite")
    if not (curated / "stats.json").is_file():
        fileio.write_text(root / "recipe.yaml", RECIPE)
        t2iscope("curate", "run", str(root / "recipe.yaml"), "--input", str(world), "--out", str(curated))


def first_paint(root: Path, page: str, dataset_index: int | None = None) -> float:
    """Seconds for the page's first render with a cold query cache (AppTest, same process)."""
    sys.argv = ["app.py", "--runs", str(root)]
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    st.cache_data.clear()
    start = time.perf_counter()
    at.switch_page(page).run()
    if dataset_index is not None:
        st.cache_data.clear()
        start = time.perf_counter()
        at.selectbox(key="dataset").select_index(dataset_index).run()
    elapsed = time.perf_counter() - start
    problems = [e.value for e in (*at.exception, *at.error)]
    if problems:
        raise SystemExit(f"{page}: {problems}")
    return elapsed


def pandas_explorer(folder: Path) -> float:
    """The baseline: load the kept rows into pandas, then the explorer's aggregates."""
    start = time.perf_counter()
    df = pd.read_parquet(folder)
    lang = "lang" if "lang" in df else "LANGUAGE"
    df[lang].value_counts()
    np.histogram(df["AESTHETIC_SCORE"].dropna(), bins=30)
    if "domain" in df:
        df["domain"].value_counts().head(25)
        df["domain"].value_counts(normalize=True).cumsum()
    df.sample(min(24, len(df)), random_state=0)
    return time.perf_counter() - start


def pandas_world(world: Path) -> float:
    start = time.perf_counter()
    meta = pd.read_parquet(world / "metadata")
    truth = pd.read_parquet(world / "truth", columns=["hash", "domain", "host"])
    df = meta.merge(truth, on="hash", how="left")
    df["LANGUAGE"].value_counts()
    np.histogram(df["AESTHETIC_SCORE"].dropna(), bins=30)
    df["domain"].value_counts(normalize=True).cumsum()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-dashboard"))
    args = parser.parse_args()
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    build(args.out, args.rows)
    kept = pd.read_parquet(args.out / "curated" / "kept", columns=["hash"])
    print(f"world: {args.rows:,} rows; curated: {len(kept):,} kept rows")
    base_kept = statistics.median(pandas_explorer(args.out / "curated" / "kept") for _ in range(REPEATS))
    base_world = statistics.median(pandas_world(args.out / "world") for _ in range(REPEATS))
    cases = [
        ("overview", "views/overview.py", None, None),
        ("explorer (curation run)", "views/explorer.py", None, base_kept),
        ("explorer (world, joined)", "views/explorer.py", 1, base_world),
        ("funnel", "views/funnel.py", None, None),
    ]
    print(f"median of {REPEATS} cold first paints; target < 2 s")
    print(f"{'page':<28}{'first paint s':>14}{'pandas s':>10}{'ratio':>8}")
    for name, page, index, baseline in cases:
        secs = statistics.median(first_paint(args.out, page, index) for _ in range(REPEATS))
        ratio = f"{baseline / secs:7.1f}x" if baseline else "      -"
        base = f"{baseline:10.2f}" if baseline else "         -"
        print(f"{name:<28}{secs:14.2f}{base}{ratio}  {'ok' if secs < 2 else 'SLOW'}")


if __name__ == "__main__":
    main()
