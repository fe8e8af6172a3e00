"""The annotation page: labels of any attribute go through evaluate's label table, resume per
annotator and attribute, and survive two tabs."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from fixture_runs import APP, PAYLOAD
from streamlit.testing.v1 import AppTest

from t2iscope import fileio
from t2iscope.dashboards import labels, ui
from t2iscope.evaluate.labels import DB_NAME, load_labels


@pytest.fixture
def runs(runs_dir: Path, tmp_path: Path, use_runs) -> Path:
    """A private copy of the fixture runs: these tests write labels."""
    return use_runs(shutil.copytree(runs_dir, tmp_path / "runs"))


def with_expect(runs: Path, expect: dict[str, dict]) -> pd.DataFrame:
    """Give the copy's manifest an ``expect`` column (JSON per prompt_id, ``{}`` for others)."""
    path = runs / "gen" / "manifest.parquet"
    manifest = pd.read_parquet(path)
    manifest["expect"] = [json.dumps(expect.get(p, {}), sort_keys=True) for p in manifest["prompt_id"]]
    fileio.write_parquet(path, manifest)
    return manifest


def tab(annotator: str = "ann", attribute: str | None = None) -> AppTest:
    """One browser tab on the annotation page (asking about ``attribute``, else the default legs)."""
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page("views/annotate.py").run()
    at.text_input(key="annotator").input(annotator).run()
    if attribute is not None:
        at.selectbox(key="attribute").select(attribute).run()
    assert not at.exception and not at.error
    return at


def shown(at: AppTest) -> str:
    """The image path the tab is asking about (its caption is the manifest's image_path)."""
    return next(c for image in at.image for c in image.captions).strip("`")


def press(at: AppTest, button: str, typed: str = "") -> AppTest:
    """Click the button labelled ``button`` (after typing ``typed`` in the box)."""
    if typed:
        at.text_input(key="typed").input(typed)
    return next(b for b in at.button if b.label == button).click().run()


def stored(runs: Path) -> list[list[str]]:
    return load_labels(runs / "audit")[["image_path", "attribute", "label", "annotator"]].values.tolist()


def test_label_legs_by_number_then_by_button_then_resume(runs: Path):
    manifest = pd.read_parquet(runs / "gen" / "manifest.parquet")
    first = tab()
    assert first.selectbox(key="attribute").value == "legs"  # today's flow by default
    assert "How many legs are visible?" in [h.value for h in first.subheader]
    assert [b.label for b in first.button][1:11] == [*map(str, range(9)), "unclear"]
    assert shown(first) == manifest["image_path"].iloc[0]
    press(first, "Save ↵", typed="2")
    assert shown(first) == manifest["image_path"].iloc[1]
    press(first, "3")
    assert stored(runs) == [
        [manifest["image_path"].iloc[0], "legs", "2", "ann"],
        [manifest["image_path"].iloc[1], "legs", "3", "ann"],
    ]
    again = tab()  # a new session resumes after what this annotator already labelled
    assert shown(again) == manifest["image_path"].iloc[2]
    assert f"2 of {len(manifest)} images labelled for legs by `ann`" in again.get("progress")[0].proto.text


def test_two_tabs_label_the_same_image(runs: Path):
    a, b = tab(), tab()
    image = shown(a)
    assert shown(b) == image
    press(a, "1")
    press(b, "4")
    rows = load_labels(runs / "audit")
    assert rows["label"].tolist() == ["1", "4"]  # both kept, none lost
    assert set(rows["image_path"]) == {image}
    assert "You had labelled it **`1`** before" in b.info[0].value  # a friendly note
    assert labels.load(runs / "audit")["label"].tolist() == ["4"]  # the latest wins


def test_two_annotators_each_keep_their_label(runs: Path):
    a, b = tab("ann"), tab("bob")
    press(a, "1")
    press(b, "2")
    rows = load_labels(runs / "audit")
    assert sorted(zip(rows["annotator"], rows["label"], strict=True)) == [("ann", "1"), ("bob", "2")]
    assert not [i.value for i in b.info if "before" in i.value]


@pytest.mark.parametrize("typed", ["nine", "-1", "4.5"])
def test_a_wrong_number_stores_nothing(runs: Path, typed: str):
    at = tab()
    image = shown(at)
    press(at, "Save ↵", typed=typed)
    assert "is not a count" in at.warning[0].value
    assert shown(at) == image
    assert load_labels(runs / "audit").empty


def test_skip_then_everything_labelled(runs: Path):
    manifest = pd.read_parquet(runs / "gen" / "manifest.parquet")
    at = tab()
    press(at, "Skip for now")
    assert shown(at) == manifest["image_path"].iloc[1]
    for _ in range(len(manifest) - 1):
        press(at, "unclear")
    assert not at.success and "1 image(s) skipped" in at.info[-1].value  # not "all labelled"
    assert len(load_labels(runs / "audit")) == len(manifest) - 1
    at.button(key="revisit").click().run()
    assert shown(at) == manifest["image_path"].iloc[0]
    press(at, "unclear")
    assert f"All {len(manifest)} images are labelled for legs by `ann`" in at.success[0].value


