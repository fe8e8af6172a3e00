"""Suite runs: manifest contract, PNG metadata, resume, and survival of kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from t2iscope.errors import ConfigError
from t2iscope.generate.output import OutputOptions
from t2iscope.generate.pnginfo import parse_parameters, read_parameters
from t2iscope.generate.run_suite import MANIFEST, run_suite
from t2iscope.generate.suites import load_suite

CONTRACT = [  # docs/architecture.md, "Generation manifest"
    "suite", "prompt_id", "prompt", "negative_prompt", "language", "tags", "seed", "steps", "cfg_scale",
    "sampler", "width", "height", "mode", "strength", "model_id", "image_path", "watermark_method",
    "watermark_payload", "elapsed_s",
]  # fmt: skip


def _suite_file(tmp_path, seeds: str = "0-1", name: str = "mini") -> str:
    data = {
        "name": name,
        "defaults": {"steps": 2, "sampler": "DPM++ 2M", "negative_prompt": "blurry"},
        "grid": {"seeds": seeds},
        "prompts": [
            {"id": "red-dog", "text": "a red dog", "tags": ["dog", "red"]},
            {"id": "cup", "translations": {"en": "a cup", "de": "eine Tasse"}, "tags": ["cup"]},
        ],
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


def test_manifest_contract_and_resume(tmp_path, tiny_model):
    suite = load_suite(_suite_file(tmp_path))
    out = tmp_path / "run"
    summary = run_suite(suite, out, tiny_model, batch_size=4)
    assert (summary.total, summary.generated, summary.skipped) == (6, 6, 0)
    table = pq.read_table(out / MANIFEST)
    assert table.column_names[: len(CONTRACT)] == CONTRACT
    assert {"output_scale", "key"} <= set(table.column_names)
    rows = table.to_pylist()
    assert [r["language"] for r in rows].count("de") == 2
    for row in rows:
        assert row["mode"] == "txt2img" and row["strength"] is None
        assert row["watermark_method"] == "dwtDct" and row["watermark_payload"] == "StableDiffusionV1"
        assert (row["width"], row["height"], row["output_scale"]) == (64, 64, 4)
        info = parse_parameters(read_parameters(out / row["image_path"]))
        assert info["Seed"] == row["seed"] and info["prompt"] == row["prompt"]
        assert info["negative_prompt"] == "blurry"
    assert (out / "suite.yaml").is_file() and (out / "run.json").is_file()
    # rerun: nothing to do, and the model is not even loaded
    again = run_suite(suite, out, lambda: pytest.fail("model loaded for a finished suite"))
    assert (again.generated, again.skipped) == (0, 6)
    # a lost image is regenerated, the rest skipped
    (out / rows[1]["image_path"]).unlink()
    assert run_suite(suite, out, tiny_model).generated == 1
    assert pq.read_table(out / MANIFEST).num_rows == 6


def test_limit_and_no_watermark(tmp_path, tiny_model):
    suite = load_suite(_suite_file(tmp_path))
    summary = run_suite(suite, tmp_path / "run", tiny_model, limit=2, output=OutputOptions(watermark=None))
    rows = pq.read_table(summary.manifest).to_pylist()
    assert len(rows) == 2
    assert rows[0]["watermark_method"] is None and rows[0]["output_scale"] == 1
    with Image.open(tmp_path / "run" / rows[0]["image_path"]) as im:
        assert im.size == (64, 64)


def test_out_folder_of_another_suite_is_refused(tmp_path, tiny_model):
    run_suite(load_suite(_suite_file(tmp_path)), tmp_path / "run", tiny_model, limit=1)
    other = load_suite(_suite_file(tmp_path, name="other"))
    with pytest.raises(ConfigError, match="holds suite 'mini'"):
        run_suite(other, tmp_path / "run", tiny_model)


def test_resumes_after_kill_9(tmp_path, tiny_sd_path, tiny_model):
    suite_path = _suite_file(tmp_path, seeds="0-3")  # 12 images
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "t2iscope.cli", "generate", "suite", suite_path, "--out", str(out)]
    cmd += ["--model", str(tiny_sd_path), "--device", "cpu", "--batch-size", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while not (out / MANIFEST).exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    before = pq.read_table(out / MANIFEST).to_pylist()
    assert before and all((out / r["image_path"]).is_file() for r in before)
    for row in before:
        with Image.open(out / row["image_path"]) as im:
            im.load()
    summary = run_suite(load_suite(suite_path), out, tiny_model, batch_size=8)
    assert summary.skipped >= len(before)
    assert summary.skipped + summary.generated == 12
    assert pq.read_table(out / MANIFEST).num_rows == 12
    assert not list(out.glob("**/.*.tmp"))
