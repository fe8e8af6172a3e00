"""Language bias of a model: does a prompt in German, Chinese, ... get the same picture as English?

For a multilingual suite, per prompt language: the judge's adherence (requested color, kind and
both) with Wilson intervals, the gap to English with Newcombe's interval for a difference of
proportions, and, when the judge can score text against images, the mean text-image score
with a bootstrap interval. Requested attributes come from the prompt in its own language.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from t2iscope.evaluate import stats
from t2iscope.evaluate.audits.base import AUDITS
from t2iscope.evaluate.audits.common import split_ok
from t2iscope.evaluate.context import AuditContext
from t2iscope.evaluate.judges import TextScorer
from t2iscope.evaluate.tables import measure, rate, skipped, tidy
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


def adherence(df: pd.DataFrame) -> dict[str, pd.Series]:
    """Per image: judged color/kind equal to the requested ones (rows that request them)."""
    color = df["j_color"].astype(str) == df["req_color"].astype(str)
    kind = df["j_kind"].astype(str) == df["req_kind"].astype(str)
    return {"color_match": color, "kind_match": kind, "both_match": color & kind}


@AUDITS.audit(
    "language_bias",
    title="Language bias of the model",
    section="t2iscope.evaluate.report:section_language_bias",
    order=30,
    headline=("both_match_gap", {}, "min", "largest adherence gap to English"),
    judged=True,
    needs=("generation",),
    check=check_reference,
    check_data=reference_in_data,
)
def language_bias_audit(ctx: AuditContext, reference: str = "en", n_boot: stats.NBoot = 1000) -> pd.DataFrame:
    """Adherence per prompt language, its gap to ``reference``, and text-image scores."""
    judged = ctx.judged()
    ok, rows = split_ok(judged)
    asked = ok[ok["req_color"].notna() & ok["req_kind"].notna()]
    if len(asked) < len(ok):
        rows.append(skipped(len(ok) - len(asked), "prompt names no world color and kind"))
    matches = adherence(asked)
    for metric, success in matches.items():
        per_lang = {lang: success.loc[idx] for lang, idx in asked.groupby("language").groups.items()}
        ref = per_lang.get(reference)
        for lang, s in sorted(per_lang.items()):
            k, n = int(s.sum()), len(s)
            rows.append(rate(metric, k, n, language=lang))
            if ref is not None and lang != reference:
                diff, lo, hi = stats.newcombe_diff(k, n, int(ref.sum()), len(ref))
                rows.append(
                    measure(
                        f"{metric}_gap",
                        diff,
                        n,
                        (lo, hi),
                        note=f"vs {reference} (n={len(ref)})",
                        language=lang,
                    )
                )
    judge = ctx.judge()
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
