"""Language mix of the data: which caption languages (and cultures) a curation run keeps.

Per curation run: each caption language's share of the input and of the output, its keep rate,
and every stage's pass rate with Wilson intervals and lift, e.g. how an English-only filter or
an aesthetic threshold removes other languages. With the world given, the same for the culture
of culture-marked scenes (joined on ``hash``), since dropping languages drops cultures with them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from t2iscope.config import PositiveInt
from t2iscope.evaluate.audits.base import AUDITS
from t2iscope.evaluate.context import AuditContext
from t2iscope.evaluate.parquet_inputs import CurationRun, columns, parquet_files
from t2iscope.evaluate.shift import shift_rows, stage_counts
from t2iscope.evaluate.tables import skipped, tidy
from t2iscope.sql import ident

LANG_COLUMNS = ("lang", "LANGUAGE")  # curation's detected language first, LAION's column second


def _lang_column(run: CurationRun) -> str | None:
    cols = set(columns(run.all_files()))
    return next((c for c in LANG_COLUMNS if c in cols), None)


@AUDITS.audit(
    "language_mix",
    title="Language mix of the data",
    section="t2iscope.evaluate.report_sections:section_language_mix",
    order=20,
    headline=("keep_rate", {"group": "language"}, "min", "lowest keep rate of a language"),
    needs=("curation",),
)
def language_mix_audit(ctx: AuditContext, top: PositiveInt = 20) -> pd.DataFrame:
    """Per-language (and per-culture) shares, keep rates and stage pass rates of each curation run."""
    runs = ctx.require("curation", "language_mix")
    rows: list[dict[str, Any]] = []
    for path in runs:
        run = CurationRun.open(path)
        name = run.root.name
        col = _lang_column(run)
        if col is None:
            rows.append(skipped(1, "run has neither a lang nor a LANGUAGE column", run=name))
        else:
            counts = stage_counts(run, f"CAST(d.{ident(col)} AS VARCHAR)")
            keys = counts.groupby("key")["rows"].sum().sort_values(ascending=False).index[:top]
            rows += [
                {**r, "run": name, "column": col}
                for r in shift_rows(counts, run.stages, "language", list(keys))
            ]
        if ctx.inputs.world is not None:
            counts = stage_counts(run, "t.culture", truth=parquet_files(ctx.inputs.world / "truth"))
            counts = counts[counts["key"] != "(none)"]
            keys = sorted(counts["key"].unique())
            rows += [
                {**r, "run": name, "column": "culture"}
                for r in shift_rows(counts, run.stages, "culture", keys)
            ]
    return tidy(rows, "language_mix", "none")
