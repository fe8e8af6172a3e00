"""`t2iscope curate ...` commands."""

from __future__ import annotations

import click


@click.group()
def curate() -> None:
    """Filter, deduplicate and download LAION-style image-caption data."""
