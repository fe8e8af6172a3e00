"""Helpers shared by the audits over judged generations: skip rows, answers compared, grouped rates."""

from __future__ import annotations

from typing import Any

import pandas as pd

from t2iscope.evaluate.tables import rate, skipped
from t2iscope.generate.attributes import EXPECTABLE, OTHER, spelled


def same(answer: object, asked: object) -> bool:
    """A judge's answer equals what was asked, in one spelling (``vocabulary.spelled``)."""
    said = spelled(answer)
    return said is not None and said == spelled(asked)


def subjects(df: pd.DataFrame) -> pd.Series:
    """Per row, what the audits group by as its subject: the requested subject, else the prompt id."""
    return df["req_subject"].where(df["req_subject"].notna(), df["prompt_id"]).astype(str)


def asked(df: pd.DataFrame, answered: tuple[str, ...]) -> list[str]:
    """The expectable attributes some row of ``df`` asks for and the judge answers, in attribute order."""
    return [a for a in EXPECTABLE if a in answered and f"req_{a}" in df and df[f"req_{a}"].notna().any()]


def is_other(answers: pd.Series) -> pd.Series:
    """Answers outside the offered labels (``other``) or missing."""
    return answers.map(lambda v: spelled(v) in (None, OTHER))


def split_ok(judged: pd.DataFrame, **slices: Any) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Readable rows, plus one counted-skip row per failure status (missing, corrupt)."""
    rows = [
        skipped(int(n), f"image {status}", **slices)
        for status, n in judged.loc[judged["status"] != "ok", "status"].value_counts().items()
    ]
    return judged[judged["status"] == "ok"], rows


def grouped_rates(
    df: pd.DataFrame, success: pd.Series, metric: str, by: str, **slices: Any
) -> list[dict[str, Any]]:
    """One Wilson-interval rate of ``success`` per value of column ``by``."""
    rows = []
    for value, idx in df.groupby(by, sort=True, dropna=False).groups.items():
        s = success.loc[idx]
        rows.append(rate(metric, int(s.sum()), len(s), by=by, level=str(value), **slices))
    return rows
