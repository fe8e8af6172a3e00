"""`t2iscope generate train ...`: retrain the embedded models, measure them, draw the contact sheet."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from t2iscope.generate.train.recipe import STAGES

_EXAMPLE = (
    "\b\n"
    "  t2iscope world make --out runs/world --rows 30000 --seed 0 --images\n"
    "  t2iscope world make --out runs/heldout --rows 2000 --seed 1 --images\n"
    "  t2iscope curate run models/curate-sd-train.yaml --input runs/world --out runs/curated\n"
    "  t2iscope generate train all --world runs/world --curated runs/curated \\\n"
    "      --heldout runs/heldout --out models/"
)


def _options(fn: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option(
            "--world",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="World folder (metadata/, truth/, images/) to train on.",
        ),
        click.option(
            "--curated",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="Curation run over --world: the VAE and U-Net train on its kept rows.",
        ),
        click.option(
            "--heldout",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="A world made with another seed, for the measurements.",
        ),
        click.option(
            "--out",
            type=click.Path(file_okay=False, path_type=Path),
            default=Path("models"),
            show_default=True,
            help="Models folder to write (checkpoints and log in OUT/_train).",
        ),
        click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True),
        click.option("--quick", is_flag=True, help="A few steps of everything: a smoke test, not a model."),
        click.option(
            "--recipe",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="YAML overriding recipe fields, e.g. 'unet: {steps: 6000}'.",
        ),
        click.option("--limit", type=int, help="Use only the first N training rows."),
        click.option("--force", is_flag=True, help="Retrain even if the output exists (drops checkpoints)."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _run(stages: tuple[str, ...], **kw: Any) -> None:
    from t2iscope.generate.train.recipe import load_recipe
    from t2iscope.generate.train.stages import Job, train_all

    recipe = load_recipe(kw.pop("recipe"), quick=kw.pop("quick"))
    train_all(Job(**kw), recipe, stages)
    click.echo(f"wrote {', '.join(stages)} to {kw['out']} (log: {kw['out']}/_train/log.txt)")


@click.group(
    epilog="Example, the whole set from scratch (6 min on one GPU; hours on 2 CPU cores):\n\n" + _EXAMPLE
)
def train() -> None:
    """Train the embedded tiny CLIP, Stable Diffusion, aesthetic and watermark models on the world."""


@train.command("all", epilog="Example:\n\n" + _EXAMPLE)
@_options
def train_all_cmd(**kw: Any) -> None:
    """Train every model, then measure them into OUT/metrics.json. Finished stages are skipped."""
    _run(STAGES, **kw)


def _stage_command(stage: str) -> None:
    @_options
    def command(**kw: Any) -> None:
        _run((stage,), **kw)

    command.__doc__ = (
        f"Run only the {stage} stage (its inputs must exist in OUT).\n\n"
        f"Example: t2iscope generate train {stage} --world runs/world --heldout runs/heldout --out models/"
    )
    train.command(stage)(command)


for _stage in STAGES:
    _stage_command(_stage)


@train.command("sheet")
@click.option(
    "--models",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("models"),
    show_default=True,
)
@click.option(
    "--png",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("docs/generated_contact_sheet.png"),
    show_default=True,
)
@click.option("--steps", type=int, default=25, show_default=True)
def sheet_cmd(models: Path, png: Path, steps: int) -> None:
    """Draw generated images next to their prompts: color x kind at CFG 7.5, then CFG 1 vs 7.5.

    Example: t2iscope generate train sheet --models models --png docs/generated_contact_sheet.png
    """
    from t2iscope.generate.train.sheet import write_sheet

    write_sheet(models, png, steps)
    click.echo(f"wrote {png}")
