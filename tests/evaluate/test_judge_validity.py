"""Judges against human labels of real generations (issue 15: a judge is only as good as its
measured agreement with people). The labels are in fixtures/human_labels (see its README)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from t2iscope.curate.world import spec
from t2iscope.evaluate.judges import make_judge
from t2iscope.intervals import wilson

LABELS = Path(__file__).parent / "fixtures" / "human_labels"


@pytest.fixture(scope="module")
def labelled() -> tuple[pd.DataFrame, list[Image.Image]]:
    df = pd.read_csv(LABELS / "labels.csv", dtype={"legs": "Int64"})
    return df, [Image.open(LABELS / p).convert("RGB") for p in df["image"]]


def test_the_labels_are_what_the_readme_says(labelled: tuple[pd.DataFrame, list[Image.Image]]) -> None:
    df, images = labelled
    assert len(df) == 168 and df["image"].is_unique
    assert set(df["subject"]) <= {*spec.KINDS, "unclear"}
    assert set(df["color"]) <= {*spec.COLORS, "unclear"}
    assert all(im.size == (64, 64) for im in images)
    limbed = df["subject"].isin([*spec.LIMBED_KINDS, "unclear"])
    assert df.loc[~limbed, "legs"].isna().all()  # legs are counted only on what may have legs
    assert df.loc[limbed, "legs"].notna().sum() >= 40


def agreement(judged: pd.Series, human: pd.Series) -> tuple[float, float, int]:
    """Accuracy of ``judged`` against ``human`` where the human could tell: (lower CI, rate, n)."""
    known = human.notna() & (human != "unclear")
    hits = int((judged[known].astype(object) == human[known].astype(object)).sum())
    n = int(known.sum())
    low, _ = wilson(hits, n)
    return low, hits / n, n


def test_clip_judge_reads_subject_and_color_as_people_do(
    labelled: tuple[pd.DataFrame, list[Image.Image]],
) -> None:
    df, images = labelled
    judged = pd.DataFrame(make_judge("clip").attributes(images))
    for attribute, column in (("subject", "kind"), ("color", "color")):
        low, rate, n = agreement(judged[column], df[attribute])
        assert n >= 160
        assert rate >= 0.9 and low >= 0.85, f"clip judge {attribute}: {rate:.3f} (lower CI {low:.3f}, n={n})"
