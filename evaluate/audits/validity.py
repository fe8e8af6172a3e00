"""Judge validity: how far the run's judge agrees with people, per attribute, on which images.

Issue 15's rule: a figure is a finding only when its judge's accuracy on that attribute was
measured against human labels of the same image domain (the same generating model). Two sources
of labels, both optional: label files named in AUDIT.yaml (``labels: [...]``, see
``evaluate.validity.read_labels``; their ``model_id`` column names the domain), and the labels
people stored with this audit folder from the dashboard (``labels.sqlite``), matched to this
run's generated images. Rows: ``accuracy`` (Wilson interval) and ``kappa`` per ``attribute``,
sliced by ``source`` (the label file) and ``domain`` (model ids of the labelled images). The
report reads this table to mark figures whose judge is unvalidated or below 0.8.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from t2iscope.evaluate.audits.base import AUDITS
from t2iscope.evaluate.audits.common import same
from t2iscope.evaluate.context import AuditContext
from t2iscope.evaluate.labels import DB_NAME, latest_labels
from t2iscope.evaluate.tables import measure, skipped, tidy
from t2iscope.evaluate.validity import COLUMNS, agreement, judge_validity, read_labels

UNKNOWN = "(unknown)"


def check_labels(params: Mapping[str, Any]) -> tuple[tuple[str | int, ...], str] | None:
    """The record's ``check``: every label file exists."""
    for i, path in enumerate(params.get("labels", ())):
        if not Path(path).is_file():
            return ("labels", i), f"{path}: no such label file"
    return None


def _rows(table: pd.DataFrame, **slices: Any) -> list[dict[str, Any]]:
    return [
        measure(
            r["metric"], r["value"], r["n"], (r["ci_low"], r["ci_high"]), attribute=r["attribute"], **slices
        )
        for _, r in table.iterrows()
    ]


def _stored_labels(ctx: AuditContext) -> list[dict[str, Any]]:
    """Agreement with the labels people stored in this audit folder, on this run's images."""
    if ctx.out is None or not (ctx.out / DB_NAME).is_file() or not ctx.inputs.generation:
        return []
    labels = latest_labels(ctx.out)
    if labels.empty:
        return []
    judged = ctx.judged()
    judged = judged[judged["status"] == "ok"]
    by_path = {
        **dict(zip(judged["image_path"].astype(str), judged.index, strict=True)),
        **dict(zip(judged["image_file"].astype(str), judged.index, strict=True)),
    }
    found = labels["image_path"].astype(str).map(by_path)
    rows = []
    if found.isna().any():
        rows.append(skipped(int(found.isna().sum()), f"label in {DB_NAME} for an image not in this run"))
    labels = labels[found.notna()].assign(row=found[found.notna()].astype(int))
    judge = ctx.judge().name
    for attribute, g in labels.groupby("attribute"):
        said = (
            judged.loc[g["row"], f"j_{attribute}"].reset_index(drop=True)
            if f"j_{attribute}" in judged
            else None
        )
        if said is None or said.isna().all():
            rows.append(skipped(len(g), f"judge '{judge}' does not answer {attribute}", attribute=attribute))
            continue
        human = g["label"].reset_index(drop=True)
        if attribute in ("legs", "fingers"):  # a verdict ("ok"/"wrong") instead of a count: compare verdicts
            asked = judged.loc[g["row"], f"req_{attribute}"].reset_index(drop=True)
            verdict = human.str.strip().str.lower().isin(["ok", "wrong"])
            said = said.where(
                ~verdict, ["ok" if same(s, a) else "wrong" for s, a in zip(said, asked, strict=True)]
            )
        domain = ", ".join(sorted(set(judged.loc[g["row"], "model_id"].astype(str))))
        table = pd.DataFrame(agreement(judge, attribute, said, human), columns=list(COLUMNS))
        rows += _rows(table, source=DB_NAME, domain=domain)
    return rows


@AUDITS.audit(
    "validity",
    title="Judge validity (agreement with people)",
    section="t2iscope.evaluate.report:section_validity",
    order=5,
    judged=True,
    check=check_labels,
)
def validity_audit(ctx: AuditContext, labels: tuple[str, ...] = ()) -> pd.DataFrame:
    """Accuracy and kappa of the run's judge against every label file and the folder's stored labels."""
    judge = ctx.judge()
    rows: list[dict[str, Any]] = []
    for path in labels:
        table = read_labels(path)
        domain = ", ".join(sorted(set(table["model_id"].astype(str)))) if "model_id" in table else UNKNOWN
        rows += _rows(judge_validity(judge, table), source=Path(path).name, domain=domain)
    rows += _stored_labels(ctx)
    if not rows:
        rows.append(
            skipped(0, "no human labels: name label files in labels: or label images in the dashboard")
        )
    return tidy(rows, "validity", judge.name)
