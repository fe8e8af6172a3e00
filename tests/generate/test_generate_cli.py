"""`t2iscope generate ...`: every command end to end, and bad input refused before any model loads."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from PIL import Image

from t2iscope.cli import main
from t2iscope.generate.pnginfo import parse_parameters, read_parameters


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("src") / "src.png"
    Image.new("RGB", (64, 64), (200, 225, 250)).save(path)
    return str(path)


def test_txt2img_batch_and_info(capsys, tmp_path, tiny_sd_path):
    out = tmp_path / "dog.png"
    code, stdout, err = _run(
        capsys, "generate", "txt2img", "a (red) dog", "--seed", "7", "--steps", "2", "--cfg-scale", "7.5",
        "--sampler", "Euler a", "--batch-size", "2", "--model", str(tiny_sd_path), "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    paths = [tmp_path / "dog-7.png", tmp_path / "dog-8.png"]
    assert all(p.is_file() for p in paths)
    fields = parse_parameters(read_parameters(paths[1]))
    assert (fields["Seed"], fields["Steps"], fields["Sampler"], fields["CFG scale"]) == (8, 2, "Euler a", 7.5)
    code, stdout, _ = _run(capsys, "generate", "info", str(paths[0]))
    assert code == 0 and "Seed: 7" in stdout and stdout.startswith("a (red) dog")


def test_random_seed_is_recorded(capsys, tmp_path, tiny_sd_path):
    out = tmp_path / "x.png"
    code, stdout, err = _run(
        capsys, "generate", "txt2img", "a cup", "--steps", "1", "--no-watermark",
        "--model", str(tiny_sd_path), "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    seed = parse_parameters(read_parameters(out))["Seed"]
    assert isinstance(seed, int) and seed >= 0 and f"seed {seed}" in stdout


@pytest.mark.parametrize(
    "mode_args",
    [
        ["img2img", "--strength", "0.5"],
        ["inpaint", "--mask", "MASK", "--fill", "latent noise", "--only-masked", "--padding", "8"],
        ["outpaint", "--right", "16", "--top", "8"],
    ],
)
def test_image_modes(capsys, tmp_path, tiny_sd_path, source, mode_args):
    mask = tmp_path / "mask.png"
    m = Image.new("L", (64, 64), 0)
    m.paste(255, (20, 20, 40, 40))
    m.save(mask)
    args = [str(mask) if a == "MASK" else a for a in mode_args]
    out = tmp_path / "out.png"
    code, _, err = _run(
        capsys, "generate", args[0], "a red ball", "--image", source, *args[1:], "--seed", "1",
        "--steps", "2", "--no-watermark", "--model", str(tiny_sd_path), "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    with Image.open(out) as im:
        assert im.size == ((80, 72) if args[0] == "outpaint" else (64, 64))
    assert parse_parameters(read_parameters(out))["Denoising strength"] == (
        0.9 if args[0] == "outpaint" else 0.75
    ) or (args[0] == "img2img")


def test_suite_command(capsys, tmp_path, tiny_sd_path):
    out = tmp_path / "sweep"
    code, stdout, err = _run(
        capsys, "generate", "suite", "cfg-steps", "--out", str(out), "--limit", "2",
        "--model", str(tiny_sd_path),
    )  # fmt: skip
    assert code == 0, err
    assert "2 rows (2 generated, 0 already done)" in stdout
    assert pq.read_table(out / "manifest.parquet").column("prompt_id").to_pylist() == ["red-dog", "red-dog"]


def test_samplers_lists_a1111_names(capsys):
    code, stdout, _ = _run(capsys, "generate", "samplers")
    assert code == 0
    assert "DPM++ 2M Karras" in stdout and "use_karras_sigmas=True" in stdout and "Euler a" in stdout


HUB_ID = "org/model"  # not a local path: the errors below must come before the model is looked at


@pytest.mark.parametrize(
    ("argv", "message", "exit_code"),
    [
        (["txt2img", "x", "--sampler", "Euler z"], "unknown sampler 'Euler z'", 2),
        (["txt2img", "x", "--steps", "0"], "steps must be >= 1", 2),
        (["txt2img", "x", "--cfg-scale", "-2"], "cfg_scale must be >= 0", 2),
        (["txt2img", "x", "--width", "100"], "width must be a positive multiple of 8", 2),
        (["txt2img", "x", "--watermark-method", "lsb"], "unknown watermark method", 2),
        (["img2img", "x", "--image", "SRC", "--strength", "1.5"], "strength must be between 0 and 1", 2),
        (["img2img", "x", "--image", "BAD"], "not a readable image", 1),
        (["inpaint", "x", "--image", "SRC", "--mask", "SMALL"], "does not match --image", 2),
        (["outpaint", "x", "--image", "SRC"], "at least one > 0", 2),
        (["suite", "DUP", "--out", "OUT"], "duplicate prompt id 'a'", 2),
        (["txt2img", "x"], "hub ids are not supported", 2),
    ],
)
def test_bad_input_is_one_line_before_any_work(capsys, tmp_path, source, argv, message, exit_code):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    small = tmp_path / "small.png"
    Image.new("L", (32, 32)).save(small)
    dup = tmp_path / "dup.yaml"
    dup.write_text("name: d\nprompts:\n  - {id: a, text: x}\n  - {id: a, text: y}\n", encoding="utf-8")
    subs = {"SRC": source, "BAD": str(bad), "SMALL": str(small), "DUP": str(dup), "OUT": str(tmp_path / "o")}
    argv = [subs.get(a, a) for a in argv]
    out = [] if argv[0] == "suite" else ["--out", str(tmp_path / "o.png")]
    code, _, err = _run(capsys, "generate", *argv, "--model", HUB_ID, *out)
    assert code == exit_code
    assert message in err and err.count("\n") == 1 and err.startswith("t2iscope: error:")
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.png").exists()


def test_cli_fill_choices_match_the_inpaint_module():
    from t2iscope.generate import cli, inpaint

    assert cli.FILLS == inpaint.FILLS
