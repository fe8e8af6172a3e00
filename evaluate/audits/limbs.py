"""Limb failures: how often the model draws the wrong number of legs, and what drives it.

For prompts whose subject has legs (dog 4, bird 2, spider 8, person 2), the failure rate with
Wilson intervals per subject and broken down by seed, cfg scale, steps and sampler. People can
label images in the dashboard (``labels.sqlite``, see ``t2iscope.evaluate.labels``): a label is
``ok``/``wrong`` or a leg count, and Cohen's kappa measures how far the judge agrees with them.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from t2iscope.curate.world import spec
from t2iscope.evaluate import stats
from t2iscope.evaluate.audits.base import AUDITS
from t2iscope.evaluate.audits.common import grouped_rates, split_ok
from t2iscope.evaluate.context import AuditContext
from t2iscope.evaluate.labels import latest_labels
from t2iscope.evaluate.tables import measure, skipped, tidy

FACTORS = ("seed", "cfg_scale", "steps", "sampler")
ALL = "(all)"


def human_verdict(label: str, expected: int) -> str | None:
    """'ok'/'wrong' from a label that is either a verdict or a leg count; None if unreadable."""
    text = str(label).strip().lower()
    if text in ("ok", "wrong"):
        return text
    if text.isdigit():
        return "ok" if int(text) == expected else "wrong"
    return None


def agreement_rows(limbed: pd.DataFrame, labels: pd.DataFrame) -> list[dict[str, Any]]:
    """Cohen's kappa of judge vs human verdicts, per annotator and pooled."""
    if labels.empty:
        return [measure("kappa", math.nan, 0, note="no human labels yet", annotator=ALL)]
    by_path = {
        **dict(zip(limbed["image_path"].astype(str), limbed.index, strict=False)),
        **dict(zip(limbed["image_file"].astype(str), limbed.index, strict=False)),
    }
    pairs = []
    unmatched = 0
    for row in labels.itertuples():
        i = by_path.get(str(row.image_path))
        human = human_verdict(row.label, spec.KINDS[limbed.at[i, "req_kind"]]) if i is not None else None
        if human is None:
            unmatched += 1
            continue
        pairs.append((row.annotator, "wrong" if limbed.at[i, "failure"] else "ok", human))
    rows = []
    if unmatched:
        rows.append(skipped(unmatched, "label for an image not in this audit, or unreadable label"))
    groups = {ALL: pairs} | {a: [p for p in pairs if p[0] == a] for a in sorted({p[0] for p in pairs})}
    for annotator, ps in groups.items():
        judge_v, human_v = [p[1] for p in ps], [p[2] for p in ps]
        agree = sum(j == h for j, h in zip(judge_v, human_v, strict=False))
        rows.append(measure("kappa", stats.cohen_kappa(judge_v, human_v), len(ps), annotator=annotator))
        rows.append(
            measure(
                "agreement",
                agree / len(ps) if ps else math.nan,
                len(ps),
                stats.wilson(agree, len(ps)),
                annotator=annotator,
            )
        )
    return rows


@AUDITS.audit(
    "limbs",
    title="Limb failures",
    section="t2iscope.evaluate.report:section_limbs",
    order=50,
    headline=("failure_rate", {"by": "subject"}, "max", "worst wrong-leg rate of a subject"),
    judged=True,
    needs=("generation",),
)
def limbs_audit(ctx: AuditContext) -> pd.DataFrame:
    """Wrong-leg-count rates per subject and per generation setting, and judge-human agreement."""
    ok, rows = split_ok(ctx.judged())
    limbed = ok[ok["req_kind"].isin(spec.LIMBED_KINDS)].copy()
    if limbed.empty:
        rows.append(skipped(0, "no prompts with a limbed subject (dog, bird, spider, person)"))
        return tidy(rows, "limbs", ctx.judge().name)
    expected = limbed["req_kind"].map(spec.KINDS)
    limbed["failure"] = limbed["j_legs"].astype(float) != expected.astype(float)
    rows += grouped_rates(limbed, limbed["failure"], "failure_rate", "req_kind", subject=ALL)
    for r in rows:
        if r.get("by") == "req_kind":
            r["by"], r["subject"] = "subject", r["level"]
    for factor in FACTORS:
        rows += grouped_rates(limbed, limbed["failure"], "failure_rate", factor, subject=ALL)
        for kind, g in limbed.groupby("req_kind"):
            rows += grouped_rates(g, g["failure"], "failure_rate", factor, subject=kind)
    if ctx.out is not None:
        rows += agreement_rows(limbed, latest_labels(ctx.out))
    return tidy(rows, "limbs", ctx.judge().name)
