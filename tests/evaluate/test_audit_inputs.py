"""Inputs an audit cannot run without are checked for every audit before anything is written.

Each audit's record declares them (``needs`` in ``AUDITS.audit``); ``run_audits`` checks them all,
so a missing input is one line naming the config file and the audit, not a failure mid-run after
earlier audits wrote their tables.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import yaml

from t2iscope import fileio
from t2iscope.cli import main
from t2iscope.errors import ConfigError
from t2iscope.evaluate.audits import AUDITS
from t2iscope.evaluate.config import parse_config
from t2iscope.evaluate.context import INPUT_KINDS, AuditContext, Inputs
from t2iscope.evaluate.runner import run_audits


def data_parquet(path: Path, **columns: list[str]) -> Path:
    fileio.write_parquet(path, pd.DataFrame(columns or {"URL": ["https://a.example/x.jpg"]}))
    return path


def run_cli(tmp_path: Path, config: dict, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(config))
    code = main(["evaluate", "run", "a.yaml", "--out", "A"])
    return code, capsys.readouterr().err.strip()


def test_every_declared_input_is_an_inputs_field() -> None:
    fields = {f.name for f in dataclasses.fields(Inputs)}
    assert set(INPUT_KINDS) == fields
    for name in AUDITS:
        for group in AUDITS.get(name).needs:
            assert group and set(group) <= fields, (name, group)


@pytest.mark.parametrize("name", [n for n in AUDITS if AUDITS.get(n).needs])
def test_declared_needs_match_what_the_audit_requires(name: str) -> None:
    """An audit that declares needs fails on empty inputs with the same kind of error by itself."""
    with pytest.raises(ConfigError, match=r"needs inputs\."):
        AUDITS.get(name).fn(AuditContext(Inputs()))


def test_missing_input_stops_before_any_audit_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data_parquet(tmp_path / "dc.parquet")
    config = {"inputs": {"data": ["dc.parquet"]}, "audits": {"domains": {}, "language_mix": {}}}
    code, err = run_cli(tmp_path, config, capsys)
    assert code == 2
    assert err == "t2iscope: error: a.yaml: audits.language_mix: needs inputs.curation (a curate run folder)"
    assert not (tmp_path / "A").exists()  # no domains.parquet, no audit.resolved.yaml


def test_one_of_inputs_and_judged_audits(tmp_path: Path) -> None:
    config = parse_config({"audits": {"watermark": {"sources": ["skimage"]}, "domains": {}}}, "a.yaml")
    with pytest.raises(ConfigError) as exc:
        run_audits(config, tmp_path / "A")
    assert str(exc.value) == (
        "a.yaml: audits.domains: needs one of inputs.data (parquet with a URL column), "
        "inputs.world (a world folder), inputs.curation (a curate run folder)"
    )
    # a judged audit is refused before its judge is built (a bad judge option is not reached)
    config = parse_config(
        {"audits": {"limbs": {}}, "judge": "clip", "judge_options": {"clip_checkpoint": "nowhere.pt"}},
        "b.yaml",
    )
    with pytest.raises(ConfigError, match=r"^b\.yaml: audits\.limbs: needs inputs\.generation \("):
        run_audits(config, tmp_path / "B")
    assert not (tmp_path / "A").exists() and not (tmp_path / "B").exists()


def test_data_without_url_column_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data_parquet(tmp_path / "dc.parquet", caption=["a"])
    code, err = run_cli(tmp_path, {"inputs": {"data": ["dc.parquet"]}, "audits": {"domains": {}}}, capsys)
    assert code == 1
    assert err.startswith("t2iscope: error: dc.parquet: needs one of the columns URL, url; has caption")
    # a folder of shards is named by the folder that holds them
    for i in range(2):
        data_parquet(tmp_path / "shards" / f"part-{i}.parquet", caption=["a"])
    code, err = run_cli(tmp_path, {"inputs": {"data": ["shards"]}, "audits": {"domains": {}}}, capsys)
    assert code == 1 and err.startswith("t2iscope: error: shards: needs one of the columns")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "generation",
            ["gen/nope"],
            "inputs.generation[0]: gen/nope/manifest.parquet: generation manifest not found",
        ),
        ("curation", ["nope"], "inputs.curation[0]: nope: curation run folder not found"),
        (
            "curation",
            ["world"],
            "inputs.curation[0]: world: not a curation run (no kept/ or dropped/ parquet)",
        ),
        ("world", "nope", "inputs.world: nope/truth: not found"),
        ("data", ["dc.parquet", "nope.parquet"], "inputs.data[1]: nope.parquet: not found"),
    ],
)
def test_input_paths_are_checked_before_anything_is_written(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    field: str,
    value: object,
    message: str,
) -> None:
    """A configured path that is missing or the wrong kind is the config's error: exit 2, nothing written."""
    monkeypatch.chdir(tmp_path)
    data_parquet(tmp_path / "dc.parquet")
    (tmp_path / "world" / "truth").mkdir(parents=True)
    data_parquet(tmp_path / "world" / "truth" / "part-00000.parquet")
    inputs = {"data": ["dc.parquet"], "world": "world", field: value}
    code, err = run_cli(tmp_path, {"inputs": inputs, "audits": {"domains": {}}}, capsys)
    assert code == 2
    assert err == f"t2iscope: error: a.yaml: {message}"
    assert not (tmp_path / "A").exists()


def test_loaders_and_preflight_share_one_check_per_input(tmp_path: Path) -> None:
    """The lazy loaders raise the preflight's message (without the config's location) via the API."""
    from t2iscope.errors import DataError
    from t2iscope.evaluate.context import load_manifest

    with pytest.raises(DataError, match=r"manifest\.parquet: generation manifest not found$"):
        load_manifest(tmp_path)
    with pytest.raises(
        ConfigError, match=r"^x\.yaml: inputs\.generation\[0\]: .*generation manifest not found$"
    ):
        Inputs(generation=(tmp_path,)).check("x.yaml")
