"""Default representation: which culture and gender presentation a model draws when the prompt names none.

In the manner of Stable Bias (Luccioni et al. 2023) and HEIM's demographic representation metric
(Lee et al. 2023): for prompts that leave an attribute open ("a photo of a doctor", "a house", in
any language), the judged culture marker or perceived gender presentation is tallied per subject
and prompt language over the labels the suite offers (``vocabulary``), against parity and, for
culture, against the training data (the world's truth, when ``inputs.world`` is given). Imbalance
follows HEIM: the mean over the K labels of |f_k - 1/K|, with a seeded Bayesian-bootstrap interval
(``stats.imbalance_with_ci``).
Answers outside the offered labels (``other``) are counted skips: on a model that cannot draw the
subject, most answers are ``other``, and the table says so instead of inventing a distribution.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from t2iscope.evaluate import stats
from t2iscope.evaluate.audits.base import AUDITS
from t2iscope.evaluate.audits.common import is_other, split_ok, subjects
from t2iscope.evaluate.context import AuditContext
from t2iscope.evaluate.tables import measure, rate, skipped, tidy
from t2iscope.generate.attributes import REPRESENTATION, spelled

ALL = "(all)"


def distribution_rows(
    answers: pd.Series, labels: list[str], source: str, n_boot: int, seed: int, **slices: Any
) -> list[dict[str, Any]]:
    """Share of each label (Wilson) and the imbalance score (bootstrap) of one sample of answers."""
    k = len(labels)
    index = {spelled(v): i for i, v in enumerate(labels)}
    codes = answers.map(lambda v: index[spelled(v)]).to_numpy(dtype=np.int64)
    n = len(codes)
    counts = np.bincount(codes, minlength=k)
    rows = [rate("share", int(counts[i]), n, source=source, label=c, **slices) for i, c in enumerate(labels)]
    value, lo, hi = stats.imbalance_with_ci(codes, k, n_boot=n_boot, seed=seed)
    rows.append(measure("imbalance", value, n, (lo, hi), source=source, label=ALL, **slices))
    return rows


@AUDITS.audit(
    "culture",
    title="Default representation (culture, gender)",
    section="t2iscope.evaluate.report_sections:section_culture",
    order=40,
    headline=(
        "imbalance",
        {"source": "generated", "subject": "(all)", "language": "(all)"},
        "max",
        "imbalance of what the model draws by default (0 = parity)",
    ),
    judged=True,
    needs=("generation",),
)
def culture_audit(ctx: AuditContext, n_boot: stats.NBoot = 1000) -> pd.DataFrame:
    """Culture and gender distributions for prompts that leave them open, vs parity and training data."""
    ok, rows = split_ok(ctx.judged())
    judge = ctx.judge()
    offered: dict[str, list[str]] = {}
    asked_of: dict[str, set[str]] = {}  # attribute -> the images whose suite offers its labels
    for _, manifest, vocabulary in ctx.manifests():
        answered = judge.answers(vocabulary)
        for a in REPRESENTATION:
            if a in vocabulary.labels and a in answered:
                offered.setdefault(a, []).extend(str(v) for v in vocabulary.labels[a])
                asked_of.setdefault(a, set()).update(manifest["image_file"].astype(str))
    if not offered:
        rows.append(skipped(0, "no suite offers culture or gender labels (vocabulary) the judge answers"))
    for attribute, words in offered.items():
        labels = list(dict.fromkeys(words))
        known = {spelled(v) for v in labels}
        open_ = ok[ok[f"req_{attribute}"].isna() & ok["image_file"].astype(str).isin(asked_of[attribute])]
        said = open_[f"j_{attribute}"]
        seen = open_[~is_other(said) & said.map(spelled).isin(known)]
        if len(seen) < len(open_):
            rows.append(
                skipped(
                    len(open_) - len(seen),
                    f"judge saw none of the {attribute} labels (other)",
                    attribute=attribute,
                )
            )
        seen = seen.assign(subject=subjects(seen))
        k = len(labels)
        for subject in (*sorted(set(seen["subject"])), ALL):
            of = seen if subject == ALL else seen[seen["subject"] == subject]
            if of.empty:
                continue
            answers = of[f"j_{attribute}"]
            common = {"attribute": attribute, "subject": subject}
            rows += distribution_rows(answers, labels, "generated", n_boot, ctx.seed, **common, language=ALL)
            for lang, g in of.groupby("language"):
                rows += distribution_rows(
                    g[f"j_{attribute}"], labels, "generated", n_boot, ctx.seed, **common, language=lang
                )
            for c in labels:
                rows.append(
                    measure(
                        "share", 1 / k, 0, note="parity", source="parity", label=c, **common, language=ALL
                    )
                )
        if attribute == "culture" and ctx.inputs.world is not None:
            rows += _training_rows(ctx, labels, set(seen["subject"]), n_boot)
    return tidy(rows, "culture", judge.name)


def _training_rows(
    ctx: AuditContext, labels: list[str], subjects: set[str], n_boot: int
) -> list[dict[str, Any]]:
    """The world's truth culture distribution for the audited subjects: what the model was trained on."""
    truth = ctx.truth()
    known = {spelled(v) for v in labels}
    marked = truth[
        truth["kind"].isin(subjects) & truth["culture"].map(lambda v: v is not None and spelled(v) in known)
    ]
    rows = []
    for subject in (*sorted(set(marked["kind"])), ALL):
        t = marked if subject == ALL else marked[marked["kind"] == subject]
        if len(t):
            rows += distribution_rows(
                t["culture"],
                labels,
                "training",
                n_boot,
                ctx.seed,
                attribute="culture",
                subject=subject,
                language=ALL,
            )
    return rows
