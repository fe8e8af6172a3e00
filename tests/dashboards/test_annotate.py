"""The annotation page: labels go through evaluate's label table, resume, and survive two tabs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from fixture_runs import APP
from streamlit.testing.v1 import AppTest

from t2iscope.dashboards import labels
from t2iscope.evaluate.labels import load_labels


@pytest.fixture
def runs(runs_dir: Path, tmp_path: Path, use_runs) -> Path:
    """A private copy of the fixture runs: these tests write labels."""
    return use_runs(shutil.copytree(runs_dir, tmp_path / "runs"))


def tab(annotator: str = "ann") -> AppTest:
    """One browser tab on the annotation page."""
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page("views/annotate.py").run()
    at.text_input(key="annotator").input(annotator).run()
    assert not at.exception and not at.error
    return at


def shown(at: AppTest) -> str:
    """The image path the tab is asking about (its caption is the manifest's image_path)."""
    return next(c for image in at.image for c in image.captions).strip("`")


def press(at: AppTest, button: str, typed: str = "") -> AppTest:
    if typed:
        at.text_input(key="typed").input(typed)
    return next(b for b in at.button if b.label.startswith(button)).click().run()


def test_label_by_number_then_by_button_then_resume(runs: Path):
    manifest = pd.read_parquet(runs / "gen" / "manifest.parquet")
    first = tab()
    assert shown(first) == manifest["image_path"].iloc[0]
    press(first, "Save number", typed="2")
    assert shown(first) == manifest["image_path"].iloc[1]
    press(first, "3 ·")
    stored = load_labels(runs / "audit")
    assert stored[["image_path", "label", "annotator"]].values.tolist() == [
        [manifest["image_path"].iloc[0], "too few legs", "ann"],
        [manifest["image_path"].iloc[1], "too many legs", "ann"],
    ]
    again = tab()  # a new session resumes after what this annotator already labelled
    assert shown(again) == manifest["image_path"].iloc[2]
    assert f"2 of {len(manifest)} images labelled by `ann`" in again.get("progress")[0].proto.text


def test_two_tabs_label_the_same_image(runs: Path):
    a, b = tab(), tab()
    image = shown(a)
    assert shown(b) == image
    press(a, "1 ·")
    press(b, "4 ·")
    stored = load_labels(runs / "audit")
    assert stored["label"].tolist() == ["correct legs", "no subject"]  # both kept, none lost
    assert set(stored["image_path"]) == {image}
    assert "You had labelled it **`correct legs`** before" in b.info[0].value  # a friendly note
    assert labels.load(runs / "audit")["label"].tolist() == ["no subject"]  # the latest wins


def test_two_annotators_each_keep_their_label(runs: Path):
    a, b = tab("ann"), tab("bob")
    press(a, "1 ·")
    press(b, "2 ·")
    stored = load_labels(runs / "audit")
    assert sorted(zip(stored["annotator"], stored["label"], strict=True)) == [
        ("ann", "correct legs"),
        ("bob", "too few legs"),
    ]
    assert not [i.value for i in b.info if "before" in i.value]


def test_a_wrong_number_stores_nothing(runs: Path):
    at = tab()
    image = shown(at)
    press(at, "Save number", typed="9")
    assert "not a label number" in at.warning[0].value
    assert shown(at) == image
    assert load_labels(runs / "audit").empty


def test_skip_then_everything_labelled(runs: Path):
    manifest = pd.read_parquet(runs / "gen" / "manifest.parquet")
    at = tab()
    press(at, "Skip")
    assert shown(at) == manifest["image_path"].iloc[1]
    for _ in range(len(manifest) - 1):
        press(at, "5 ·")
    assert not at.success and "1 image(s) skipped" in at.info[-1].value  # not "all labelled"
    assert len(load_labels(runs / "audit")) == len(manifest) - 1
    at.button(key="revisit").click().run()
    assert shown(at) == manifest["image_path"].iloc[0]
    press(at, "5 ·")
    assert f"All {len(manifest)} images are labelled by `ann`" in at.success[0].value


def test_without_an_audit_run_it_says_what_to_run(runs_dir: Path, tmp_path: Path, use_runs):
    shutil.copytree(runs_dir / "gen", tmp_path / "gen")
    use_runs(tmp_path)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page("views/annotate.py").run()
    assert "t2iscope evaluate run" in at.code[0].value
