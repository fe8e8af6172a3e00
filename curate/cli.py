"""`t2iscope curate ...` commands: thin wrappers over run.py and download.py."""

from __future__ import annotations

import dataclasses
import typing

import click

from t2iscope.curate.limits import MAX_BATCH_ROWS, MAX_THREADS
from t2iscope.listing import Table, add_list_command, parameters, summary


@click.group(
    epilog=(
        "Example:\n\n\b\n"
        "  t2iscope curate list\n"
        "  t2iscope curate run sd-improved-aesthetics --input runs/world --out runs/curated\n"
        "  t2iscope curate download runs/curated --out runs/shards --via http://127.0.0.1:8765"
    )
)
def curate() -> None:
    """Filter, deduplicate and download LAION-style image-caption data."""


@curate.command(
    "run",
    epilog=(
        "Example:\n\n\b\n"
        "  t2iscope world make --out runs/world --rows 2000 --seed 0\n"
        "  t2iscope curate run sd-improved-aesthetics --input runs/world --out runs/curated\n"
        "  t2iscope curate run my-recipe.yaml --input 'laion/*.parquet' --out runs/mine\n"
        "  t2iscope curate run laion2b-en --input 'laion/*.parquet' --out runs/lean --dropped keys\n"
        "  t2iscope curate run laion2b-en --input runs/world --out runs/on-ray --engine ray\n"
        "  t2iscope curate run laion2b-en --input /nfs/laion --out /nfs/run --engine ray --address h:6379\n\n"
        "Built-in recipes: laion2b-en, sd-improved-aesthetics, laion-high-resolution, datacomp-basic, "
        "datacomp-clip-score. --engine ray writes the same files as local (docs/scale.md); it needs "
        "pip install 't2iscope[ray]'."
    ),
)
@click.argument("recipe")
@click.option(
    "--input",
    "input_spec",
    required=True,
    help="Input file, folder, glob or fsspec URL: parquet, or txt (one URL per line), csv, tsv, json "
    "(an array of objects, or JSON lines), jsonl, each optionally .gz.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run folder instead of resuming it.")
@click.option(
    "--batch-rows",
    type=click.IntRange(1, MAX_BATCH_ROWS),
    default=131_072,
    show_default=True,
    help="Rows per Arrow batch (memory bound).",
)
@click.option(
    "--threads",
    type=click.IntRange(1, MAX_THREADS),
    default=None,
    help=f"DuckDB threads, 1..{MAX_THREADS} (default: all cores).",
)
@click.option(
    "--memory-limit",
    default="50%",  # readers.DEFAULT_MEMORY_LIMIT, kept import-free
    show_default=True,
    help="DuckDB's memory limit: 4GB, 512MiB or a share of RAM such as 50% (DuckDB's own default is "
    "80%; the run also needs memory outside DuckDB). Past it DuckDB spills to --temp-directory.",
)
@click.option(
    "--temp-directory",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for DuckDB's spill files (default: OUT/_state/spill, removed when the run ends).",
)
@click.option(
    "--dropped",
    "dropped",
    type=click.Choice(["full", "keys", "none"]),  # recipe.Dropped, kept import-free
    default=None,
    help="What dropped/ holds, overriding the recipe's 'dropped' (default full): every column, "
    "keys (hash, LANGUAGE, lang, domain + stage, reason) or none. stats.json is exact either way.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),  # recipe.Engine, kept import-free
    default=None,
    help="Where to run, overriding the recipe's 'engine' (default local): this machine, or Ray "
    "(the same outputs; a local Ray is started unless --address names a cluster).",
)
@click.option(
    "--address",
    default=None,
    help="With --engine ray: the cluster to join (host:port of the head, ray://host:port, or auto). "
    "Input and --out must be on storage every node mounts at the same path.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 100_000),
    default=None,
    help="With --engine ray: shards curated at once (default: the cluster's CPUs).",
)
def run_cmd(
    recipe: str,
    input_spec: str,
    out: str,
    overwrite: bool,
    batch_rows: int,
    threads: int | None,
    memory_limit: str,
    temp_directory: str | None,
    dropped: str | None,
    engine: str | None,
    address: str | None,
    workers: int | None,
) -> None:
    """Run RECIPE (a built-in name or a YAML file) over --input into --out.

    Writes kept/ and dropped/ parquet shards (dropped rows carry stage and reason), stats.json
    and recipe.resolved.yaml. Re-running an interrupted or failed run resumes from its finished
    shards, under either engine; one run at a time may write an --out.
    """
    from t2iscope.curate.recipe import load_recipe
    from t2iscope.curate.run import run_recipe

    resolved = load_recipe(recipe)
    if dropped is not None:
        resolved = dataclasses.replace(resolved, dropped=dropped)
    stats = run_recipe(
        resolved,
        input_spec,
        out,
        overwrite=overwrite,
        batch_rows=batch_rows,
        threads=threads,
        memory_limit=memory_limit,
        temp_directory=temp_directory,
        engine=engine,  # type: ignore[arg-type]  # click.Choice checked it
        address=address,
        workers=workers,
    )
    click.echo(format_stats(stats))
    written = "" if resolved.dropped == "none" else f" {out}/dropped ({resolved.dropped}),"
    click.echo(f"wrote {out}/kept,{written} {out}/stats.json")


def format_stats(stats: dict[str, typing.Any]) -> str:
    """``curate run``'s summary: rows in and kept, then one line per stage (:func:`stage_lines`)."""
    lines = [f"{stats['recipe']}: {stats['rows_in']} rows in, {stats['rows_out']} kept"]
    return "\n".join(lines + stage_lines(stats["stages"]))


