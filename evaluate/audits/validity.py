"""Judge validity: how far the run's judge agrees with people, per attribute, on which images.

Issue 15's rule: a figure is a finding only when its judge's accuracy on that attribute was
measured against human labels of the same image domain (the same generating model). Three
sources of labels, all optional: label files named in AUDIT.yaml (``labels: [...]``, see
``evaluate.validity.read_label_table``) whose ``image`` column names image files beside them
(their ``model_id`` column names the domain) or whose ``image_path`` column names this run's own
images as its manifest does; and the labels people stored with this audit folder from the
dashboard (``labels.sqlite``). Rows: ``accuracy`` (Wilson interval) and ``kappa`` per
``attribute``, sliced by ``source`` (the label file, as AUDIT.yaml names it) and ``domain``
(model ids of the labelled images) and, for word attributes, ``words`` (the labels people used: a
validity measured on the world's eight subjects says nothing of "horse"). The report reads this
table to mark figures whose judge is unvalidated on the run's models or words, or below 0.8.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from t2iscope.errors import DataError
from t2iscope.evaluate.audits.base import AUDITS
from t2iscope.evaluate.audits.common import same
from t2iscope.evaluate.context import AuditContext
from t2iscope.evaluate.labels import DB_NAME, latest_labels
from t2iscope.evaluate.tables import measure, skipped, tidy
from t2iscope.evaluate.validity import (
    COLUMNS,
    RUN_IMAGE,
    agreement,
    judge_validity,
    read_label_table,
    with_image_files,
)
from t2iscope.generate.attributes import ATTRIBUTES, LIMB_COUNTS, UNCLEAR, spelled

UNKNOWN = "(unknown)"


def check_labels(params: Mapping[str, Any]) -> tuple[tuple[str | int, ...], str] | None:
    """The record's ``check``: every label file exists, once."""
    seen: set[Path] = set()
    for i, path in enumerate(params.get("labels", ())):
        if not Path(path).is_file():
            what = "a folder, not a label file" if Path(path).is_dir() else "no such label file"
            return ("labels", i), f"{path}: {what}"
        if Path(path).resolve() in seen:
            return ("labels", i), f"{path}: listed twice"
        seen.add(Path(path).resolve())
    return None


def labels_in_run(ctx: AuditContext, params: Mapping[str, Any]) -> tuple[tuple[str | int, ...], str] | None:
    """The record's ``check_data``: every label file is readable, and one of a run's images
    (``image_path``) names only images of this run's generations, so no label is silently lost."""
    for i, path in enumerate(params.get("labels", ())):
        try:
            table = read_label_table(path)
        except DataError as exc:
            return ("labels", i), str(exc)
        if RUN_IMAGE not in table.columns:
            continue
        if not ctx.inputs.generation:
            return ("labels", i), f"{path}: labels of a run's images ({RUN_IMAGE}) need inputs.generation"
        folders: dict[str, list[str]] = {}
        for gen, df, _ in ctx.manifests():
            for image in df["image_path"].astype(str):
                folders.setdefault(image, []).append(str(gen))
        for row, value in enumerate(table[RUN_IMAGE], start=1):
            where = folders.get(str(value), [])
            if not where:
                return ("labels", i), f"{path}: row {row}: {RUN_IMAGE} {value!r} is not an image of this run"
            if len(where) > 1:  # the same relative path in two generation folders: whose image was it?
                return (
                    ("labels", i),
                    f"{path}: row {row}: {RUN_IMAGE} {value!r} is in {len(where)} generation folders "
                    f"({', '.join(where[:2])}); audit those folders one at a time",
                )
    return None


def _rows(table: pd.DataFrame, words: dict[str, str], **slices: Any) -> list[dict[str, Any]]:
    """Measurement rows of an agreement table; ``words`` per attribute: the labels it was measured on."""
    return [
        measure(
            r["metric"],
            r["value"],
            r["n"],
            (r["ci_low"], r["ci_high"]),
            attribute=r["attribute"],
            words=words.get(r["attribute"], ""),
            **slices,
        )
        for _, r in table.iterrows()
    ]


