"""Where the shipped embedded models live.

``T2ISCOPE_MODELS`` overrides the default, which is the repository's ``models/`` folder
(the package is installed editable from a checkout; the weights are not copied into wheels).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    return Path(os.environ.get("T2ISCOPE_MODELS", REPO_ROOT / "models"))
