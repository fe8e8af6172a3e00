"""`make demo`: the whole loop on the embedded default, small enough for a laptop CPU.

world -> curate (metadata filters) -> serve + download with img2dataset (post-download filters)
-> generate the shipped suites with the embedded Stable Diffusion -> audits -> HTML report,
then prints the dashboard command. Every step is an ordinary CLI call a user can run by hand.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import time
from pathlib import Path

from t2iscope.cli import main as cli
from t2iscope.curate.world import serve_world

RUNS = Path("runs/demo")


def step(title: str, command: str) -> None:
    """Run one `t2iscope` command line, echoing it; stop the demo on failure."""
    print(f"\n==> {title}\n    $ t2iscope {command}", flush=True)
    start = time.perf_counter()
    code = cli(shlex.split(command))
    if code != 0:
        print(f"demo: step failed with exit code {code}: {title}", file=sys.stderr)
        sys.exit(code)
    print(f"    done in {time.perf_counter() - start:.1f}s", flush=True)


def run() -> None:
    RUNS.mkdir(parents=True, exist_ok=True)
    world, curated, shards = RUNS / "world", RUNS / "curated", RUNS / "shards"
    step(
        "Make a synthetic LAION-style world (metadata, truth, images)",
        f"world make --out {world} --rows 3000 --seed 0 --overwrite",
    )
    step(
        "Curate it with SD v1.2's improved-aesthetics recipe",
        f"curate run sd-improved-aesthetics --input {world} --out {curated} --overwrite",
    )
    shutil.rmtree(shards, ignore_errors=True)  # the world and run were remade: download afresh
    with serve_world(world, timeout_seconds=3) as server:
        print(f"\n    (serving the world's images with its failure modes at {server.url})")
        download = f"curate download {curated} --out {shards} --via {server.url} --timeout 2 --image-size 64"
        step("Download the kept rows with img2dataset, then run the post-download stages", download)
        step("Retry only the rows that failed", f"{download} --retry-failed")
    # multilingual: the first 24 concepts (6 colors x ball/cup/car/house) in all 7 languages;
    # cfg-steps: its whole cfg x steps x sampler grid, the quality audit's trade-off plot.
    for suite, limit in (("multilingual", 168), ("neutral", 64), ("limbs", 48), ("cfg-steps", 120)):
        step(
            f"Generate the shipped '{suite}' suite with the embedded Stable Diffusion",
            f"generate suite {suite} --out {RUNS / 'gen' / suite} --limit {limit}",
        )
    step(
        "Audit data and generations (domains, language mix and bias, culture, limbs, quality, watermark)",
        f"evaluate run evaluate/audits/demo.yaml --out {RUNS / 'audit'} --overwrite",
    )
    step("Write the self-contained HTML report", f"evaluate report {RUNS / 'audit'}")
    print(
        f"\nDemo outputs are under {RUNS}/:\n"
        f"  world        {world}\n"
        f"  curated      {curated}  (stats.json, kept/, dropped/)\n"
        f"  downloaded   {shards}   (status.parquet, img2dataset shards)\n"
        f"  generations  {RUNS / 'gen'}      (manifest.parquet + PNGs per suite)\n"
        f"  report       {RUNS / 'audit' / 'report.html'}\n"
        f"\nExplore it all in the dashboards:\n  .venv/bin/t2iscope dashboard {RUNS}"
    )


if __name__ == "__main__":
    run()