def words_of(values: Any) -> str:
    """The distinct words people used (``vocabulary.spelled``), sorted: what a validity was measured on."""
    return ", ".join(sorted({w for w in map(spelled, values) if w not in (None, UNCLEAR)}))


def _word_columns(table: pd.DataFrame) -> dict[str, str]:
    return {a: words_of(table[a]) for a in table.columns if a in ATTRIBUTES and ATTRIBUTES[a].kind == "word"}


def _run_labels(ctx: AuditContext, labels: pd.DataFrame, source: str) -> list[dict[str, Any]]:
    """Agreement with labels of this run's images (``image_path, attribute, label``), per attribute.

    A leg or finger label may be a verdict (``ok``/``wrong``) instead of a count: it is compared
    with the judge's verdict. Labels of images not in this run are a counted skip.
    """
    judged = ctx.judged()
    judged = judged[judged["status"] == "ok"]
    by_path = {
        **dict(zip(judged["image_path"].astype(str), judged.index, strict=True)),
        **dict(zip(judged["image_file"].astype(str), judged.index, strict=True)),
    }
    found = labels["image_path"].astype(str).map(by_path)
    rows = []
    if found.isna().any():
        rows.append(skipped(int(found.isna().sum()), f"label in {source} for an image not in this run"))
    labels = labels[found.notna()].assign(row=found[found.notna()].astype(int))
    judge = ctx.judge().name
    for attribute, g in labels.groupby("attribute"):
        column = f"j_{attribute}"
        said = judged.loc[g["row"], column].reset_index(drop=True) if column in judged else None
        if said is None or said.isna().all():
            rows.append(skipped(len(g), f"judge '{judge}' does not answer {attribute}", attribute=attribute))
            continue
        human = g["label"].astype(str).reset_index(drop=True)
        if attribute in LIMB_COUNTS:
            asked = judged.loc[g["row"], f"req_{attribute}"].reset_index(drop=True)
            verdict = human.str.strip().str.lower().isin(["ok", "wrong"])
            judged_verdict = ["ok" if same(s, a) else "wrong" for s, a in zip(said, asked, strict=True)]
            said = said.where(~verdict, pd.Series(judged_verdict, dtype=object))
        domain = ", ".join(sorted(set(judged.loc[g["row"], "model_id"].astype(str))))
        table = pd.DataFrame(agreement(judge, attribute, said, human), columns=list(COLUMNS))
        words = {attribute: words_of(human)} if ATTRIBUTES[attribute].kind == "word" else {}
        rows += _rows(table, words, source=source, domain=domain)
    return rows


def _long(table: pd.DataFrame) -> pd.DataFrame:
    """A wide label file of a run's images as ``image_path, attribute, label`` rows."""
    columns = [c for c in ATTRIBUTES if c in table.columns]
    long = table.melt(id_vars=[RUN_IMAGE], value_vars=columns, var_name="attribute", value_name="label")
    return long.dropna(subset=["label"])


@AUDITS.audit(
    "validity",
    title="Judge validity (agreement with people)",
    section="t2iscope.evaluate.report_sections:section_validity",
    order=5,
    judged=True,
    check=check_labels,
    check_data=labels_in_run,
)
def validity_audit(ctx: AuditContext, labels: tuple[str, ...] = ()) -> pd.DataFrame:
    """Accuracy and kappa of the run's judge against every label file and the folder's stored labels."""
    judge = ctx.judge()
    rows: list[dict[str, Any]] = []
    for path in labels:
        table = read_label_table(path)
        if RUN_IMAGE in table.columns:
            rows += _run_labels(ctx, _long(table), str(path))
            continue
        table = with_image_files(Path(path), table)
        domain = ", ".join(sorted(set(table["model_id"].astype(str)))) if "model_id" in table else UNKNOWN
        rows += _rows(
            judge_validity(judge, table, str(path)), _word_columns(table), source=str(path), domain=domain
        )
    if ctx.out is not None and (ctx.out / DB_NAME).is_file() and ctx.inputs.generation:
        stored = latest_labels(ctx.out)
        if not stored.empty:
            rows += _run_labels(ctx, stored, DB_NAME)
    if not rows:
        rows.append(
            skipped(0, "no human labels: name label files in labels: or label images in the dashboard")
        )
    return tidy(rows, "validity", judge.name)
