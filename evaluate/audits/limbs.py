"""Limb failures: how often the model draws the wrong number of legs (or fingers), and what drives it.

For prompts whose suite declares a limb count (``expect: {subject: horse, legs: 4}`` or
``{subject: hand, fingers: 5}``), the failure rate (judged count differs from the declared one)
with Wilson intervals per subject and broken down by seed, cfg scale, steps and sampler. A limb
count is judged only on images that show the subject: where the prompt declares a subject and the
judge answers subjects, ``subject_drawn`` (judged subject = the declared one) is reported per
subject and the images without it are a counted skip, so a model that draws no horse has no horse
leg rate (a mug's "wrong leg count" is not a limb failure). Such figures rest on the judge's subject
and count answers both. How far the judge can be trusted is the ``validity`` audit's job: it
compares the judge with human labels of the same images.
"""

from __future__ import annotations

import pandas as pd

from t2iscope.evaluate.audits.base import AUDITS
from t2iscope.evaluate.audits.common import grouped_rates, same, split_ok, subjects
from t2iscope.evaluate.context import AuditContext
from t2iscope.evaluate.tables import skipped, tidy
from t2iscope.generate.attributes import LIMB_COUNTS

FACTORS = ("seed", "cfg_scale", "steps", "sampler")
ALL = "(all)"


@AUDITS.audit(
    "limbs",
    title="Limb failures",
    section="t2iscope.evaluate.report_sections:section_limbs",
    order=50,
    headline=("failure_rate", {"by": "subject"}, "max", "worst wrong-limb-count rate of a subject"),
    judged=True,
    needs=("generation",),
)
def limbs_audit(ctx: AuditContext) -> pd.DataFrame:
    """Wrong limb-count rates per subject and per generation setting, per limb attribute."""
    ok, rows = split_ok(ctx.judged())
    judge = ctx.judge()
    answered = {a for _, _, v in ctx.manifests() for a in judge.answers(v)}
    counted = False
    for attribute in LIMB_COUNTS:
        req = f"req_{attribute}"
        limbed = ok[ok[req].notna()].copy() if req in ok else ok.iloc[:0]
        if limbed.empty:
            continue
        if attribute not in answered:
            rows.append(
                skipped(len(limbed), f"judge '{judge.name}' does not count {attribute}", attribute=attribute)
            )
            continue
        counted = True
        limbed = limbed.assign(subject=subjects(limbed))
        if "subject" in answered and "j_subject" in limbed and limbed["req_subject"].notna().any():
            declared = limbed["req_subject"].notna()
            drawn = pd.Series(
                [
                    not d or same(j, r)
                    for d, j, r in zip(declared, limbed["j_subject"], limbed["req_subject"], strict=True)
                ],
                index=limbed.index,
            )
            rows += [
                {**r, "subject": r["level"]}
                for r in grouped_rates(
                    limbed[declared], drawn[declared], "subject_drawn", "subject", attribute="subject"
                )
            ]
            if not drawn.all():
                rows.append(
                    skipped(
                        int((~drawn).sum()),
                        "the judge does not see the declared subject: limbs not counted",
                        attribute=attribute,
                    )
                )
            limbed = limbed[drawn]
            if limbed.empty:
                continue
        failure = pd.Series(
            [not same(j, r) for j, r in zip(limbed[f"j_{attribute}"], limbed[req], strict=True)],
            index=limbed.index,
        )
        part = grouped_rates(limbed, failure, "failure_rate", "subject", attribute=attribute, subject=ALL)
        for r in part:
            r["subject"] = r["level"]
        rows += part
        for factor in FACTORS:
            rows += grouped_rates(limbed, failure, "failure_rate", factor, attribute=attribute, subject=ALL)
            for name, g in limbed.groupby("subject"):
                rows += grouped_rates(
                    g, failure.loc[g.index], "failure_rate", factor, attribute=attribute, subject=name
                )
    if not counted:
        rows.append(skipped(0, "no prompt declares a limb count (expect: legs or fingers)"))
    return tidy(rows, "limbs", judge.name)
