"""The audits, one module each, registered with their report metadata: see ``base.AuditRegistry.audit``.

AUDIT.yaml names audits and their parameters; parameters are checked against each function's
signature before any work starts (``check_params``), so a typo is an error, not a default.
Importing this package imports every module in it, so a new audit is one new module here.
"""

from __future__ import annotations

import importlib
import pkgutil

from t2iscope.evaluate.audits.base import AUDITS, Audit

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["AUDITS", "Audit"]
