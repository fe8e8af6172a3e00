"""`t2iscope generate info IMAGE`: print the generation parameters stored in an image."""

from __future__ import annotations

import json
from pathlib import Path

import click

from t2iscope.errors import DataError
from t2iscope.generate.pnginfo import params_from_infotext, parse_parameters, read_parameters


@click.command("info")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the parsed fields as one JSON object.")
@click.option(
    "--params",
    "as_params",
    is_flag=True,
    help="Print the generation settings as t2iscope's Params fields (JSON), to generate it again.",
)
def info(image: Path, as_json: bool, as_params: bool) -> None:
    """Print IMAGE's generation parameters (AUTOMATIC1111 infotext).

    Reads the PNG `parameters` chunk written by t2iscope and AUTOMATIC1111, or the EXIF UserComment
    of A1111's JPEG/WebP files.

    \b
    Example:
      t2iscope generate info runs/gen/images/00000.png
      t2iscope generate info runs/gen/images/00000.png --json
      t2iscope generate info a1111.png --params
    """
    text = read_parameters(image)
    if text is None:
        raise DataError(f"{image}: no generation parameters (no PNG 'parameters' chunk or EXIF UserComment)")
    if as_params:
        click.echo(json.dumps(params_from_infotext(parse_parameters(text)), ensure_ascii=False, indent=2))
    elif as_json:
        click.echo(json.dumps(parse_parameters(text), ensure_ascii=False, indent=2))
    else:
        click.echo(text)
