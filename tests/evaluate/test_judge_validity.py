"""Judges against human labels of real generations (issue 15: a judge is only as good as its
measured agreement with people). The labels are in fixtures/human_labels (see its README)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from t2iscope.cli import main
from t2iscope.curate.world import spec
from t2iscope.errors import DataError
from t2iscope.evaluate.judges import make_judge
from t2iscope.evaluate.validity import VALID_ACCURACY, grade, judge_validity, read_label_table, read_labels
from t2iscope.evaluate.vocabulary import Vocabulary
from t2iscope.intervals import wilson

LABELS = Path(__file__).parent / "fixtures" / "human_labels" / "labels.csv"


def test_the_labels_are_what_the_readme_says() -> None:
    df = pd.read_csv(LABELS, dtype={"legs": "Int64"})
    assert len(df) == 360 and df["image"].is_unique
    assert set(df["subject"]) <= {*spec.KINDS, "unclear"}
    assert set(df["color"]) <= {*spec.COLORS, "unclear"}
    limbed = df["subject"].isin([*spec.LIMBED_KINDS, "unclear"])
    assert df.loc[~limbed, "legs"].isna().all()  # legs are counted only on what may have legs
    assert df.loc[limbed, "legs"].notna().sum() == 190  # 41, 73 and 76 in the three batches
    assert all(p.is_file() for p in read_labels(LABELS)["image"])


@pytest.fixture(scope="module")
def clip_validity() -> pd.DataFrame:
    return judge_validity(make_judge("clip"), read_labels(LABELS)).set_index(["attribute", "metric"])


def test_clip_judge_reads_subject_and_color_as_people_do(clip_validity: pd.DataFrame) -> None:
    for attribute in ("subject", "color"):
        acc = clip_validity.loc[(attribute, "accuracy")]
        assert acc["n"] >= 160 and acc["value"] >= VALID_ACCURACY and acc["ci_low"] >= 0.85, acc
        assert clip_validity.loc[(attribute, "kappa"), "value"] > 0.9
    assert set(clip_validity["judge"]) == {"clip"}


def test_agreement_counts_by_hand(tmp_path: Path) -> None:
    """Three images a person labelled: the judge's answers are compared as the module says."""
    for i, src in enumerate(read_labels(LABELS)["image"].tolist()[:4]):
        shutil.copy(src, tmp_path / f"{i}.png")
    rows = [
        {"image": "0.png", "subject": "house", "legs": ""},
        {"image": "1.png", "subject": "unclear", "legs": "1"},  # unclear: not counted
        {"image": "2.png", "subject": "ball", "legs": ""},
        {"image": "3.png", "subject": "", "legs": ""},  # blank: not counted
    ]
    file = tmp_path / "labels.csv"
    pd.DataFrame(rows).to_csv(file, index=False)

    class Fixed:
        name = "fixed"

        def answers(self, vocabulary: Vocabulary) -> tuple[str, ...]:
            return ("subject", "legs")

        def check(self, vocabulary: Vocabulary) -> None:
            return None

        def attributes(self, images: list, vocabulary: Vocabulary) -> list[dict]:
            asked.append(vocabulary)
            return [{"subject": k, "legs": 1} for k in ["house", "dog", "car", "cup"]]

    asked: list[Vocabulary] = []
    table = judge_validity(Fixed(), read_labels(file)).set_index(["attribute", "metric"])
    assert table.loc[("subject", "accuracy"), ["value", "n"]].tolist() == [0.5, 2]
    assert table.loc[("legs", "accuracy"), ["value", "n"]].tolist() == [1.0, 1]  # "1" and 1 agree
    # the judge was asked with the words people used (not 'unclear', not blanks)
    assert dict(asked[0].labels) == {"subject": ("house", "ball"), "legs": (1,)}


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("subject\nhouse\n", "no 'image' column"),
        ("image,mood\nimages/000.png,happy\n", "no label column"),
        ("image,subject\nimages/nope.png,house\n", "row 1: image 'images/nope.png' is missing"),
        ("image,subject\n../../../../etc/passwd,house\n", "is missing or lies outside the label file's"),
        ("image,subject,subject\nimages/000.png,house,car\n", "column 'subject' appears twice"),
        ("image,subject\nimages/000.png,house\n./images/000.png,car\n", "row 2: image .* is labelled again"),
        ("image,subject\nimages/000.png,house\nimages/000.png,car\n", "row 2: image 'images/000.png' is"),
    ],
)
def test_bad_label_files_are_one_line(tmp_path: Path, content: str, needle: str) -> None:
    file = LABELS.parent / f"bad-{tmp_path.name}.csv"  # beside the fixture's images
    try:
        file.write_text(content)
        with pytest.raises(DataError, match=needle):
            read_labels(file)
    finally:
        file.unlink()


