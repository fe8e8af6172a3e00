"""A generation manifest's ``image_path`` becomes a file path: it must stay inside its folder.

Issue 14 item 4: manifests come from other people, so an absolute path, ``..`` or a link out of
the generation folder is refused with one line naming the manifest, the row and the column,
before any audit runs; nothing outside the folder is opened.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from t2iscope import fileio
from t2iscope.errors import DataError
from t2iscope.evaluate.config import load_config
from t2iscope.evaluate.context import load_manifest
from t2iscope.evaluate.runner import run_audits


@pytest.fixture
def gen(gen_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the fixture generation (its manifest gets rewritten), and a secret beside it."""
    copy = shutil.copytree(gen_dir, tmp_path / "gen")
    shutil.copy(copy / "images" / "00000.png", tmp_path / "secret.png")
    return copy


def set_path(gen: Path, row: int, value: object) -> None:
    df = pd.read_parquet(gen / "manifest.parquet")
    df["image_path"] = df["image_path"].astype(object)
    df.at[row, "image_path"] = value
    fileio.write_parquet(gen / "manifest.parquet", df)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("/etc/passwd", "leaves the generation folder"),
        ("ABS", "leaves the generation folder"),  # the secret's absolute path
        ("../secret.png", "leaves the generation folder"),
        ("images/../../secret.png", "leaves the generation folder"),
        ("images/out.png", "is a link to a file outside the generation folder"),
        ("elsewhere/secret.png", "is a link to a file outside the generation folder"),
        ("loop.png", "is a link that does not resolve"),
        ("", "expected a file path relative to"),
        ("a\0b.png", "expected a file path relative to"),
        (None, "expected a file path relative to"),
    ],
)
def test_image_paths_leaving_the_folder_are_refused(gen: Path, value: str | None, problem: str) -> None:
    secret = gen.parent / "secret.png"
    (gen / "images" / "out.png").symlink_to(secret)  # a file link out
    (gen / "elsewhere").symlink_to(gen.parent, target_is_directory=True)  # a folder link out
    (gen / "loop.png").symlink_to("loop.png")
    set_path(gen, 7, str(secret) if value == "ABS" else value)
    with pytest.raises(DataError) as exc:
        load_manifest(gen)
    message = str(exc.value)
    assert (
        message.startswith(f"{gen / 'manifest.parquet'}: row 7, column image_path: ") and problem in message
    )
    assert "\n" not in message


def test_links_inside_the_folder_are_fine(gen: Path) -> None:
    (gen / "same").symlink_to(gen / "images", target_is_directory=True)
    set_path(gen, 3, "same/00003.png")
    set_path(gen, 4, "./images/00004.png")
    df = load_manifest(gen)
    assert df.at[3, "image_file"] == str(gen / "same" / "00003.png")
    assert df.at[4, "image_file"] == str(gen / "images" / "00004.png")


def test_a_bad_image_path_stops_the_run_before_it_starts(
    gen: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_path(gen, 0, "../secret.png")
    (tmp_path / "a.yaml").write_text(
        yaml.safe_dump({"inputs": {"generation": [str(gen)]}, "audits": {"limbs": {}}})
    )
    judged = []
    monkeypatch.setattr("t2iscope.evaluate.context.judge_manifest", lambda *a: judged.append(a))
    with pytest.raises(DataError, match=r"manifest\.parquet: row 0, column image_path: '\.\./secret\.png'"):
        run_audits(load_config(tmp_path / "a.yaml"), tmp_path / "A")
    assert not judged and not (tmp_path / "A").exists()


@pytest.mark.parametrize(
    ("column", "values", "problem"),
    [
        ("tags", 0, "column tags holds int64, expected a list of words"),
        ("prompt", None, "column prompt holds null, expected text"),
        ("language", 1.5, "column language holds double, expected text"),
        ("steps", "20", "column steps holds string, expected numbers"),
    ],
)
def test_manifest_columns_of_another_type_are_refused(
    gen: Path, column: str, values: object, problem: str
) -> None:
    df = pd.read_parquet(gen / "manifest.parquet").assign(**{column: values})
    fileio.write_parquet(gen / "manifest.parquet", df)
    with pytest.raises(DataError, match=f"manifest\\.parquet: {problem}$"):
        load_manifest(gen)
