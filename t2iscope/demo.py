"""`make demo`: the whole loop on the embedded default, small enough for a laptop CPU.

world -> curate (metadata filters) -> serve + download with img2dataset (post-download filters)
-> generate the shipped suites with the embedded Stable Diffusion -> audits -> HTML report,
then prints the dashboard command. Every step is an ordinary CLI call a user can run by hand.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

from t2iscope.cli import main as cli
from t2iscope.curate.world import serve_world

RUNS = Path("runs/demo")


def step(title: str, *argv: str) -> None:
    print(f"\n==> {title}\n    $ t2iscope {shlex.join(argv)}", flush=True)
    start = time.perf_counter()
    code = cli(list(argv))
    if code != 0:
        print(f"demo: step failed with exit code {code}: {title}", file=sys.stderr)
        sys.exit(code)
    print(f"    done in {time.perf_counter() - start:.1f}s", flush=True)


def run() -> None:
    RUNS.mkdir(parents=True, exist_ok=True)
    world = RUNS / "world"
    step(
        "Make a synthetic LAION-style world (metadata, truth, images)",
        "world",
        "make",
        "--out",
        str(world),
        "--rows",
        "3000",
        "--seed",
        "0",
        "--overwrite",
    )
    step(
        "Curate it with SD v1.2's improved-aesthetics recipe",
        "curate",
        "run",
        "sd-improved-aesthetics",
        "--input",
        str(world / "metadata"),
        "--out",
        str(RUNS / "curated"),
        "--overwrite",
    )
    with serve_world(world, timeout_seconds=3) as server:
        print(f"\n    (serving the world's images with its failure modes at {server.url})")
        step(
            "Download the kept rows with img2dataset, then run the post-download stages",
            "curate",
            "download",
            str(RUNS / "curated"),
            "--out",
            str(RUNS / "shards"),
            "--via",
            server.url,
            "--timeout",
            "2",
            "--image-size",
            "64",
        )
        step(
            "Retry only the rows that failed",
            "curate",
            "download",
            str(RUNS / "curated"),
            "--out",
            str(RUNS / "shards"),
            "--via",
            server.url,
            "--timeout",
            "2",
            "--image-size",
            "64",
            "--retry-failed",
        )
    for suite in ("multilingual", "neutral", "limbs"):
        step(
            f"Generate the shipped '{suite}' suite with the embedded Stable Diffusion",
            "generate",
            "suite",
            suite,
            "--out",
            str(RUNS / "gen" / suite),
        )
    step(
        "Audit data and generations (domains, language mix and bias, culture, limbs, watermark)",
        "evaluate",
        "run",
        "evaluate/audits/demo.yaml",
        "--out",
        str(RUNS / "audit"),
    )
    step("Write the self-contained HTML report", "evaluate", "report", str(RUNS / "audit"))
    print(
        f"\nDemo outputs are under {RUNS}/:\n"
        f"  world        {world}\n"
        f"  curated      {RUNS / 'curated'}  (stats.json, kept/, dropped/)\n"
        f"  downloaded   {RUNS / 'shards'}   (status.parquet, img2dataset shards)\n"
        f"  generations  {RUNS / 'gen'}      (manifest.parquet + PNGs per suite)\n"
        f"  audit        {RUNS / 'audit'}    (tidy parquet per audit)\n"
        f"  report       {RUNS / 'audit' / 'report.html'}\n"
        f"\nExplore it all in the dashboards:\n  .venv/bin/t2iscope dashboard {RUNS}"
    )


if __name__ == "__main__":
    run()
