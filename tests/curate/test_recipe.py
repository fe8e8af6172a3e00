"""Recipes: built-ins load; every mistake is a ConfigError naming the file and the stage."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from t2iscope.curate.recipe import builtin_names, load_recipe, recipe_from_dict
from t2iscope.errors import ConfigError


def _write(tmp_path: Path, data: object) -> str:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_builtins_are_the_four_named_in_the_issue() -> None:
    assert builtin_names() == [
        "datacomp-basic",
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
        ({"stages": [{"resolution": {"min_side": "big"}}]}, r"min_side='big' is not int"),
        ({"stages": [{"language": {"keep": "en"}}]}, r"keep='en' is not"),
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


def test_unknown_recipe_lists_builtins() -> None:
    with pytest.raises(ConfigError, match="built-ins: datacomp-basic"):
        load_recipe("no-such-recipe")
