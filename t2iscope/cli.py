"""The ``t2iscope`` command: one root that mounts each area's commands.

Area groups are imported lazily so ``t2iscope --help`` and ``t2iscope world make`` do not pay for
importing torch. Every failure reaches the user as one line on stderr:
usage errors exit 2, input/data errors exit with the error's code, never a traceback
(set ``T2ISCOPE_DEBUG=1`` to see one).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

import click

from t2iscope import __version__, offline
from t2iscope.errors import T2IError

# name -> (module, attribute, one-line help shown by `t2iscope --help`)
AREAS: dict[str, tuple[str, str, str]] = {
    "world": ("t2iscope.curate.world.cli", "world", "Make and serve the synthetic LAION-style world."),
    "curate": ("t2iscope.curate.cli", "curate", "Filter, deduplicate and download image-caption data."),
    "generate": ("t2iscope.generate.cli", "generate", "txt2img/img2img/inpaint/outpaint, suites, training."),
    "evaluate": (
        "t2iscope.evaluate.cli",
        "evaluate",
        "Bias, limb, watermark and domain audits; HTML reports.",
    ),
    "models": (
        "t2iscope.models_cli",
        "models",
        "List model architectures and the weight folders the loader finds.",
    ),
    "dashboard": (
        "t2iscope.dashboards.cli",
        "dashboard",
        "Open the Streamlit dashboards over a runs folder.",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(AREAS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in AREAS:
            return None
        module, attr, _ = AREAS[cmd_name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, _, short) in AREAS.items()])


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=(
        "Example, the whole loop on the embedded default:\n\n"
        "\b\n"
        "  t2iscope world make --out runs/world --rows 2000 --seed 0\n"
        "  t2iscope curate run sd-improved-aesthetics --input runs/world --out runs/curated\n"
        "  t2iscope generate suite multilingual --out runs/gen/multilingual\n"
        "  t2iscope evaluate run evaluate/audits/demo.yaml --out runs/audit\n"
        "  t2iscope dashboard runs/"
    ),
)
@click.version_option(__version__, prog_name="t2iscope")
def cli() -> None:
    """t2iscope: curate LAION-style data, generate with latent diffusion, audit bias and quality."""


def _one_line(message: str) -> str:
    return " ".join(message.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns (and exits with) the process exit code."""
    offline.apply()  # before any area imports the libraries that read it
    debug = bool(os.environ.get("T2ISCOPE_DEBUG"))
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="t2iscope", standalone_mode=False)
        code = 0
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else "", err=False)
        code = 0
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        click.echo(f"t2iscope: error: {_one_line(exc.format_message())}{hint}", err=True)
        code = 2
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.Abort:
        click.echo("t2iscope: aborted", err=True)
        code = 130
    except T2IError as exc:
        if debug:
            raise
        click.echo(f"t2iscope: error: {_one_line(str(exc))}", err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        click.echo("t2iscope: interrupted", err=True)
        code = 130
    except Exception as exc:
        if debug:
            raise
        click.echo(
            f"t2iscope: error: {type(exc).__name__}: {_one_line(str(exc))} "
            "(T2ISCOPE_DEBUG=1 shows the traceback)",
            err=True,
        )
        code = 1
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
