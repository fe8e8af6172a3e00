"""`t2iscope dashboard DIR`."""

from __future__ import annotations

import click


@click.command()
@click.argument("runs_dir", type=click.Path(file_okay=False))
def dashboard(runs_dir: str) -> None:
    """Open the Streamlit dashboards over the runs under RUNS_DIR."""
