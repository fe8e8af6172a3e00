"""`t2iscope evaluate ...` commands."""

from __future__ import annotations

import click


@click.group()
def evaluate() -> None:
    """Run audits over curated data and generations; write reports."""