def test_cli_prints_and_writes_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "v.parquet"
    assert main(["evaluate", "validity", str(LABELS), "--judge", "world", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    table = pd.read_parquet(out)
    assert set(table["metric"]) == {"accuracy", "kappa"}
    assert set(table["attribute"]) == {"subject", "color", "legs"}
    subject = table[(table["attribute"] == "subject") & (table["metric"] == "accuracy")].iloc[0]
    assert f"world  subject  accuracy {subject['value']:.3f}" in printed
    assert ("NOT valid" in printed) == (subject["value"] < VALID_ACCURACY)
    assert main(["evaluate", "validity", str(tmp_path / "none.csv")]) == 1
    assert "no such label file" in capsys.readouterr().err
    assert main(["evaluate", "validity", str(LABELS), "--out", str(tmp_path / "v.csv")]) == 2  # usage
    assert "name a .parquet file" in capsys.readouterr().err and not (tmp_path / "v.csv").exists()


def test_one_label_is_too_few_for_a_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One image the judge reads as people do: accuracy 1.00 [0.21, 1.00], kappa undefined."""
    shutil.copy(read_labels(LABELS)["image"].iloc[0], tmp_path / "0.png")
    file = tmp_path / "labels.csv"
    pd.DataFrame({"image": ["0.png"], "subject": [pd.read_csv(LABELS)["subject"].iloc[0]]}).to_csv(
        file, index=False
    )
    assert main(["evaluate", "validity", str(file), "--judge", "world"]) == 0
    printed = capsys.readouterr().out
    assert "n=1  too few labels" in printed and "kappa nan" in printed, printed
    assert grade(1.0, *wilson(1, 1)) == "too few labels"
    assert grade(172 / 190, *wilson(172, 190)) == "valid"  # the shipped leg counter
    assert grade(0.5, *wilson(1, 2)) == "too few labels" and grade(0.2, *wilson(2, 10)) == "NOT valid"


def test_one_spelling_of_a_label_everywhere() -> None:
    """A count written 4, 4.0 or "4.0" (pandas writes a legs column with blanks as floats) is one
    label; words ignore case, '_' and spacing (a typed "East  Asian" is the judge's east_asian)."""
    from t2iscope.generate.attributes import spelled

    assert {spelled(v) for v in (4, 4.0, "4", "4.0", " 4.00 ")} == {"4"}
    assert {spelled(v) for v in ("east_asian", "East  Asian", "EAST ASIAN")} == {"east asian"}
    assert [spelled(v) for v in (None, float("nan"), "", "  ")] == [None] * 4
    assert spelled("4.5") == "4.5" and spelled("CEO") == "ceo"


def test_float_counts_in_a_csv_agree_with_the_judge(tmp_path: Path) -> None:
    for i, src in enumerate(read_labels(LABELS)["image"].tolist()[:2]):
        shutil.copy(src, tmp_path / f"{i}.png")
    file = tmp_path / "labels.csv"
    pd.DataFrame({"image": ["0.png", "1.png"], "legs": [4.0, None]}).to_csv(file, index=False)
    assert "4.0" in file.read_text()

    class Four:
        name = "four"

        def answers(self, vocabulary: Vocabulary) -> tuple[str, ...]:
            return ("legs",)

        def check(self, vocabulary: Vocabulary) -> None:
            return None

        def attributes(self, images: list, vocabulary: Vocabulary) -> list[dict]:
            return [{"legs": 4} for _ in images]

    table = judge_validity(Four(), read_labels(file)).set_index(["attribute", "metric"])
    assert table.loc[("legs", "accuracy"), ["value", "n"]].tolist() == [1.0, 1]


@pytest.mark.parametrize(
    ("column", "value", "needle"),
    [
        ("legs", "four", r"row 2: legs: expected a count \(a whole number >= 0\), got 'four'"),
        ("legs", "-1", r"row 2: legs: expected a count"),
        ("legs", "2.5", r"row 2: legs: expected a count"),
        ("watermark", "maybe", r"row 2: watermark: expected yes or no, got 'maybe'"),
    ],
)
def test_a_label_of_the_wrong_kind_is_one_line(tmp_path: Path, column: str, value: str, needle: str) -> None:
    file = tmp_path / "labels.csv"
    pd.DataFrame({"image_path": ["a.png", "b.png"], column: ["unclear", value]}).to_csv(file, index=False)
    with pytest.raises(DataError, match=needle):
        read_label_table(file)


def test_cli_refuses_labels_with_nothing_to_compare(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(read_labels(LABELS)["image"][0], tmp_path / "0.png")
    file = tmp_path / "labels.csv"
    pd.DataFrame({"image": ["0.png"], "subject": ["unclear"]}).to_csv(file, index=False)
    out = tmp_path / "v.parquet"
    assert main(["evaluate", "validity", str(file), "--judge", "world", "--out", str(out)]) == 1
    assert "no label to compare with judge 'world'" in capsys.readouterr().err and not out.exists()


def test_the_world_judge_refuses_words_it_cannot_read_and_unanswered_attributes_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(read_labels(LABELS)["image"].iloc[0], tmp_path / "0.png")
    file = tmp_path / "labels.csv"
    pd.DataFrame({"image": ["0.png"], "subject": ["aardvark"]}).to_csv(file, index=False)
    assert main(["evaluate", "validity", str(file), "--judge", "world"]) == 1
    err = capsys.readouterr().err
    assert f"{file}: asks for subject aardvark: judge 'world' knows only" in err and err.count("\n") == 1
    pd.DataFrame({"image": ["0.png"], "subject": ["house"], "gender": ["feminine"]}).to_csv(file, index=False)
    assert main(["evaluate", "validity", str(file), "--judge", "world"]) == 0
    assert "judge world does not answer gender: not measured" in capsys.readouterr().out
    pd.DataFrame({"image": ["0.png"], "subject": ["house"], "legs": [""]}).to_csv(file, index=False)
    assert main(["evaluate", "validity", str(file), "--judge", "world"]) == 0
    printed = capsys.readouterr().out
    assert "no label in legs (every cell blank or unclear)" in printed and "does not answer" not in printed
