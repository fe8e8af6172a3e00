"""Language bias of a model: does a prompt in German, Chinese, ... get the same picture as English?

For every suite that declares what its prompts ask for (``expect``: subject, color, count, culture,
gender; limb counts are the limbs audit's;
one expectation shared by all translations), per prompt language: the judge's adherence per
attribute and for all of a prompt's attributes at once (``all_match``), with Wilson intervals;
the gap to the reference language on the same prompts (a prompt asked only in English does not
move the baseline) with Newcombe's interval for a difference of proportions (Newcombe 1998,
method 10); how often the judge answered ``other`` (none of the suite's words:
on a model that cannot draw the subject, adherence is low because of that, which the rate says);
and, when the judge scores text against images, the mean text-image score with a bootstrap
interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from t2iscope.evaluate import stats
from t2iscope.evaluate.audits.base import AUDITS
from t2iscope.evaluate.audits.common import asked, is_other, same, split_ok
from t2iscope.evaluate.context import AuditContext
from t2iscope.evaluate.judges import TextScorer
from t2iscope.evaluate.tables import measure, rate, skipped, tidy
from t2iscope.generate.attributes import LIMB_COUNTS
from t2iscope.generate.limits import is_language_code


def check_reference(params: Mapping[str, Any]) -> tuple[tuple[str], str] | None:
    """The record's ``check``: ``reference`` is a language code."""
    reference = params.get("reference", "en")
    if not is_language_code(reference):
        return ("reference",), f"a language is a code like en, de or zh-Hans, got {reference!r}"
    return None


def reference_in_data(ctx: AuditContext, params: Mapping[str, Any]) -> tuple[tuple[str], str] | None:
    """The record's ``check_data``: a ``reference`` set in AUDIT.yaml is a language of the generations.

    (The default ``en`` may be absent: there is then no gap to report, which the table shows.)
    """
    if "reference" not in params:
        return None
    languages = sorted(set(ctx.manifest()["language"].astype(str)))
    if params["reference"] not in languages:
        have = ", ".join(languages)
        return ("reference",), f"no generated image has language {params['reference']!r} (they have {have})"
    return None


def adherence(df: pd.DataFrame, attributes: list[str]) -> dict[str, pd.Series]:
    """Per image (rows that ask for it): the judged attribute equals the requested one; ``all_match``
    is every attribute the row asks for right (rows asking for none are left out)."""
    out: dict[str, pd.Series] = {}
    for a in attributes:
        wanted = df[f"req_{a}"].notna()
        out[f"{a}_match"] = pd.Series(
            [same(j, r) for j, r in zip(df.loc[wanted, f"j_{a}"], df.loc[wanted, f"req_{a}"], strict=True)],
            index=df.index[wanted],
            dtype=bool,
        )
    if attributes:
        every = pd.Series(True, index=df.index)
        for s in out.values():
            every.loc[s.index] &= s
        out["all_match"] = every
    return out


@AUDITS.audit(
    "language_bias",
    title="Language bias of the model",
    section="t2iscope.evaluate.report_sections:section_language_bias",
    order=30,
    headline=("all_match_gap", {}, "min", "largest adherence gap to the reference language"),
    judged=True,
    needs=("generation",),
    check=check_reference,
    check_data=reference_in_data,
)
def language_bias_audit(ctx: AuditContext, reference: str = "en", n_boot: stats.NBoot = 1000) -> pd.DataFrame:
    """Adherence per prompt language and attribute, its gap to ``reference``, other-rates, text scores."""
    judged = ctx.judged()
    ok, rows = split_ok(judged)
    judge = ctx.judge()
    answered = tuple(dict.fromkeys(a for _, _, v in ctx.manifests() for a in judge.answers(v)))
    # limb counts are the limbs audit's: adherence here is what the picture shows (subject, color, count...)
    attributes = [a for a in asked(ok, answered) if a not in LIMB_COUNTS] if len(ok) else []
    wants = ok[[f"req_{a}" for a in attributes]].notna().any(axis=1) if attributes else ok["prompt"].isna()
    if not wants.all():
        rows.append(skipped(int((~wants).sum()), "prompt declares no expectation the judge answers (expect)"))
    asked_rows = ok[wants]
    prompt = asked_rows["suite"].astype(str) + "\0" + asked_rows["prompt_id"].astype(str)
    for metric, success in adherence(asked_rows, attributes).items():
        of = asked_rows.loc[success.index].assign(success=success, prompt=prompt)
        ref = of[of["language"] == reference]
        for lang, g in sorted(of.groupby("language"), key=lambda item: str(item[0])):
            k, n = int(g["success"].sum()), len(g)
            rows.append(rate(metric, k, n, language=lang))
            # like with like: the gap compares the prompts both languages were asked (a suite in
            # English only must not move the English baseline of a multilingual one)
            mine, theirs = g[g["prompt"].isin(ref["prompt"])], ref[ref["prompt"].isin(g["prompt"])]
            if lang != reference and len(mine) and len(theirs):
                k1, n1, k2, n2 = (
                    int(mine["success"].sum()),
                    len(mine),
                    int(theirs["success"].sum()),
                    len(theirs),
                )
                diff, lo, hi = stats.newcombe_diff(k1, n1, k2, n2)
                note = f"vs {reference} on the same {mine['prompt'].nunique()} prompts (n={n2})"
                rows.append(measure(f"{metric}_gap", diff, n1, (lo, hi), note=note, language=lang))
    for a in attributes:
        of = asked_rows[asked_rows[f"req_{a}"].notna()]
        for lang, g in of.groupby("language"):
            rows.append(rate(f"{a}_other", int(is_other(g[f"j_{a}"]).sum()), len(g), language=lang))
    if isinstance(judge, TextScorer):
        from t2iscope.evaluate.images import load_image

        scores = judge.text_score([load_image(p) for p in ok["image_file"]], list(ok["prompt"]))
        ok = ok.assign(text_score=scores)
        for lang, g in ok.groupby("language"):
            v = g["text_score"].to_numpy(float)
            rows.append(
                measure(
                    "text_score",
                    float(v.mean()),
                    len(v),
                    stats.bootstrap_ci(v, np.mean, n_boot, ctx.seed),
                    language=lang,
                )
            )
    else:
        rows.append(
            measure(
                "text_score", math.nan, 0, note=f"judge '{judge.name}' has no text scores", language="(all)"
            )
        )
    return tidy(rows, "language_bias", judge.name)
