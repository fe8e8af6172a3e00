"""Recipes: built-ins load; every mistake is a ConfigError naming the file and the stage."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from curate_rows import laion_table

from t2iscope.cli import main
from t2iscope.curate.recipe import builtin_names, load_recipe, recipe_from_dict
from t2iscope.errors import ConfigError


def _write(tmp_path: Path, data: object) -> str:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_builtins_are_the_four_named_in_the_issue() -> None:
    assert builtin_names() == [
        "datacomp-basic",
        "datacomp-clip-score",
        "laion-high-resolution",
        "laion2b-en",
        "sd-improved-aesthetics",
    ]
    for name in builtin_names():
        recipe = load_recipe(name)
        names = [s.name for s in recipe.stages]
        assert recipe.name == name and names.count("validity") == 1
        assert all(s.op.numeric for s in recipe.stages[: names.index("validity")])


def test_validity_goes_after_the_leading_numeric_stages_unless_named() -> None:
    stages = ["resolution", {"unsafe": None}, "caption", "watermark"]
    recipe = recipe_from_dict({"stages": stages}, "r.yaml")
    assert [s.name for s in recipe.stages] == ["resolution", "unsafe", "validity", "caption", "watermark"]
    named = recipe_from_dict({"stages": ["resolution", "caption", "validity"]}, "r.yaml")
    assert [s.name for s in named.stages] == ["resolution", "caption", "validity"]


def test_sd_improved_aesthetics_thresholds() -> None:
    stages = {s.name: s.params for s in load_recipe("sd-improved-aesthetics").stages}
    assert stages["aesthetic"]["min_score"] == 5.0
    assert stages["watermark"]["max_score"] == 0.5
    assert stages["resolution"]["min_side"] == 512


def test_resolved_recipe_round_trips_with_defaults(tmp_path: Path) -> None:
    recipe = load_recipe(_write(tmp_path, {"name": "x", "stages": ["dedup", {"unsafe": None}]}))
    assert [s.name for s in recipe.stages] == ["validity", "dedup", "unsafe"]
    assert recipe.stages[1].params == {"by": "hash"}
    again = load_recipe(_write(tmp_path, yaml.safe_load(recipe.to_yaml())))
    assert again.to_dict() == recipe.to_dict()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"stages": [], "stagse": []}, r"r\.yaml: unknown key\(s\) stagse"),
        ({"name": "x"}, "missing key 'stages'"),
        ({"stages": [{"lang": {}}]}, r"stages 1: unknown curation stage 'lang'; valid: aesthetic"),
        (
            {"stages": [{"resolution": {"min_sid": 3}}]},
            r"stages 1 \(resolution\): unknown parameter\(s\) min_sid",
        ),
        (
            {"stages": [{"resolution": {"min_side": "big"}}]},
            r"stages 1 \(resolution\): min_side: expected an integer, got 'big'",
        ),
        (
            {"stages": [{"language": {"keep": "en"}}]},
            r"stages 1 \(language\): keep: expected a list of strings, got 'en'",
        ),
        ({"stages": [{"resolution": {}, "unsafe": {}}]}, "entry 1 must be"),
        ({"stages": [], "engine": "spark"}, "engine 'spark'; valid: local, ray"),
        (
            {"stages": [], "post_download": [{"unsafe": {}}]},
            r"post_download 1 \(unsafe\): runs only on metadata",
        ),
    ],
)
def test_bad_recipes(tmp_path: Path, data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_recipe(_write(tmp_path, data))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"stages": [{"dedup": {"by": "urll"}}]}, r"stages 1 \(dedup\): by 'urll'; valid: hash, url, image$"),
        # the SQL pushdown never reads `source`: it is refused at parse time, whatever the stage order
        (
            {"stages": [{"aesthetic": {"source": "bogus"}}, "dedup"]},
            r"stages 1 \(aesthetic\): source 'bogus'; valid: auto, column, model$",
        ),
        (
            {"stages": ["resolution", "language", {"watermark": {"source": "bogus"}}]},
            r"stages 3 \(watermark\): source 'bogus'; valid: auto, column, model$",
        ),
        (
            {"stages": [], "post_download": [{"resolution": {"min_sidee": 3}}]},
            r"post_download 1 \(resolution\): unknown parameter\(s\) min_sidee; accepted: min_side",
        ),
        (
            {"stages": [{"unsafe": {"max_score": float("nan")}}]},
            r"stages 1 \(unsafe\): max_score: expected a finite number, got nan$",
        ),
        ({"stages": [{"resolution": {"min_side": 1.5}}]}, r"min_side: expected an integer, got 1\.5$"),
        ({"stages": [{"caption": {"reject_junk": "yes"}}]}, r"reject_junk: expected true or false"),
        ({"stages": [], "dropped": "key"}, r"r\.yaml: dropped 'key'; valid: full, keys, none$"),
        ({"stages": "resolution"}, r"r\.yaml: stages: expected a list of values, got 'resolution'$"),
        ({"stages": [], "name": 3}, r"r\.yaml: name: expected a string, got 3$"),
    ],
)
def test_typos_and_wrong_choices_name_file_stage_and_field(tmp_path: Path, data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        load_recipe(_write(tmp_path, data))
    assert str(info.value).startswith(str(tmp_path / "r.yaml")) and "\n" not in str(info.value)


def test_bad_recipe_stops_curate_run_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = _write(tmp_path, {"stages": ["resolution", {"dedup": {"by": "urll"}}]})
    out = tmp_path / "run"
    args = ["curate", "run", recipe, "--input", str(tmp_path / "missing-input"), "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == f"t2iscope: error: {recipe}: stages 2 (dedup): by 'urll'; valid: hash, url, image\n"
    assert not out.exists()


def test_shipped_recipe_files_load() -> None:
    root = Path(__file__).resolve().parents[2]
    paths = [*sorted((root / "curate" / "recipes").glob("*.yaml")), root / "models" / "curate-sd-train.yaml"]
    for path in paths:
        again = recipe_from_dict(yaml.safe_load(load_recipe(str(path)).to_yaml()), "resolved.yaml")
        assert again.to_dict() == load_recipe(str(path)).to_dict()


def test_unknown_recipe_lists_builtins() -> None:
    with pytest.raises(ConfigError, match="built-ins: datacomp-basic"):
        load_recipe("no-such-recipe")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (
            {"stages": [{"resolution": {"min_side": 100}}, {"resolution": {"min_side": 512}}]},
            r"stages 2 \(resolution\): listed twice \(also stages 1\).*merge their parameters",
        ),
        (
            {"stages": ["validity", "caption", "validity"]},
            r"stages 3 \(validity\): listed twice \(also stages 1\)",
        ),
        (
            {"stages": ["dedup"], "post_download": ["dedup", {"dedup": {"by": "image"}}]},
            r"post_download 2 \(dedup\): listed twice \(also post_download 1\)",
        ),
        (
            {"stages": [{"watermark": {"max_score": -1}}]},
            r"stages 1 \(watermark\): max_score: expected a number >= 0 and <= 1, got -1$",
        ),
        ({"stages": [{"resolution": {"max_aspect_ratio": -1}}]}, r"max_aspect_ratio: expected a number >= 1"),
        ({"stages": [{"resolution": {"max_side": 0}}]}, r"max_side: expected an integer >= 1, got 0"),
        ({"stages": [{"resolution": {"min_side": -5}}]}, r"min_side: expected an integer >= 0, got -5"),
        ({"stages": [{"caption": {"min_words": -3}}]}, r"min_words: expected an integer >= 0 and <= 1001"),
        (
            {"stages": [{"caption": {"min_words": 5000}}]},
            r"min_words: expected an integer >= 0 and <= 1001, got 5000",
        ),
        (
            {"stages": [{"unsafe": {"max_score": 2}}]},
            r"\(unsafe\): max_score: expected a number >= 0 and <= 1",
        ),
        (
            {"stages": [{"language": {"min_score": 5}}]},
            r"\(language\): min_score: expected a number >= 0 and <= 1",
        ),
        (
            {"stages": [{"aesthetic": {"source": "model"}}]},
            r"r\.yaml: stages 1 \(aesthetic\): source 'model' needs images; list it under post_download$",
        ),
        (
            {"stages": [{"domain": {"drop": ["*.pinimg.com"]}}]},
            r"r\.yaml: stages 1 \(domain\): drop\[0\]: '\*\.pinimg\.com' is not a domain name$",
        ),
    ],
)
def test_recipe_semantics_and_ranges_are_refused_when_read(tmp_path: Path, data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        load_recipe(_write(tmp_path, data))
    assert str(info.value).startswith(str(tmp_path / "r.yaml")) and "\n" not in str(info.value)


def test_duplicate_yaml_key_stops_curate_run_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("stages:\n  - resolution: {min_side: 512, min_side: 10}\n", encoding="utf-8")
    out = tmp_path / "run"
    args = ["curate", "run", str(recipe), "--input", str(tmp_path / "missing-input"), "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    duplicate = "not valid YAML at line 2: duplicate key 'min_side' (first at line 2)"
    assert err == f"t2iscope: error: {recipe}: {duplicate}\n"
    assert not out.exists()


@pytest.mark.parametrize(
    ("keep", "match"),
    [
        (["EN"], r"stages 1 \(language\): keep\[0\]: 'EN' is not a language code the detector answers "),
        (
            ["en", "english"],
            r"keep\[1\]: 'english' is not a language code the detector answers \(lower-case ISO",
        ),
        (["en-US"], r"keep\[0\]: 'en-US' is not a language code"),
    ],
)
def test_language_keep_names_detector_labels(tmp_path: Path, keep: list, match: str) -> None:
    # such a keep used to drop every row silently: the detector never answers 'EN' or 'english'
    with pytest.raises(ConfigError, match=match):
        load_recipe(_write(tmp_path, {"stages": [{"language": {"keep": keep}}]}))
    with pytest.raises(ConfigError, match=match.replace("stages 1", "post_download 1")):
        load_recipe(_write(tmp_path, {"stages": [], "post_download": [{"language": {"keep": keep}}]}))


def test_language_keep_of_detector_labels_loads(tmp_path: Path) -> None:
    recipe = load_recipe(_write(tmp_path, {"stages": [{"language": {"keep": ["en", "de", "zh", "yue"]}}]}))
    (stage,) = [s for s in recipe.stages if s.name == "language"]
    assert stage.params["keep"] == ["en", "de", "zh", "yue"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "stages: [{unsafe: {max_score: .nan}}]",
            "stages 1 (unsafe): max_score: expected a finite number, got nan",
        ),
        (
            "stages: [{aesthetic: {min_score: .inf}}]",
            "stages 1 (aesthetic): min_score: expected a finite number",
        ),
        (
            "stages: [{watermark: {max_score: -.inf}}]",
            "stages 1 (watermark): max_score: expected a finite number",
        ),
        (
            "stages: [{resolution: {min_side: -5}}]",
            "stages 1 (resolution): min_side: expected an integer >= 0",
        ),
        ("stages: [{unsafe: {max_score: -0.5}}]", "stages 1 (unsafe): max_score: expected a number >= 0"),
        ("stages: [{caption: {min_words: -1}}]", "stages 1 (caption): min_words: expected an integer >= 0"),
        ("stages: [resolution, {dedup: {by: urll}}]", "stages 2 (dedup): by 'urll'; valid: hash, url, image"),
    ],
)
def test_bad_values_stop_curate_run_on_real_input_before_its_folder_exists(
    tmp_path: Path, write_shards, capsys: pytest.CaptureFixture[str], text: str, needle: str
) -> None:
    """Issue 14 item 12: NaN/inf/negative thresholds and a misspelled choice, with a valid --input."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text + "\n")
    out = tmp_path / "run"
    src = write_shards(laion_table(5))
    assert main(["curate", "run", str(recipe), "--input", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"t2iscope: error: {recipe}: {needle}") and err.count("\n") == 1
    assert not out.exists()
