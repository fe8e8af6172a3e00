"""The audits, one module each, registered by name: ``fn(ctx, **params) -> tidy DataFrame``.

AUDIT.yaml names audits and their parameters; parameters are checked against each function's
signature before any work starts (``check_params``), so a typo is an error, not a default.
"""

from __future__ import annotations

import importlib

from t2iscope.evaluate.audits.base import AUDITS, Audit

# Report order: data audits first, then model audits, then watermarking.
MODULES = ("domains", "language_mix", "language_bias", "culture", "limbs", "watermark")

for _name in MODULES:
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["AUDITS", "MODULES", "Audit"]
