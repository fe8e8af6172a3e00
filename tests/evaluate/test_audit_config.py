"""AUDIT.yaml through the one config parser: typos, wrong types and wrong choices stop before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from t2iscope.cli import main
from t2iscope.errors import ConfigError
from t2iscope.evaluate.config import load_config, parse_config

WATERMARK = {"sources": ["skimage"], "max_images": 2, "attacks": {"blur": [1, 2.5]}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"audits": {"watermark": {**WATERMARK, "max_images": "four"}}},
            "a.yaml: audits.watermark.max_images: expected an integer, got 'four'",
        ),
        (
            {"audits": {"watermark": {**WATERMARK, "sources": "skimage"}}},
            "a.yaml: audits.watermark.sources: expected a list of strings, got 'skimage'",
        ),
        (
            {"audits": {"watermark": {**WATERMARK, "attacks": {"jpeg": [50, float("nan")]}}}},
            "a.yaml: audits.watermark.attacks.jpeg[1]: expected a finite number, got nan",
        ),
        (
            {"audits": {"watermark": {**WATERMARK, "fpr_target": "1%"}}},
            "a.yaml: audits.watermark.fpr_target: expected a number, got '1%'",
        ),
        (
            {"audits": {"watermark": {**WATERMARK, "grid": "readmy"}}},
            "a.yaml: audits.watermark.grid 'readmy'; valid: full, readme",
        ),
        (
            {"audits": {"domains": {"top": 20.0}}},
            "a.yaml: audits.domains.top: expected an integer, got 20.0",
        ),
        ({"audits": {"domains": []}}, "a.yaml: audits.domains: expected a mapping, got []"),
        ({"audits": {"domians": {}}}, "a.yaml: audits.domians: unknown audit 'domians'; valid: culture"),
        ({"audits": {"limbs": {}}, "inputs": {"world": 3}}, "a.yaml: inputs.world: expected a string"),
        (
            {"audits": {"limbs": {}}, "inputs": {"world": ["w1", "w2"]}},
            "a.yaml: inputs.world: expected one path",
        ),
        ({"audits": {"limbs": {}}, "seed": 1.5}, "a.yaml: seed: expected an integer, got 1.5"),
        ({"audits": {"limbs": {}}, "judge": "oracle"}, "a.yaml: judge: unknown judge 'oracle'; valid:"),
        ({"audits": {"limbs": {}}, "judge_options": [1]}, "a.yaml: judge_options: expected a mapping"),
        ({"audit": {"limbs": {}}}, "a.yaml: unknown key(s) audit; accepted: audits, judge"),
        ([1], "a.yaml: expected a mapping, got [1]"),
    ],
)
def test_audit_config_errors_are_one_line_naming_file_and_field(data: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "a.yaml")
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_audit_params_are_kept_as_written() -> None:
    """audit.resolved.yaml repeats the user's values: validation converts nothing."""
    cfg = parse_config({"audits": {"watermark": WATERMARK, "domains": None}, "inputs": {"world": ["w"]}})
    assert cfg.to_dict()["audits"] == {"watermark": WATERMARK, "domains": {}}
    assert cfg.inputs.world == Path("w") and cfg.inputs.generation == ()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"audits": {"domains": {"tpo": 5}}}, "audits.domains: unknown parameter(s) tpo; accepted: top"),
        (
            {"audits": {"limbs": {"max_imgs": 4}}},
            "audits.limbs: unknown parameter(s) max_imgs; accepted: (none)",
        ),
        ({"audits": {"limbs": {}}, "judge": "wrold"}, "judge: unknown judge 'wrold'; valid: "),
    ],
)
def test_bad_audit_config_stops_evaluate_run_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: dict, message: str
) -> None:
    config = tmp_path / "AUDIT.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    out = tmp_path / "audit"
    assert main(["evaluate", "run", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"t2iscope: error: {config}: {message}") and err.count("\n") == 1
    assert not out.exists()


def test_unreadable_audit_config_is_one_line(tmp_path: Path) -> None:
    latin = tmp_path / "AUDIT.yaml"
    latin.write_bytes("judge: w\xf6rld\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"AUDIT\.yaml: not UTF-8 text"):
        load_config(latin)
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such file"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"audits": {"domains": {"top": -5}}},
            "A.yaml: audits.domains.top: expected an integer >= 1, got -5",
        ),
        (
            {"audits": {"culture": {"n_boot": -1}}},
            "A.yaml: audits.culture.n_boot: expected an integer >= 1 and <= 100000, got -1",
        ),
        (
            {"audits": {"watermark": {"fpr_target": 1.5}}},
            "A.yaml: audits.watermark.fpr_target: expected a number > 0 and < 1, got 1.5",
        ),
        (
            {"audits": {"watermark": {"max_images": -1}}},
            "A.yaml: audits.watermark.max_images: expected an integer >= 1, got -1",
        ),
        (  # a strength out of the attack's range: resize x1000 would need terabytes, not a result
            {"audits": {"watermark": {"attacks": {"resize": [1000]}}}},
            "A.yaml: audits.watermark.attacks.resize[0]: expected a number from 0.05 to 4 for resize, "
            "got 1000",
        ),
        (
            {"audits": {"watermark": {"attacks": {"regen_vae": [0.5]}}}},
            "A.yaml: audits.watermark.attacks.regen_vae[0]: expected a whole number from 1 to 10 for "
            "regen_vae, got 0.5",
        ),
        (
            {"audits": {"watermark": {"attacks": {}}}},
            "A.yaml: audits.watermark.attacks: empty: name at least one attack (or leave it out for the "
            "default grid)",
        ),
        (
            {"audits": {"watermark": {"methods": []}}},
            "A.yaml: audits.watermark.methods: empty: name at least one (or leave it out for the default)",
        ),
        (
            {"audits": {"watermark": {"methods": ["dwtdct"]}}},
            "A.yaml: audits.watermark.methods[0] 'dwtdct'; valid: dwtDct, dwtDctFixed, dwtDctSvd, rivaGan, "
            "treering",
        ),
        (
            {"judge": "clip", "judge_options": {"clip_checkpont": "x"}, "audits": {"domains": {}}},
            "A.yaml: judge_options: unknown parameter(s) clip_checkpont; "
            "accepted: clip_config, clip_checkpoint, device, legs_model, negative_labels",
        ),
        (
            {"judge": "clip", "judge_options": {"device": 5}, "audits": {"domains": {}}},
            "A.yaml: judge_options.device: expected a string, got 5",
        ),
        (
            {"judge": "world", "judge_options": {"foo": 1}, "audits": {"domains": {}}},
            "A.yaml: judge_options: unknown parameter(s) foo; accepted: (none)",
        ),
    ],
)
def test_audit_ranges_choices_and_judge_options_are_checked_when_read(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "A.yaml")
    assert str(info.value) == message


