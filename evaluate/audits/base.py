"""The audit registry, kept apart from the audit modules so they can import it."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from t2iscope.registry import Registry

Audit = Callable[..., pd.DataFrame]
AUDITS: Registry[Audit] = Registry("audit")