def test_without_an_audit_run_it_says_what_to_run(runs_dir: Path, tmp_path: Path, use_runs):
    shutil.copytree(runs_dir / "gen", tmp_path / "gen")
    use_runs(tmp_path)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page("views/annotate.py").run()
    assert "t2iscope evaluate run" in at.code[0].value


def test_color_offers_the_expected_words_and_stores_its_attribute(runs: Path):
    manifest = with_expect(
        runs, {"dog": {"subject": "dog", "color": "red"}, "spider": {"color": "dark  blue"}}
    )
    paths = manifest["image_path"].tolist()
    at = tab(attribute="color")
    assert "What color is the subject?" in [h.value for h in at.subheader]
    assert [b.label for b in at.button][1:6] == ["`dark blue`", "`red`", "other", "unclear", "Skip for now"]
    assert shown(at) == paths[0]  # every image of the folder, in manifest order
    press(at, "`red`")
    press(at, "Save ↵", typed="  Light   Brown ")  # a free word, as seen
    press(at, "other")
    assert stored(runs) == [
        [paths[0], "color", "red", "ann"],
        [paths[1], "color", "light brown", "ann"],
        [paths[2], "color", "other", "ann"],
    ]
    assert f"3 of {len(paths)} images labelled for color by `ann`" in at.get("progress")[0].proto.text
    legs = tab()  # resumable per attribute: legs starts from the beginning, of the limbed only
    assert shown(legs) == paths[0]
    assert f"0 of {len(paths)} images labelled for legs" in legs.get("progress")[0].proto.text


def test_present_is_yes_no_unclear_and_stores_its_attribute(runs: Path):
    manifest = pd.read_parquet(runs / "gen" / "manifest.parquet")
    paths = manifest["image_path"].tolist()
    at = tab(attribute="present")
    assert "Is the requested subject there at all?" in [h.value for h in at.subheader]
    assert [b.label for b in at.button][1:5] == ["yes", "no", "unclear", "Skip for now"]
    press(at, "yes")
    press(at, "Save ↵", typed="n")
    press(at, "Save ↵", typed="maybe")
    assert "is not an answer (y, n or u)" in at.warning[0].value
    press(at, "unclear")
    assert stored(runs) == [
        [paths[0], "present", "yes", "ann"],
        [paths[1], "present", "no", "ann"],
        [paths[2], "present", "unclear", "ann"],
    ]


def test_legs_asks_only_about_images_that_expect_legs(runs: Path):
    manifest = with_expect(runs, {"spider": {"subject": "spider", "legs": 8}})
    spiders = manifest.loc[manifest["prompt_id"] == "spider", "image_path"].tolist()
    at = tab()
    assert shown(at) == spiders[0]
    assert f"0 of {len(spiders)} images labelled for legs" in at.get("progress")[0].proto.text
    press(at, "8")
    assert stored(runs) == [[spiders[0], "legs", "8", "ann"]]


def test_an_old_label_file_counts_as_legs(runs: Path):
    """Labels stored before labels had an attribute are leg labels: the page resumes after them."""
    paths = pd.read_parquet(runs / "gen" / "manifest.parquet")["image_path"].tolist()
    con = sqlite3.connect(runs / "audit" / DB_NAME)
    con.execute("CREATE TABLE labels (image_path TEXT, label TEXT, annotator TEXT, time TEXT)")
    con.execute("INSERT INTO labels VALUES (?, 'ok', 'ann', '2024-01-01T00:00:00+00:00')", (paths[0],))
    con.commit()
    con.close()
    assert shown(tab()) == paths[1]
    assert shown(tab(attribute="subject")) == paths[0]
    assert stored(runs) == [[paths[0], "legs", "ok", "ann"]]


def test_expected_words_from_the_manifest_are_shown_literally(runs: Path):
    manifest = with_expect(runs, {"dog": {"color": PAYLOAD}})
    manifest.loc[1, "expect"] = "{not json"  # a broken cell loses its suggestions, not the page
    fileio.write_parquet(runs / "gen" / "manifest.parquet", manifest)
    at = tab(attribute="color")
    word = next(b for b in at.button if PAYLOAD in b.label)
    assert word.label == ui.literal(PAYLOAD)
    word.click().run()
    assert stored(runs) == [[manifest["image_path"].iloc[0], "color", PAYLOAD, "ann"]]
    assert f"Saved color **{ui.literal(PAYLOAD)}**" in at.info[0].value
