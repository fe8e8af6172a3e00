"""`t2iscope world ...` commands: thin wrappers over make_world, serve_world and contact_sheet."""

from __future__ import annotations

import click

from t2iscope.curate.limits import MAX_WORLD_ROWS


@click.group(
    epilog=(
        "Example:\n\n\b\n"
        "  t2iscope world make --out runs/world --rows 2000 --seed 0\n"
        "  t2iscope world sheet runs/world --out sheet.png\n"
        "  t2iscope world serve runs/world --port 8765"
    )
)
def world() -> None:
    """Make and serve the synthetic LAION-style world (the embedded default's data)."""


@world.command(
    epilog=(
        "Example (2,000 rows with images, then 1M rows of metadata only):\n\n"
        "\b\n"
        "  t2iscope world make --out runs/world --rows 2000 --seed 0\n"
        "  t2iscope world make --out runs/world-1m --rows 1000000 --no-images"
    )
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="World folder to create.")
@click.option(
    "--rows",
    required=True,
    type=click.IntRange(1, MAX_WORLD_ROWS),
    help=f"Number of image-caption rows (1..{MAX_WORLD_ROWS:,}).",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same bytes.")
@click.option("--images/--no-images", default=True, show_default=True, help="Render the 64x64 PNGs too.")
@click.option("--shard-size", default=100_000, show_default=True, type=int, help="Rows per parquet shard.")
@click.option("--overwrite", is_flag=True, help="Replace an existing world in --out.")
def make(out: str, rows: int, seed: int, images: bool, shard_size: int, overwrite: bool) -> None:
    """Write LAION-style metadata shards, the truth table and (optionally) the images.

    OUT gets metadata/part-*.parquet (LAION columns), truth/part-*.parquet (keyed by hash),
    images/NNNNN/<hash>.png and world.json with the realised language and domain mix.
    """
    from t2iscope.curate.world.make import make_world

    info = make_world(out, rows, seed=seed, images=images, shard_size=shard_size, overwrite=overwrite)
    mix = info["realised"]
    click.echo(
        f"wrote {rows} rows in {info['shards']} shard(s) to {out}: "
        f"English {mix['LANGUAGE'].get('en', 0):.1%}, top domain {mix['domains']['top20'][0]['domain']} "
        f"{mix['domains']['top1_share']:.1%}, top 100 domains {mix['domains']['top100_share']:.1%}"
    )


@world.command(
    epilog=(
        "Example: serve a world (made with --seed 0), then fetch one of its URLs through it:\n\n"
        "\b\n"
        "  t2iscope world serve runs/world --port 8765 &\n"
        "  curl -sO http://127.0.0.1:8765/i2.pinimg.com/736x/f5/be/c7/6e789e6aa1b965f4.jpg\n\n"
        "Rewrite a URL by dropping 'https://' and prefixing the server's address.\n"
        "With no --fail-* option each row fails as its truth says (http_failure); any --fail-*\n"
        "option replaces that with a fresh per-URL draw at exactly the given rates (others 0):\n\n"
        "\b\n"
        "  t2iscope world serve runs/world --fail-404 0.2 --fail-timeout 0.05 --timeout-seconds 3"
    )
)
@click.argument("world_dir", metavar="WORLD", type=click.Path(exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one)."
)
@click.option("--fail-404", type=float, help="Share of URLs answered 404.")
@click.option("--fail-timeout", type=float, help="Share of URLs that stall for --timeout-seconds.")
@click.option("--fail-truncated", type=float, help="Share of URLs whose body is cut in half.")
@click.option("--fail-html", type=float, help="Share of URLs answered with an HTML page.")
@click.option("--no-failures", is_flag=True, help="Serve every URL successfully.")
@click.option(
    "--timeout-seconds", default=20.0, show_default=True, type=float, help="Stall of 'timeout' URLs."
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the per-URL failure draw.")
@click.option(
    "--max-side", default=1024, show_default=True, type=int, help="Cap on served images' long side."
)
def serve(
    world_dir: str,
    host: str,
    port: int,
    fail_404: float | None,
    fail_timeout: float | None,
    fail_truncated: float | None,
    fail_html: float | None,
    no_failures: bool,
    timeout_seconds: float,
    seed: int,
    max_side: int,
) -> None:
    """Serve WORLD's images over HTTP at /<host>/<path> of their URLs, with failure modes."""
    from t2iscope.curate.world.serve import WorldServer

    given = {"404": fail_404, "timeout": fail_timeout, "truncated": fail_truncated, "html": fail_html}
    rates = {k: v for k, v in given.items() if v is not None}
    if no_failures and rates:
        raise click.UsageError("--no-failures cannot be combined with --fail-* options")
    server = WorldServer(
        world_dir, host, port, {} if no_failures else (rates or None), timeout_seconds, seed, max_side
    )
    click.echo(f"serving {world_dir} at {server.url}/<host>/<path> (Ctrl-C stops)")
    try:
        server.serve_forever()
    finally:
        server.stopping.set()
        server.server_close()


@world.command(
    epilog="Example:\n\n\b\n  t2iscope world sheet runs/world --out docs/world_contact_sheet.png --count 48"
)
@click.argument("world_dir", metavar="WORLD", type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--count", default=48, show_default=True, type=int, help="Number of images (first rows).")
@click.option("--columns", default=8, show_default=True, type=int, help="Images per row of the sheet.")
def sheet(world_dir: str, out: str, count: int, columns: int) -> None:
    """Write a contact sheet: WORLD's first images, each labelled with its truth."""
    from t2iscope.curate.world.layout import read_table
    from t2iscope.curate.world.sheet import write_contact_sheet

    if count < 1 or columns < 1:
        raise click.UsageError("--count and --columns must be >= 1")
    write_contact_sheet(read_table(world_dir, "truth").slice(0, count).to_pylist(), out, columns)
    click.echo(f"wrote {out}")
