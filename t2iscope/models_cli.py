"""``t2iscope models``: the weight-folder architectures the one loader knows, and the folders it finds.

Lists only: recognising a folder reads its marker file or ``config.json``, never its weights.
"""

from __future__ import annotations

import click

from t2iscope.errors import T2IError
from t2iscope.listing import Table, add_list_command, summary
from t2iscope.paths import models_dir


@click.group(
    epilog=(
        "Example:\n\n\b\n  t2iscope models list\n"
        "  T2ISCOPE_MODELS=/data/my-models t2iscope models list folders"
    )
)
def models() -> None:
    """Model folders: what loads, and from where (T2ISCOPE_MODELS, default the shipped models/)."""


def architectures_table() -> Table:
    """Every registered architecture: how a folder is recognised and what it loads as."""
    from t2iscope.weights import ARCHITECTURES

    rows = []
    for name in ARCHITECTURES:
        arch = ARCHITECTURES.get(name)
        marker = arch.marker if arch.marker != "config.json" else f'config.json "architecture": "{name}"'
        rows.append((name, marker, ", ".join(arch.references), summary(arch.load)))
    return ("architecture", "recognised by", "references", "loads as"), rows


def folders_table() -> Table:
    """Each folder under the models root with the architecture it is recognised as, or why not."""
    from t2iscope.weights import inspect_folder, model_folders

    root = models_dir()
    rows = []
    for folder in model_folders(root):
        try:
            rows.append((folder.name, inspect_folder(folder).architecture, str(folder)))
        except T2IError as exc:
            rows.append((folder.name, "-", f"not loadable: {exc}"))
    return ("folder", "architecture", "path or problem"), rows


add_list_command(models, "models", {"architectures": architectures_table, "folders": folders_table})
