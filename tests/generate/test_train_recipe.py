"""Training recipe YAML: overrides merge onto the default or quick recipe, then one strict parse."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from t2iscope.cli import main
from t2iscope.errors import ConfigError
from t2iscope.generate.train.recipe import QUICK, Recipe, load_recipe


def _recipe(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_overrides_merge_onto_the_base_and_convert_to_the_field_types(tmp_path: Path) -> None:
    path = _recipe(tmp_path, "seed: 3\nunet: {lr: 1, channels: [8, 8, 8]}\nmeasure: {cfg_scales: [2, 7.5]}\n")
    recipe = load_recipe(path, quick=True)
    assert recipe.seed == 3 and recipe.unet.channels == (8, 8, 8) and recipe.measure.cfg_scales == (2.0, 7.5)
    assert recipe.unet.lr == 1.0 and isinstance(recipe.unet.lr, float)  # an integer is a valid float
    assert recipe.unet.steps == QUICK.unet.steps and recipe.clip == QUICK.clip  # the rest stays quick
    assert load_recipe(_recipe(tmp_path, ""), quick=False) == Recipe()  # an empty file overrides nothing


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("unet: {stepz: 7}\n", "r.yaml: unet: unknown key(s) stepz; accepted: steps, batch, lr"),
        (
            "untet: {steps: 7}\n",
            "r.yaml: unknown key(s) untet; accepted: seed, clip, heads, vae",
        ),
        (
            "unet: {prediction_type: sample}\n",
            "r.yaml: unet.prediction_type 'sample'; valid: epsilon, v_",
        ),
        ("unet: {steps: many}\n", "r.yaml: unet.steps: expected an integer, got 'many'"),
        ("unet: {steps: 7.0}\n", "r.yaml: unet.steps: expected an integer, got 7.0"),
        ("vae: {mid_attention: 1}\n", "r.yaml: vae.mid_attention: expected true or false, got 1"),
        ("vae: {channels: [16, x]}\n", "r.yaml: vae.channels[1]: expected an integer, got 'x'"),
        ("clip: {lr: .nan}\n", "r.yaml: clip.lr: expected a finite number, got nan"),
        ("heads: 5\n", "r.yaml: heads: expected a mapping, got 5"),
        ("- unet\n", "r.yaml: expected a mapping, got ['unet']"),
        ("unet: {steps: [\n", "r.yaml: not valid YAML at line 2"),
    ],
)
def test_bad_training_recipes_name_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_recipe(_recipe(tmp_path, text))
    assert str(info.value).startswith(f"{tmp_path}/{message}") and "\n" not in str(info.value)


def test_bad_training_recipe_stops_train_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _recipe(tmp_path, "unet: {prediction_type: v-prediction}\n")
    out = tmp_path / "models"
    assert main(["generate", "train", "unet", "--recipe", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"t2iscope: error: {path}: unet.prediction_type 'v-prediction'; valid: epsilon, v_prediction\n"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clip: {steps: -1}\n", "clip.steps: expected an integer >= 0, got -1"),
        ("clip: {batch: 0}\n", "clip.batch: expected an integer >= 1, got 0"),
        ("unet: {caption_dropout: 5.0}\n", "unet.caption_dropout: expected a number >= 0 and < 1, got 5.0"),
        ("unet: {caption_dropout: 1}\n", "unet.caption_dropout: expected a number >= 0 and < 1, got 1"),
        ("vae: {channels: [16, 0]}\n", r"vae.channels[1]: expected an integer >= 1, got 0"),
        (
            "clip: {steps: 3}\nclip: {batch: 8}\n",
            "not valid YAML at line 2: duplicate key 'clip' (first at line 1)",
        ),
    ],
)
def test_training_recipe_ranges_and_duplicate_keys(tmp_path: Path, text: str, message: str) -> None:
    path = _recipe(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_recipe(path)
    assert str(info.value) == f"{path}: {message}"


# Recipes that used to pass the read and then crash inside the towers (IndexError, an assertion,
# a ValueError) after OUT/_train was made: refused when the file is read, naming the section.
_CRASHING = [
    ("clip: {steps: 1, vision_layers: []}\n", "clip.vision_layers"),
    ("clip: {steps: 1, vision_layers: [1, 1]}\n", "clip"),
    ("clip: {steps: 1, text_heads: 5}\n", "clip"),
    ("clip: {steps: 1, vision_width: 1}\n", "clip"),
    ("vae: {steps: 1, channels: []}\n", "vae.channels"),
    ("vae: {steps: 1, channels: [16, 24]}\n", "vae"),
    ("unet: {steps: 1, channels: []}\n", "unet.channels"),
    ("unet: {steps: 1, channels: [16, 16]}\n", "unet"),
    ("unet: {steps: 1, attention_head_dim: 5}\n", "unet"),
    ("measure: {languages: []}\n", "measure.languages"),
    ("measure: {cfg_scales: []}\n", "measure.cfg_scales"),
]


@pytest.mark.parametrize(("text", "field"), _CRASHING)
def test_recipes_the_towers_would_refuse_are_refused_when_read(tmp_path: Path, text: str, field: str) -> None:
    path = _recipe(tmp_path, text)
    for quick in (False, True):
        with pytest.raises(ConfigError) as info:
            load_recipe(path, quick=quick)
        assert str(info.value).startswith(f"{path}: {field}") and "\n" not in str(info.value)


@pytest.mark.parametrize(("text", "field"), _CRASHING[:5:2])
def test_crashing_recipe_stops_train_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, field: str
) -> None:
    path = _recipe(tmp_path, text)
    out = tmp_path / "models"
    assert main(["generate", "train", "clip", "--quick", "--recipe", str(path), "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith(f"t2iscope: error: {path}: {field}")
    assert not out.exists()


def test_default_and_quick_recipes_pass_the_cross_field_rules() -> None:
    assert Recipe() == load_recipe(None) and load_recipe(None, quick=True) == QUICK
    for recipe in (Recipe(), QUICK):
        for section in (recipe.clip, recipe.vae, recipe.unet):
            assert type(section)(**vars(section)) == section  # __post_init__ accepts them


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clip: {text_heads: 5}\n", "clip: text_width 64 must be divisible by text_heads 5"),
        (
            "clip: {vision_layers: [1, 1]}\n",
            "clip: vision_layers needs 4 entries (one per ResNet stage), got 2",
        ),
        (
            "unet: {attention_levels: [true]}\n",
            "unet: attention_levels needs one entry per channels entry (3), got 1",
        ),
        ("unet: {attention_head_dim: 48}\n", "unet: channels 64 must be divisible by attention_head_dim 48"),
        (
            "vae: {channels: [16, 24]}\n",
            "vae: channels 24 must be divisible by 16 (the norm groups: min(32, smallest channels))",
        ),
    ],
)
def test_cross_field_rules_in_plain_words(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.split(": ", 1)[1].replace("(", r"\(").replace(")", r"\)")):
        section = text.split(":")[0]
        cls = type(getattr(Recipe(), section))
        cls(**{**vars(getattr(Recipe(), section)), **yaml.safe_load(text)[section]})
    path = _recipe(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_recipe(path)
    assert str(info.value) == f"{path}: {message}"
