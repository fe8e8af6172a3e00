"""`t2iscope dashboard DIR`: start the Streamlit app over the runs under DIR."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import click

from t2iscope.errors import ConfigError

APP = Path(__file__).with_name("app.py")


def streamlit_command(runs_dir: str | Path, port: int = 8501, host: str = "127.0.0.1") -> list[str]:
    """The ``streamlit run`` command line that serves the dashboards over ``runs_dir``."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--",
        "--runs",
        str(Path(runs_dir).resolve()),
    ]


@click.command(
    epilog=(
        "Example:\n\n\b\n"
        "  t2iscope world make --out runs/world --rows 2000 --seed 0\n"
        "  t2iscope dashboard runs/            # then open http://127.0.0.1:8501\n"
        "  t2iscope dashboard runs/ --port 8600 --print-command"
    )
)
@click.argument("runs_dir", type=click.Path(file_okay=False))
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8501, show_default=True, help="Port to serve on."
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; use 0.0.0.0 only to share the dashboards on your network.",
)
@click.option("--print-command", is_flag=True, help="Print the streamlit command instead of running it.")
def dashboard(runs_dir: str, port: int, host: str, print_command: bool) -> None:
    """Open the Streamlit dashboards over the runs under RUNS_DIR.

    Runs are found by their marker files: world.json (world), stats.json (curation run),
    manifest.parquet (generation), tidy *.parquet tables or report.html (audit).
    """
    if not Path(runs_dir).is_dir():
        raise ConfigError(
            f"{runs_dir}: no such folder; create runs first, e.g. t2iscope world make --out {runs_dir}/world"
        )
    cmd = streamlit_command(runs_dir, port, host)
    if print_command:
        click.echo(shlex.join(cmd))
        return
    click.echo(f"t2iscope dashboards on http://{host}:{port} (Ctrl+C stops)", err=True)
    code = subprocess.call(cmd)
    if code:
        raise click.exceptions.Exit(code)
