"""The ``ray`` engine hook: the same operators under Ray Data, for clusters.

Ray is an optional extra (it is large); selecting ``engine: ray`` without it stops with the
install command instead of silently running something else (img2dataset's Ray distributor
quietly turns into a stub when Ray is missing).
"""

from __future__ import annotations

INSTALL_HINT = "engine 'ray' needs Ray Data: pip install 't2iscope[ray]'"


def require_ray() -> None:
    try:
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    raise NotImplementedError(
        "engine 'ray' is not available in this release; run with engine: local (the default)"
    )