def stage_lines(stages: list[dict[str, typing.Any]]) -> list[str]:
    """One line per stage of a stats.json ``stages`` list: rows in -> out, its top three reasons."""
    lines = []
    for s in stages:
        top = ", ".join(f"{r} {n}" for r, n in sorted(s["dropped"].items(), key=lambda kv: -kv[1])[:3])
        lines.append(f"  {s['stage']:<12} {s['rows_in']:>10} -> {s['rows_out']:<10} {top}")
    return lines


def stages_table() -> Table:
    """Every curation stage: where it can run, its parameters with defaults, what it does."""
    from t2iscope.curate.operators import OPERATORS, load_all

    load_all()
    rows = [
        (op.name, "/".join(sorted(op.phases)), parameters(op.fn, data_args=2), summary(op.fn))
        for op in map(OPERATORS.get, OPERATORS)
    ]
    return ("stage", "phases", "parameters", "summary"), rows


def recipes_table() -> Table:
    """Every built-in recipe: its stages in order, before and after download, and its description."""
    from t2iscope.curate.recipe import builtin_names, load_recipe

    rows = []
    for recipe in map(load_recipe, builtin_names()):
        stages, post = (", ".join(s.name for s in group) for group in (recipe.stages, recipe.post_download))
        rows.append((recipe.name, stages, post, " ".join(recipe.description.split())))
    return ("recipe", "stages", "post_download", "description"), rows


add_list_command(curate, "curate", {"stages": stages_table, "recipes": recipes_table}, aliases=("stages",))


@curate.command(
    "download",
    epilog=(
        "Example (the world served locally with its failure modes):\n\n\b\n"
        "  t2iscope world serve runs/world --port 8765 &\n"
        "  t2iscope curate download runs/curated --out runs/shards --via http://127.0.0.1:8765\n"
        "  t2iscope curate download runs/curated --out runs/shards --via http://127.0.0.1:8765 "
        "--retry-failed\n"
        "  t2iscope curate download runs/curated --out runs/on-ray --via http://127.0.0.1:8765 --engine ray"
    ),
)
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Folder for image shards + status."
)
@click.option(
    "--via",
    default=None,
    help="Fetch through this http(s) base URL: https://h/p -> VIA/h/p (URL column kept).",
)
@click.option(
    "--retry-failed", is_flag=True, help="Re-download only the rows that failed last time, then merge."
)
# Choices: download.OutputFormat and download.ResizeMode, kept import-free (a test compares them).
@click.option(
    "--output-format", type=click.Choice(["webdataset", "parquet"]), default="webdataset", show_default=True
)
@click.option("--image-size", default=256, show_default=True, help="img2dataset image_size, px (1..4096).")
@click.option(
    "--resize-mode",
    type=click.Choice(["no", "keep_ratio", "center_crop", "border", "keep_ratio_largest"]),
    default="keep_ratio",
    show_default=True,
    help="img2dataset resize_mode.",
)
@click.option("--processes", default=1, show_default=True, help="img2dataset processes_count (1..256).")
@click.option(
    "--threads", default=16, show_default=True, help="img2dataset thread_count per process (1..1024)."
)
@click.option("--timeout", default=5.0, show_default=True, help="Seconds per request (0 < t <= 600).")
@click.option(
    "--rows-per-shard", default=10_000, show_default=True, help="Rows per img2dataset shard (1..1000000)."
)
@click.option(
    "--batch-rows", default=512, show_default=True, help="Images per post-download batch (memory bound)."
)
@click.option(
    "--recipe", "recipe_name", default=None, help="Recipe for post_download stages (default: the run's own)."
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),  # download.Engine, kept import-free
    default="local",
    show_default=True,
    help="ray: img2dataset's Ray distributor (one task per shard) and the model stages as Ray actor "
    "pools; the same files as local. Needs pip install 't2iscope[ray]'.",
)
@click.option(
    "--address",
    default=None,
    help="With --engine ray: the cluster to join (host:port, ray://host:port or auto; default: "
    "start a local Ray). --out must be on storage every node mounts at the same path.",
)
def download_cmd(
    run_dir: str,
    out: str,
    via: str | None,
    retry_failed: bool,
    output_format: str,
    image_size: int,
    resize_mode: str,
    processes: int,
    threads: int,
    timeout: float,
    rows_per_shard: int,
    batch_rows: int,
    recipe_name: str | None,
    engine: str,
    address: str | None,
) -> None:
    """Download the kept rows of RUN_DIR with img2dataset, then run the recipe's post_download stages.

    Writes img2dataset's shards under OUT/images, OUT/status.parquet (one row per URL: status,
    error) and OUT/kept, OUT/dropped, OUT/stats.json for the post-download stages. Rerunning an
    interrupted download finishes it; a complete one (stats.json) needs --retry-failed.
    """
    from t2iscope.curate.download import DownloadOptions, check_options, download_run

    options = DownloadOptions(
        output_format=output_format,  # type: ignore[arg-type]  # click.Choice checked it
        image_size=image_size,
        resize_mode=resize_mode,  # type: ignore[arg-type]
        processes=processes,
        threads=threads,
        timeout=timeout,
        via=via,
        rows_per_shard=rows_per_shard,
        batch_rows=batch_rows,
    )
    check_options(options, flags=True)  # one line naming the flag, before --out is created
    summary = download_run(
        run_dir,
        out,
        options,
        retry_failed=retry_failed,
        recipe_name=recipe_name,
        engine=engine,  # type: ignore[arg-type]  # click.Choice checked it
        address=address,
    )
    click.echo(
        f"downloaded {summary['success']}/{summary['rows']} ({summary['failed']} failed); "
        f"{summary['kept']} kept after post-download stages -> {out}"
    )
    for line in stage_lines(summary["post_download"]["stages"]):
        click.echo(line)
