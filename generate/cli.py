"""`t2iscope generate ...` commands."""

from __future__ import annotations

import click


@click.group()
def generate() -> None:
    """Generate images with latent diffusion: single prompts, suites, training."""
