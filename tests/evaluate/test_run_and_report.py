"""AUDIT.yaml validation, `t2iscope evaluate run/report` end to end, and the self-contained report."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from t2iscope import fileio
from t2iscope.cli import main
from t2iscope.errors import ConfigError, DataError
from t2iscope.evaluate.config import load_config, parse_config
from t2iscope.evaluate.context import load_manifest
from t2iscope.evaluate.runner import checked_context, run_audits


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"audits": {"domains": {}}, "judgee": "world"}, r"a\.yaml: unknown key\(s\) judgee"),
        ({"audits": {"bias": {}}}, "unknown audit 'bias'; valid: culture, domains"),
        ({"audits": {"domains": {"topp": 3}}}, r"a\.yaml: audits\.domains: unknown parameter\(s\) topp"),
        ({"audits": {}}, "name at least one"),
        ({"audits": {"limbs": {}}, "judge": "oracle"}, "unknown judge 'oracle'"),
        ({"audits": {"limbs": {}}, "inputs": {"generatoin": "g"}}, r"inputs: unknown key\(s\) generatoin"),
        ({"audits": {"limbs": {}}, "seed": "x"}, "seed: expected an integer"),
        # absurd sizes are refused when read, not met as a MemoryError mid-run (issue 14 item 10's kind)
        ({"audits": {"limbs": {}}, "seed": -1}, r"a\.yaml: seed: expected an integer >= 0, got -1"),
        (
            {"audits": {"culture": {"n_boot": 10**12}}},
            r"culture\.n_boot: expected an integer >= 1 and <= 100000",
        ),
        (
            {"audits": {"watermark": {"size": 10**5}}},
            r"watermark\.size: expected an integer >= 256 and <= 2048",
        ),
    ],
)
def test_config_errors_name_file_and_field(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data, "a.yaml")


def test_shipped_examples_parse() -> None:
    root = Path(__file__).resolve().parents[2] / "evaluate" / "audits"
    for path in root.glob("*.yaml"):
        assert load_config(path).audits


def test_bad_manifests_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="manifest not found"):
        load_manifest(tmp_path)
    fileio.write_parquet(tmp_path / "manifest.parquet", pd.DataFrame({"prompt": []}))
    with pytest.raises(DataError, match="missing column"):
        load_manifest(tmp_path)
    cols = ["prompt_id", "prompt", "language", "seed", "steps", "cfg_scale", "sampler", "image_path"]
    fileio.write_parquet(
        tmp_path / "manifest.parquet", pd.DataFrame({c: pd.Series([], dtype=str) for c in cols})
    )
    with pytest.raises(DataError, match="no rows"):
        load_manifest(tmp_path)


def test_run_and_report_end_to_end(
    gen_dir: Path, curation_run: Path, world_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write(
        tmp_path / "audit.yaml",
        {
            "judge": "world",
            "inputs": {"generation": str(gen_dir), "curation": [str(curation_run)], "world": str(world_dir)},
            "audits": {
                "domains": {},
                "language_mix": {},
                "limbs": {},
                "culture": {"n_boot": 100},
                "watermark": {
                    "sources": ["world"],
                    "methods": ["dwtDctFixed"],
                    "max_images": 2,
                    "attacks": {"none": [0], "jpeg": [50]},
                    "null_images": 8,  # not the default 1000: 2 + 8 unmarked images give every row
                },
            },
        },
    )
    out = tmp_path / "A"
    assert main(["evaluate", "run", str(cfg), "--out", str(out)]) == 0
    for name in ("domains", "language_mix", "limbs", "culture", "watermark"):
        t = pd.read_parquet(out / f"{name}.parquet")
        assert {"audit", "judge", "metric", "value", "n", "ci_low", "ci_high"} <= set(t.columns)
        assert (t["audit"] == name).all() and len(t) > 0
    assert (out / "judgments.parquet").is_file() and (out / "audit.resolved.yaml").is_file()
    assert main(["evaluate", "report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "Limb failures" in page and "Watermark robustness" in page and "data:image/png;base64," in page
    assert "Counted skips" in page and "image missing" in page  # skips are shown, not dropped
    assert not re.search(r"""(src|href)=["']https?://""", page)  # self-contained: nothing fetched
    assert "<script" not in page
    # findings first: the judge's validity opens the page; with no validity audit nothing judged is a finding
    assert (
        page.index("<h2>Judge validity</h2>")
        < page.index("Headline findings")
        < page.index("<section id='domains'>")
    )
    assert "no validity audit in this run; images: render" in page
    assert "<details><summary>All " in page and "<details open" not in page  # full tables collapsed
    assert not re.search(r"\b(?:[2-9]|\d{2,})\.000\b", page.split("</style>")[1])  # no count as 400.000


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path / "a.yaml", {"audits": {"limbs": {}}, "inputs": {"generation": str(tmp_path)}})
    assert (
        main(
            [
                "evaluate",
                "run",
                str(cfg),
                "--out",
                str(tmp_path / "o"),
                "--judge",
                "clip",
                "--clip-config",
                "x.json",
                "--clip-checkpoint",
                str(tmp_path / "w.pt"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("t2iscope: error:") and "\n" not in err and "w.pt" in err
    assert main(["evaluate", "report", str(tmp_path)]) == 1
    assert "no audit run here (no run.json)" in capsys.readouterr().err


@pytest.mark.parametrize("reference", ["klingon", "../x", "", "en de"])
def test_a_reference_language_that_is_no_code_is_refused_when_read(reference: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config({"audits": {"language_bias": {"reference": reference}}}, "a.yaml")
    problem = f"a language is a code like en, de or zh-Hans, got {reference!r}"
    assert str(exc.value) == f"a.yaml: audits.language_bias.reference: {problem}"


def test_a_reference_language_the_generations_lack_is_refused_before_any_work(
    gen_dir: Path, tmp_path: Path
) -> None:
    inputs = {"generation": str(gen_dir)}
    cfg = parse_config({"inputs": inputs, "audits": {"language_bias": {"reference": "fr"}}}, "a.yaml")
    with pytest.raises(ConfigError) as exc:
        run_audits(cfg, tmp_path / "A")
    assert str(exc.value) == (
        "a.yaml: audits.language_bias.reference: no generated image has language 'fr' (they have de, en, zh)"
    )
    assert not (tmp_path / "A").exists()
    ok = parse_config({"inputs": inputs, "audits": {"language_bias": {"reference": "de"}}}, "a.yaml")
    checked_context(ok, tmp_path / "A")  # a language the generations have passes
