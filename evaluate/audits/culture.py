"""Default representation: which culture a model draws when the prompt names none.

For neutral prompts ("a house", "a person", in any language) the judged culture-marked attribute
(roof style, headwear) is tallied per kind and prompt language, against the training data (the
world's truth for that kind) and against parity. Imbalance follows HEIM: the mean over the K
cultures of |f_k - 1/K|, with a seeded bootstrap interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from t2iscope.curate.world import spec
from t2iscope.evaluate import stats
from t2iscope.evaluate.audits.base import AUDITS
from t2iscope.evaluate.audits.common import split_ok
from t2iscope.evaluate.context import AuditContext
from t2iscope.evaluate.tables import measure, rate, skipped, tidy

ALL = "(all)"


def distribution_rows(
    cultures: pd.Series, source: str, n_boot: int, seed: int, **slices: Any
) -> list[dict[str, Any]]:
    """Share of each culture (Wilson) and the imbalance score (bootstrap) of one sample."""
    k = len(spec.CULTURES)
    codes = cultures.map({c: i for i, c in enumerate(spec.CULTURES)}).to_numpy(dtype=np.int64)
    n = len(codes)
    counts = np.bincount(codes, minlength=k)
    rows = [
        rate("share", int(counts[i]), n, source=source, culture=c, **slices)
        for i, c in enumerate(spec.CULTURES)
    ]
    value, lo, hi = stats.imbalance_with_ci(codes, k, n_boot=n_boot, seed=seed)
    rows.append(measure("imbalance", value, n, (lo, hi), source=source, culture=ALL, **slices))
    return rows


@AUDITS.audit(
    "culture",
    title="Culture / default representation",
    section="t2iscope.evaluate.report:section_culture",
    order=40,
    headline=(
        "imbalance",
        {"source": "generated", "kind": "(all)", "language": "(all)"},
        "max",
        "imbalance of generated cultures (0 = parity)",
    ),
    judged=True,
    needs=("generation",),
)
def culture_audit(ctx: AuditContext, n_boot: stats.NBoot = 1000) -> pd.DataFrame:
    """Culture distribution for neutral prompts vs the training data and parity."""
    ok, rows = split_ok(ctx.judged())
    neutral = ok[ok["req_kind"].isin(spec.CULTURE_KINDS) & ok["req_culture"].isna()]
    if neutral.empty:
        rows.append(skipped(0, "no neutral house/person prompts in the suite"))
    seen = neutral[neutral["j_culture"].isin(spec.CULTURES)]
    if len(seen) < len(neutral):
        rows.append(skipped(len(neutral) - len(seen), "judge saw no culture-marked subject"))
    k = len(spec.CULTURES)
    for kind in (*spec.CULTURE_KINDS, ALL):
        of_kind = seen if kind == ALL else seen[seen["req_kind"] == kind]
        if of_kind.empty:
            continue
        rows += distribution_rows(
            of_kind["j_culture"], "generated", n_boot, ctx.seed, kind=kind, language=ALL
        )
        for lang, g in of_kind.groupby("language"):
            rows += distribution_rows(g["j_culture"], "generated", n_boot, ctx.seed, kind=kind, language=lang)
        for c in spec.CULTURES:
            rows.append(
                measure("share", 1 / k, 0, note="parity", source="parity", culture=c, kind=kind, language=ALL)
            )
    if ctx.inputs.world is not None:
        truth = ctx.truth()
        marked = truth[truth["kind"].isin(spec.CULTURE_KINDS) & truth["culture"].isin(spec.CULTURES)]
        for kind in (*spec.CULTURE_KINDS, ALL):
            t = marked if kind == ALL else marked[marked["kind"] == kind]
            rows += distribution_rows(t["culture"], "training", n_boot, ctx.seed, kind=kind, language=ALL)
    return tidy(rows, "culture", ctx.judge().name)
