"""`t2iscope world ...` commands."""

from __future__ import annotations

import click


@click.group()
def world() -> None:
    """Make and serve the synthetic LAION-style world (the embedded default's data)."""
