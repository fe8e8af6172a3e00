"""The synthetic LAION-style world: scenes with known truth, rendered, captioned, hosted and served.

Flow, one module per step: ``spec`` (vocabulary) -> ``sample`` (one shard of truth + LAION columns,
using ``captions`` and ``domains``) -> ``render`` (truth row -> 64x64 image) -> ``make`` (world folder,
shard by shard; paths in ``layout``) -> ``serve`` (HTTP with failure modes) and ``sheet`` (contact sheet).

Row identity: every URL ends in ``<key>.jpg`` (``key``: uint64, 16 hex digits, unique per row), and
``hash`` is LAION's ``mmh3.hash64(URL + TEXT)[0]``; the truth table holds both, images are named by hash.

The main entry points are importable from here: ``make_world``, ``render_scene``, ``serve_world``,
``read_table``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "make_world": "make",
    "render_scene": "render",
    "serve_world": "serve",
    "WorldServer": "serve",
    "local_url": "serve",
    "read_table": "layout",
    "image_path": "layout",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Lazy exports: ``spec`` importers (models, judges) do not pay for PIL and pyarrow."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
