"""The environment that keeps t2iscope offline, for this process and every child it starts.

t2iscope opens connections only to the URLs it is asked to fetch (img2dataset's downloads, a
dashboard's own port). Libraries it imports would also phone home: albumentations (imported by
img2dataset) asks PyPI for a newer version on import, the Hugging Face hub (behind transformers,
diffusers, timm, open_clip) sends telemetry and looks models up online, wandb (img2dataset's
optional logger) syncs runs. The CLI calls :func:`apply` before importing any area, and
``t2iscope.children`` starts every child (img2dataset and its spawned workers, Streamlit) with
:func:`environment`. What the environment cannot say is set in code: tldextract reads its bundled
suffix list (``curate.urls``), language ID the bundled lid.176 model (``curate.langid``), Streamlit
runs with usage statistics off and without looking up its external IP (``dashboards.cli``).
"""

from __future__ import annotations

import os

# Update checks and telemetry: off whatever the environment says.
FORCED: dict[str, str] = {
    "NO_ALBUMENTATIONS_UPDATE": "1",  # albumentations' PyPI version check at import
    "HF_HUB_DISABLE_TELEMETRY": "1",  # huggingface_hub's usage pings (transformers, diffusers, timm)
    "WANDB_MODE": "disabled",  # img2dataset runs with enable_wandb=False; wandb stays a no-op anyway
}
# Local files only, unless the user says otherwise (HF_HUB_OFFLINE=0 fetches models by repo id).
DEFAULTS: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
}


def environment() -> dict[str, str]:
    """This process's environment with ``DEFAULTS`` where unset and ``FORCED`` always: a child's."""
    return {**DEFAULTS, **os.environ, **FORCED}


def apply() -> None:
    """Set :func:`environment` in this process; call it before importing the libraries that read it."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    os.environ.update(FORCED)
