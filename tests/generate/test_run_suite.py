"""Suite runs: manifest contract, PNG metadata, resume, and survival of kill -9."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from PIL import Image

from t2iscope.errors import ConfigError, DataError
from t2iscope.generate.output import OutputOptions
from t2iscope.generate.pnginfo import parse_parameters, read_parameters
from t2iscope.generate.run_suite import MANIFEST, run_suite
from t2iscope.generate.seeds import ImageNoise
from t2iscope.generate.suites import expand, load_suite
from t2iscope.generate.treering import TreeRingKey
from t2iscope.locks import LOCK_NAME

CONTRACT = [  # docs/architecture.md, "Generation manifest"
    "suite", "prompt_id", "prompt", "negative_prompt", "language", "tags", "seed", "steps", "cfg_scale",
    "sampler", "width", "height", "mode", "strength", "model_id", "image_path", "watermark_method",
    "watermark_payload", "elapsed_s",
]  # fmt: skip


def _suite_file(tmp_path, seeds: object = "0-1", name: str = "mini", **changes: object) -> str:
    data = {
        "name": name,
        "defaults": {"steps": 2, "sampler": "DPM++ 2M", "negative_prompt": "blurry"},
        "grid": {"seeds": seeds},
        "prompts": [
            {"id": "red-dog", "text": "a red dog", "tags": ["dog", "red"]},
            {"id": "cup", "translations": {"en": "a cup", "de": "eine Tasse"}, "tags": ["cup"]},
        ],
        **changes,
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


def test_treering_marks_the_initial_noise_of_every_suite_image(tmp_path, tiny_model, monkeypatch):
    """``--watermark-method treering`` on a suite writes the key into each image's starting noise
    (as ``generate txt2img`` does), records it, and adds nothing to the pixels."""
    first = ImageNoise.first
    drawn: list[torch.Tensor] = []
    monkeypatch.setattr(ImageNoise, "first", lambda self: drawn.append(first(self)) or drawn[-1])
    suite = load_suite(_suite_file(tmp_path))
    summary = run_suite(
        suite, tmp_path / "run", tiny_model, limit=4, output=OutputOptions(watermark="treering")
    )
    rows = pq.read_table(summary.manifest).to_pylist()
    marked = torch.cat(drawn)
    plain = torch.cat([ImageNoise([r["seed"]], tuple(marked.shape[1:])).first() for r in rows])
    key = TreeRingKey()
    assert len(rows) == len(marked) == 4
    assert torch.allclose(marked, key.inject(plain))  # every image's own seed, with the key written in
    assert (key.distance(marked) < key.distance(plain) / 2).all()
    for row in rows:
        assert (row["watermark_method"], TreeRingKey.parse(row["watermark_payload"])) == ("treering", key)
        assert row["output_scale"] == 1  # a latent mark needs no upscale


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


def test_huge_grid_with_limit_writes_one_image_without_building_the_grid(tmp_path, tiny_model):
    # issue 14 item 10: `seeds: 0-100000000` with --limit 1 built the whole grid (3.3 GB) first
    suite = load_suite(_suite_file(tmp_path, seeds="0-100000000"))
    tracemalloc.start()
    try:
        summary = run_suite(
            suite, tmp_path / "run", tiny_model, limit=1, output=OutputOptions(watermark=None)
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (summary.total, summary.generated) == (1, 1)
    assert [p.name for p in (tmp_path / "run").rglob("*.png")] == ["en-dpmpp2m-n2-c7-s0.png"]
    assert peak < 50_000_000  # bytes (tensors are not traced; 10**8 seeds as Python ints are gigabytes)


def test_grid_over_the_maximum_is_refused_unless_limited(tmp_path, tiny_model):
    suite = load_suite(_suite_file(tmp_path, seeds="0-999999"))  # 3 texts x 10**6 seeds
    with pytest.raises(ConfigError, match=r"mini\.yaml: the grid has 3,000,000 images, more than one run"):
        run_suite(suite, tmp_path / "run", tiny_model)
    with pytest.raises(ConfigError, match="more than one run may make"):
        run_suite(suite, tmp_path / "run", tiny_model, limit=1_000_001)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "limit must be an integer >= 1, got 0"),
        ({"batch_size": 0}, "batch_size must be an integer from 1 to 64, got 0"),
        ({"batch_size": 65}, "batch_size must be an integer from 1 to 64, got 65"),
        ({"output": OutputOptions(upscale=9)}, "upscale must be an integer from 1 to 8, got 9"),
        ({"output": OutputOptions(upscale=1)}, "upscale 1 makes 64x64 images, too small for the dwtDct"),
    ],
)
def test_bad_run_options_are_refused_before_any_image(tmp_path, tiny_model, kwargs, message):
    suite = load_suite(_suite_file(tmp_path))
    with pytest.raises(ConfigError, match=message):
        run_suite(suite, tmp_path / "run", tiny_model, **kwargs)
    assert not list(tmp_path.rglob("*.png"))


def test_an_out_that_is_a_file_is_one_line(tmp_path, tiny_model):
    taken = tmp_path / "taken"
    taken.write_text("x", encoding="utf-8")
    suite = load_suite(_suite_file(tmp_path))
    for out in (taken, taken / "run"):
        with pytest.raises(ConfigError, match=rf"{out}: {taken} is a file; out names a folder"):
            run_suite(suite, out, tiny_model)


def test_a_second_writer_is_refused_while_the_first_runs(tmp_path, tiny_sd_path):
    # issue 14 item 8: two suites into one --out both exited 0, leaving images with no manifest row
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "t2iscope.cli", "generate", "suite"]
    opts = ["--out", str(out), "--model", str(tiny_sd_path), "--device", "cpu", "--batch-size", "1"]
    first = subprocess.Popen(
        [*cmd, _suite_file(tmp_path, seeds="0-999"), *opts],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        lock = out / LOCK_NAME
        # the owner writes its pid into the lock file only once it holds the lock
        while first.poll() is None and time.monotonic() < deadline:
            if lock.is_file() and f"pid {first.pid} " in lock.read_text(encoding="utf-8"):
                break
            time.sleep(0.05)
        second = subprocess.run(
            [*cmd, _suite_file(tmp_path, name="other"), *opts], capture_output=True, text=True, timeout=300
        )
        first_was_running = first.poll() is None
    finally:
        first.kill()
        first.wait()
    assert first_was_running, "the first run ended before the second started: nothing was tested"
    assert second.returncode == 2, second.stderr
    assert second.stderr.count("\n") == 1
    assert f"{out}: in use by pid {first.pid} (t2iscope generate suite)" in second.stderr
    rows = pq.read_table(out / MANIFEST).to_pylist() if (out / MANIFEST).exists() else []
    assert {r["suite"] for r in rows} <= {"mini"}
    assert json.loads((out / "run.json").read_text(encoding="utf-8"))["suite"] == "mini"


def test_folder_of_another_run_kind_is_refused(tmp_path, tiny_model):
    suite = load_suite(_suite_file(tmp_path))
    # a folder that holds files but no suite run (a curation run, a typo'd --out)
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "stats.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"stray: holds files but no suite run \(run\.json\)"):
        run_suite(suite, stray, tiny_model)
    # a run of another suite killed before its first manifest: only run.json (and images) say so
    killed = tmp_path / "killed"
    (killed / "images" / "red-dog").mkdir(parents=True)
    (killed / "run.json").write_text(json.dumps({"suite": "other"}), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"killed: holds suite 'other', not 'mini'"):
        run_suite(suite, killed, tiny_model)
    # another model's images, refused before that model is loaded
    done = tmp_path / "done"
    run_suite(suite, done, tiny_model, limit=1)
    with pytest.raises(ConfigError, match=r"done: holds images of model 'tiny-sd', not 'sd15'"):
        run_suite(suite, done, lambda: pytest.fail("model loaded"), model_id="sd15")
    assert not list(stray.rglob("*.png")) and not list(killed.rglob("*.png"))


def test_an_edited_suite_resumes_to_what_it_now_says(tmp_path, tiny_model):
    out = tmp_path / "run"
    run_suite(load_suite(_suite_file(tmp_path)), out, tiny_model, limit=2)
    before = {r["key"]: r for r in pq.read_table(out / MANIFEST).to_pylist()}
    prompts = [
        {"id": "red-dog", "text": "a red dog on grass", "tags": ["dog", "red", "grass"]},
        {"id": "cup", "translations": {"en": "a cup", "de": "eine Tasse"}, "tags": ["mug"]},
    ]
    edited = load_suite(_suite_file(tmp_path, prompts=prompts))
    summary = run_suite(edited, out, tiny_model, limit=4)
    assert (summary.generated, summary.skipped) == (4, 0)  # 2 with a new prompt, 2 never made
    rows = {r["key"]: r for r in pq.read_table(out / MANIFEST).to_pylist()}
    assert set(before) < set(rows) and len(rows) == 4
    assert {r["prompt"] for r in rows.values()} == {"a red dog on grass", "eine Tasse"}
    for row in rows.values():
        assert parse_parameters(read_parameters(out / row["image_path"]))["prompt"] == row["prompt"]
    # tags are metadata: a rerun takes them without regenerating anything
    prompts[1]["tags"] = ["cup", "white"]
    retagged = run_suite(load_suite(_suite_file(tmp_path, prompts=prompts)), out, tiny_model, limit=4)
    assert retagged.generated == 0
    tags = {r["prompt_id"]: r["tags"] for r in pq.read_table(out / MANIFEST).to_pylist()}
    assert tags == {"red-dog": ["dog", "red", "grass"], "cup": ["cup", "white"]}
    # so are expectations and the suite's vocabulary: a folder made before them gains them on rerun
    prompts[0]["expect"] = {"subject": "dog", "legs": 4, "color": "red"}
    again = run_suite(
        load_suite(_suite_file(tmp_path, prompts=prompts, vocabulary={"gender": ["feminine", "masculine"]})),
        out,
        tiny_model,
        limit=4,
    )
    assert again.generated == 0
    rows = pq.read_table(out / MANIFEST).to_pylist()
    expect = {r["prompt_id"]: json.loads(r["expect"]) for r in rows}
    assert expect == {"red-dog": {"color": "red", "legs": 4, "subject": "dog"}, "cup": {}}
    vocabulary = json.loads(rows[0]["vocabulary"])
    assert vocabulary["labels"] == {
        "color": ["red"],
        "gender": ["feminine", "masculine"],
        "legs": [4],
        "subject": ["dog"],
    }


def test_repeated_axis_values_are_one_job(tmp_path, tiny_model):
    suite = load_suite(_suite_file(tmp_path, seeds=[3, 3, "2-3"]))
    summary = run_suite(suite, tmp_path / "run", tiny_model, output=OutputOptions(watermark=None))
    assert summary.total == summary.generated == 6  # 3 texts x seeds {3, 2}
    assert pq.read_table(summary.manifest).num_rows == 6


@pytest.mark.parametrize(
    "table",
    [
        pa.table({"prompt": ["x"]}),  # somebody else's parquet
        pa.table({"key": ["a"], "suite": ["mini"], "image_path": ["images/a.png"], "tags": [1]}),
    ],
)
def test_a_foreign_manifest_is_one_line(tmp_path, tiny_model, table):
    out = tmp_path / "run"
    out.mkdir()
    pq.write_table(table, out / MANIFEST)
    with pytest.raises(DataError, match=r"run/manifest\.parquet: (not a suite manifest|unreadable manifest)"):
        run_suite(load_suite(_suite_file(tmp_path)), out, tiny_model)


def test_manifest_rows_naming_files_outside_the_run_are_dropped(tmp_path, tiny_model):
    out = tmp_path / "run"
    run_suite(load_suite(_suite_file(tmp_path)), out, tiny_model, limit=1)
    outside = tmp_path / "secret.png"
    Image.new("RGB", (8, 8)).save(outside)
    rows = pq.read_table(out / MANIFEST).to_pylist()
    rows.append({**rows[0], "key": "x", "image_path": str(outside)})
    rows.append({**rows[0], "key": "../../secret", "image_path": "images/../../secret.png"})
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(out / MANIFEST)), out / MANIFEST)
    suite = load_suite(_suite_file(tmp_path))
    run_suite(suite, out, tiny_model, limit=2)
    keys = [r["key"] for r in pq.read_table(out / MANIFEST).to_pylist()]
    assert keys == [job.key for job in itertools.islice(expand(suite), 2)]
    assert outside.is_file()


def test_hostile_tags_stay_in_the_manifest(tmp_path, tiny_model):
    tags = ["../../x", "/abs", "a\0b", "CON", "a\\b", "x" * 300]
    prompts = [{"id": "red-dog", "text": "a red dog", "tags": tags}]
    out = tmp_path / "run"
    run_suite(load_suite(_suite_file(tmp_path, prompts=prompts)), out, tiny_model, limit=1)
    assert pq.read_table(out / MANIFEST).column("tags").to_pylist() == [tags]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mini.yaml", "run"]
    assert all(p.resolve().is_relative_to(out.resolve()) for p in out.rglob("*"))


# Issue 17: A1111's settings in the manifest, and folders made before them resume
NEW_COLUMNS = [
    "scheduler", "subseed", "subseed_strength", "clip_skip", "emphasis", "enable_hr", "hr_scale",
    "hr_upscaler", "hr_second_pass_steps", "denoising_strength", "model_hash",
]  # fmt: skip


def test_a1111_settings_reach_manifest_and_png(tmp_path, tiny_model):
    import dataclasses

    model = dataclasses.replace(tiny_model, model_hash="0123456789")  # as a single-file checkpoint's
    suite = load_suite(
        _suite_file(
            tmp_path,
            seeds=[0],
            grid={"seeds": [0], "scheduler": ["Automatic", "Exponential"], "clip_skip": [1, 2]},
            defaults={
                "steps": 1,
                "sampler": "DPM++ 2M",
                "subseed": 9,
                "subseed_strength": 0.5,
                "enable_hr": True,
                "hr_scale": 1.5,
                "denoising_strength": 0.6,
            },
            prompts=[{"id": "red-dog", "text": "a red dog"}],
        )
    )
    out = tmp_path / "run"
    assert run_suite(suite, out, model, output=OutputOptions(watermark=None)).generated == 4
    table = pq.read_table(out / MANIFEST)
    assert table.column_names[-len(NEW_COLUMNS) :] == NEW_COLUMNS
    rows = table.to_pylist()
    assert [r["scheduler"] for r in rows] == ["Karras", "Karras", "Exponential", "Exponential"]  # resolved
    assert [r["clip_skip"] for r in rows] == [1, 2, 1, 2]
    row = rows[1]
    assert (row["subseed"], row["subseed_strength"], row["emphasis"], row["enable_hr"]) == (
        9,
        0.5,
        "Original",
        True,
    )
    assert (row["hr_scale"], row["hr_upscaler"], row["hr_second_pass_steps"], row["denoising_strength"]) == (
        1.5, "Latent", 0, 0.6,
    )  # fmt: skip
    assert row["model_hash"] == "0123456789" and (row["width"], row["height"]) == (64, 64)  # A1111's Size
    with Image.open(out / row["image_path"]) as im:
        assert im.size == (96, 96)
    info = parse_parameters(read_parameters(out / row["image_path"]))
    assert (info["Schedule type"], info["Clip skip"], info["Variation seed"], info["Hires upscale"]) == (
        "Karras", 2, 9, 1.5,
    )  # fmt: skip
    assert (
        info["Model hash"] == "0123456789" and info["Size"] == "64x64" and info["Denoising strength"] == 0.6
    )
    # the hires rows resume: nothing regenerated
    again = run_suite(suite, out, lambda: pytest.fail("loaded"), output=OutputOptions(watermark=None))
    assert again.generated == 0


def test_a_folder_made_before_the_a1111_settings_resumes(tmp_path, tiny_model):
    suite = load_suite(_suite_file(tmp_path))
    out = tmp_path / "run"
    run_suite(suite, out, tiny_model, limit=3)
    table = pq.read_table(out / MANIFEST)
    old = table.drop_columns(NEW_COLUMNS)  # a manifest as runs before issue 17 wrote it
    pq.write_table(old, out / MANIFEST)
    summary = run_suite(suite, out, tiny_model)
    assert (summary.skipped, summary.generated) == (3, 3)
    rows = pq.read_table(out / MANIFEST).to_pylist()
    assert [r["scheduler"] for r in rows[:3]] == [None] * 3  # unknown for old rows: null, not invented
    assert {r["scheduler"] for r in rows[3:]} == {"Karras"}