def test_watermark_audit_methods_are_the_watermark_modules_methods() -> None:
    import typing

    from t2iscope.config import param_hints
    from t2iscope.evaluate.audits import AUDITS
    from t2iscope.generate.watermark import METHODS

    hint = param_hints(AUDITS.get("watermark").fn, data_args=1)["methods"]
    assert typing.get_args(typing.get_args(hint)[0]) == METHODS


def test_duplicate_audit_key_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "AUDIT.yaml"
    config.write_text("audits: {domains: {top: 5}, domains: {top: 7}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"AUDIT\.yaml: not valid YAML at line 1: duplicate key 'domains'"):
        load_config(config)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"attacks": {"jpeg": [90], "bogus": [1.0]}},
            "a.yaml: audits.watermark.attacks.bogus: unknown attack 'bogus'; valid: adv_embed, blur, "
            "brightness, combo_all, combo_degradation, combo_geometric, combo_photometric, contrast, crop, "
            "jpeg, mask, noise, none, overlay, regen_diffusion, regen_vae, resize, resize_restore, rotate",
        ),
        (
            {"sources": ["nonexistent/folder"]},
            "a.yaml: audits.watermark.sources[0]: nonexistent/folder: image folder not found "
            "(a source is skimage, world, generated or a folder)",
        ),
        ({"size": 1}, "a.yaml: audits.watermark.size: expected an integer >= 256 and <= 2048, got 1"),
    ],
)
def test_watermark_params_stop_evaluate_run_before_any_audit_writes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    params: dict,
    message: str,
) -> None:
    """Checked when AUDIT.yaml is read: not after domains.parquet, not an all-NaN table."""
    import pandas as pd

    from t2iscope import fileio

    monkeypatch.chdir(tmp_path)
    fileio.write_parquet(tmp_path / "dc.parquet", pd.DataFrame({"URL": ["https://a.example/x.jpg"]}))
    config = {"inputs": {"data": ["dc.parquet"]}, "audits": {"domains": {}, "watermark": params}}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(config))
    code = main(["evaluate", "run", "a.yaml", "--out", "A"])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"t2iscope: error: {message}"
    assert not (tmp_path / "A").exists()
