"""The ``t2iscope <area> list [KIND]`` commands: what each area has registered, as plain tables.

Every area lists its registries (and shipped configs) the same way: one table per kind, a
header row, columns padded to their widest cell, free text last so long lines stay readable.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any

import click

Table = tuple[Sequence[str], list[Sequence[object]]]  # (header, rows); cells print with str()


def parameters(fn: Callable[..., Any], data_args: int = 0) -> str:
    """``name=default`` per parameter of ``fn`` after the first ``data_args`` (bare name if required).

    A ``Literal`` parameter (or a list of them) shows its choices: ``by='hash' (hash|url|image)``.
    """
    from t2iscope.config import literal_choices, param_hints

    hints = param_hints(fn, data_args)
    params = list(inspect.signature(fn).parameters.values())[data_args:]
    cells = []
    for p in params:
        cell = p.name if p.default is p.empty else f"{p.name}={p.default!r}"
        choices = literal_choices(hints.get(p.name))
        cells.append(f"{cell} ({'|'.join(choices)})" if choices else cell)
    return ", ".join(cells)


def summary(obj: Any) -> str:
    """The first sentence of ``obj``'s docstring, whatever lines it spans ('' if it has none): a
    listing must not stop mid-sentence where the docstring wrapped."""
    paragraph = " ".join((inspect.getdoc(obj) or "").split("\n\n")[0].split())
    sentence = re.match(r"(.+?[.!?])(?=\s+[A-Z]|$)", paragraph)  # "e.g. 4" does not end one
    return sentence.group(1) if sentence else paragraph


def format_table(title: str, table: Table) -> str:
    """``title``, then the header and rows with every column but the last padded to its widest cell.

    Empty cells print as ``-`` so every row has as many words as the header.
    """
    header, rows = table
    cells = [list(header), *[[str(c) or "-" for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    lines = ["  ".join([*(row[i].ljust(w) for i, w in enumerate(widths)), row[-1]]).rstrip() for row in cells]
    return "\n".join([f"{title}:", *lines])


def add_list_command(
    group: click.Group, area: str, tables: dict[str, Callable[[], Table]], aliases: tuple[str, ...] = ()
) -> None:
    """Add ``t2iscope AREA list [KIND]`` to ``group``: print the ``tables`` (kind -> builder).

    Builders run only when asked for, so ``--help`` imports nothing heavy. Each of ``aliases``
    (a kind) also stays a hidden ``t2iscope AREA KIND`` command: its name before ``list`` existed.
    """
    kinds = list(tables)
    named = ", ".join(kinds[:-1]) + " and " + kinds[-1] if len(kinds) > 1 else kinds[0]

    @click.command(
        "list",
        help=f"List the {named}, one plain table each.\n\nKIND ({'|'.join(kinds)}) prints only that table.",
        epilog=f"Example:\n\n\b\n  t2iscope {area} list\n  t2iscope {area} list {kinds[0]}",
    )
    @click.argument("kind", required=False, type=click.Choice(kinds), metavar="[KIND]")
    def list_cmd(kind: str | None) -> None:
        click.echo("\n\n".join(format_table(k, tables[k]()) for k in ([kind] if kind else tables)))

    group.add_command(list_cmd)
    for alias in aliases:
        group.add_command(
            click.Command(
                alias,
                callback=functools.partial(list_cmd.callback, kind=alias),
                help=f"Same as `t2iscope {area} list {alias}`.",
                hidden=True,
            )
        )
