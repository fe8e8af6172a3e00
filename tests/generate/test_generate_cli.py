"""`t2iscope generate ...`: every command end to end, and bad input refused before any model loads."""

from __future__ import annotations

import json

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


def test_samplers_lists_a1111_names_with_their_default_schedule_type(capsys):
    code, stdout, _ = _run(capsys, "generate", "samplers")
    assert code == 0
    rows = {line.split("  ")[0]: line for line in stdout.splitlines()}
    assert "Karras" in rows["DPM++ 2M"] and "Uniform" in rows["Euler a"] and "own timesteps" in rows["DDIM"]
    assert "DPM++ 2M Karras (+Karras)" in rows["DPM++ 2M"] and "PNDM" in rows["PLMS"]  # older names


def test_schedulers_are_listed(capsys):
    code, stdout, _ = _run(capsys, "generate", "list", "schedulers")
    assert code == 0
    from t2iscope.generate.schedules import SCHEDULE_CHOICES

    assert [line.split("  ")[0] for line in stdout.splitlines()[2:]] == list(SCHEDULE_CHOICES)


def test_cli_scheduler_choices_match_the_schedules_module():
    from t2iscope.generate import cli, schedules

    assert tuple(cli.SCHEDULERS) == schedules.SCHEDULE_CHOICES


def test_help_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, t2iscope.generate.cli; print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    )


def test_every_a1111_setting_round_trips_through_info(capsys, tmp_path, tiny_sd_path):
    """Issue 17: each new option reaches the PNG in A1111's words and `generate info` reads it back."""
    out = tmp_path / "hires.png"
    code, _, err = _run(
        capsys, "generate", "txt2img", "a (red) dog", "--seed", "3", "--steps", "2", "--sampler", "DPM++ 2M",
        "--scheduler", "Exponential", "--subseed", "5", "--subseed-strength", "0.3", "--clip-skip", "2",
        "--emphasis", "No norm", "--enable-hr", "--hr-scale", "1.5", "--hr-upscaler", "Lanczos",
        "--hr-second-pass-steps", "1", "--denoising-strength", "0.6", "--no-watermark",
        "--model", str(tiny_sd_path), "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    with Image.open(out) as im:
        assert im.size == (96, 96)  # hr_scale x the model's 64
    code, stdout, _ = _run(capsys, "generate", "info", str(out), "--json")
    got = json.loads(stdout)
    assert {k: got[k] for k in got if k not in ("prompt", "negative_prompt", "Model")} == {
        "Steps": 2, "Sampler": "DPM++ 2M", "Schedule type": "Exponential", "CFG scale": 7.0, "Seed": 3,
        "Size": "64x64", "Variation seed": 5, "Variation seed strength": 0.3, "Denoising strength": 0.6,
        "Clip skip": 2, "Hires upscale": 1.5, "Hires steps": 1, "Hires upscaler": "Lanczos",
        "Emphasis": "No norm",
    }  # fmt: skip
    # --params gives back the request
    code, stdout, _ = _run(capsys, "generate", "info", str(out), "--params")
    from t2iscope.generate.params import Params

    again = Params(**json.loads(stdout)).check()
    assert again == Params(
        "a (red) dog", seed=3, steps=2, sampler="DPM++ 2M", scheduler="Exponential", width=64, height=64,
        subseed=5, subseed_strength=0.3, clip_skip=2, emphasis="No norm", enable_hr=True, hr_scale=1.5,
        hr_upscaler="Lanczos", hr_second_pass_steps=1, denoising_strength=0.6,
    )  # fmt: skip


def test_a_random_variation_seed_is_recorded(capsys, tmp_path, tiny_sd_path):
    out = tmp_path / "v.png"
    code, _, err = _run(
        capsys, "generate", "txt2img", "a cup", "--steps", "1", "--seed", "1", "--subseed-strength", "0.5",
        "--batch-size", "2", "--no-watermark", "--model", str(tiny_sd_path), "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    # A1111: variations keep the seed and count the variation seed up; files are NAME-SEED-vSUBSEED.png
    found = [parse_parameters(read_parameters(p)) for p in tmp_path.glob("v-1-v*.png")]
    first, second = sorted(found, key=lambda fields: fields["Variation seed"])
    assert isinstance(first["Variation seed"], int)
    assert second["Variation seed"] == first["Variation seed"] + 1
    assert first["Seed"] == second["Seed"] == 1 and first["Variation seed strength"] == 0.5


HUB_ID = "org/model"  # not a local path: the errors below must come before the model is looked at


@pytest.mark.parametrize(
    ("argv", "message", "exit_code"),
    [
        (["txt2img", "x", "--sampler", "Euler z"], "unknown --sampler 'Euler z'", 2),
        (
            ["txt2img", "x", "--sampler", "DPM++ 2M Karras", "--scheduler", "Beta"],
            "implies schedule type Karras",
            2,
        ),
        (["txt2img", "x", "--steps", "0"], "--steps must be an integer from 1 to 150, got 0", 2),
        (
            ["txt2img", "x", "--cfg-scale", "-2"],
            "--cfg-scale must be a finite number from 0 to 30, got -2.0",
            2,
        ),
        (["txt2img", "x", "--width", "100"], "--width must be a multiple of 8 from 8 to 2048 pixels", 2),
        (["txt2img", "x", "--watermark-method", "lsb"], "unknown watermark method", 2),
        (
            ["img2img", "x", "--image", "SRC", "--strength", "1.5"],
            "--strength must be a finite number from 0",
            2,
        ),
        (["img2img", "x", "--image", "BAD"], "not a readable image", 1),
        (["inpaint", "x", "--image", "SRC", "--mask", "SMALL"], "does not match --image", 2),
        (["outpaint", "x", "--image", "SRC"], "at least one > 0", 2),
        (["suite", "DUP", "--out", "OUT"], "duplicate prompt id 'a'", 2),
        (["txt2img", "x"], "hub ids are not supported", 2),
        (["txt2img", "x", "--out", "DIR"], "is a folder; give the PNG's file name", 2),
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
    argv = [str(tmp_path) if a == "DIR" else a for a in argv]
    out = [] if argv[0] == "suite" or "--out" in argv else ["--out", str(tmp_path / "o.png")]
    code, _, err = _run(capsys, "generate", *argv, "--model", HUB_ID, *out)
    assert code == exit_code
    assert message in err and err.count("\n") == 1 and err.startswith("t2iscope: error:")
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.png").exists()


def test_cli_fill_choices_match_the_inpaint_module():
    from t2iscope.generate import cli, inpaint

    assert cli.FILLS == inpaint.FILLS


# Issue 14 items 10 and 11: every numeric option of every command, refused up front with one line
# naming it (exit 2, no output file, no model loaded: --model is a hub id nothing could load).
_MODES = {
    "txt2img": [],
    "img2img": ["--image", "SRC"],
    "inpaint": ["--image", "SRC", "--mask", "MASK"],
    "outpaint": ["--image", "SRC", "--right", "8"],
}
_COMMON = [
    ("--steps", "0", "--steps must be an integer from 1 to 150, got 0"),
    ("--steps", "100000", "--steps must be an integer from 1 to 150, got 100000"),
    ("--steps", "-3", "--steps must be an integer from 1 to 150, got -3"),
    ("--cfg-scale", "nan", "--cfg-scale must be a finite number from 0 to 30, got nan"),
    ("--cfg-scale", "inf", "--cfg-scale must be a finite number from 0 to 30, got inf"),
    ("--cfg-scale", "-1", "--cfg-scale must be a finite number from 0 to 30, got -1.0"),
    ("--cfg-scale", "1e308", "--cfg-scale must be a finite number from 0 to 30, got 1e+308"),
    ("--cfg-rescale", "nan", "--cfg-rescale must be a finite number from 0 to 1, got nan"),
    ("--cfg-rescale", "-0.5", "--cfg-rescale must be a finite number from 0 to 1, got -0.5"),
    ("--width", "100000", "--width must be a multiple of 8 from 8 to 2048 pixels, got 100000"),
    ("--width", "-64", "--width must be a multiple of 8 from 8 to 2048 pixels, got -64"),
    ("--height", "0", "--height must be a multiple of 8 from 8 to 2048 pixels, got 0"),
    ("--height", "2056", "--height must be a multiple of 8 from 8 to 2048 pixels, got 2056"),
    ("--batch-size", "0", "--batch-size must be an integer from 1 to 64, got 0"),
    ("--batch-size", "1000000", "--batch-size must be an integer from 1 to 64, got 1000000"),
    ("--seed", "-2", "--seed must be -1 (random) or an integer from 0 to 4294967295, got -2"),
    ("--seed", "4294967296", "--seed must be -1 (random) or an integer from 0 to 4294967295"),
    ("--seed", "99999999999999999999999", "--seed must be -1 (random) or an integer from 0 to"),
    ("--upscale", "0", "--upscale must be an integer from 1 to 8, got 0"),
    ("--upscale", "100", "--upscale must be an integer from 1 to 8, got 100"),
    ("--subseed", "-2", "--subseed must be -1 (random) or an integer from 0 to 4294967295, got -2"),
    ("--subseed-strength", "1.5", "--subseed-strength must be a finite number from 0 to 1, got 1.5"),
    ("--subseed-strength", "nan", "--subseed-strength must be a finite number from 0 to 1, got nan"),
    ("--clip-skip", "0", "--clip-skip must be an integer from 1 to 12, got 0"),
    ("--clip-skip", "13", "--clip-skip must be an integer from 1 to 12, got 13"),
]
_OWN = {
    "txt2img": [  # the hires fix's options, checked when it is on
        ("--enable-hr --hr-scale", "5", "--hr-scale must be a finite number from 1 to 4, got 5.0"),
        ("--enable-hr --hr-scale", "0.5", "--hr-scale must be a finite number from 1 to 4, got 0.5"),
        (
            "--enable-hr --hr-second-pass-steps",
            "-1",
            "--hr-second-pass-steps must be an integer from 0 to 150",
        ),
        (
            "--enable-hr --denoising-strength",
            "nan",
            "--denoising-strength must be a finite number from 0 to 1",
        ),
        (
            "--enable-hr --denoising-strength",
            "1.5",
            "--denoising-strength must be a finite number from 0 to 1",
        ),
    ],
    "img2img": [
        ("--strength", "nan", "--strength must be a finite number from 0 to 1, got nan"),
        ("--strength", "-0.1", "--strength must be a finite number from 0 to 1, got -0.1"),
    ],
    "inpaint": [
        ("--strength", "inf", "--strength must be a finite number from 0 to 1, got inf"),
        ("--mask-blur", "-1", "--mask-blur must be an integer from 0 to 64, got -1"),
        ("--mask-blur", "100000000", "--mask-blur must be an integer from 0 to 64, got 100000000"),
        ("--padding", "-8", "--padding must be an integer from 0 to 256, got -8"),
        ("--padding", "1000000", "--padding must be an integer from 0 to 256, got 1000000"),
    ],
    "outpaint": [
        ("--right", "1000000", "--right must be an integer from 0 to 2048, got 1000000"),
        ("--left", "-8", "--left must be an integer from 0 to 2048, got -8"),
        ("--top", "2040", "extended size 72x2104 is over 2048 pixels a side; add fewer pixels"),
        ("--bottom", "99999999999999999999", "--bottom must be an integer from 0 to 2048"),
        ("--strength", "nan", "--strength must be a finite number from 0 to 1, got nan"),
        ("--mask-blur", "65", "--mask-blur must be an integer from 0 to 64, got 65"),
    ],
}
_CASES = [(mode, *case) for mode in _MODES for case in _COMMON + _OWN.get(mode, [])]


@pytest.mark.parametrize(("mode", "option", "value", "message"), _CASES)
def test_every_numeric_option_is_bounded(capsys, tmp_path, source, mode, option, value, message):
    mask = tmp_path / "mask.png"
    Image.new("L", (64, 64), 255).save(mask)
    args = [{"SRC": source, "MASK": str(mask)}.get(a, a) for a in _MODES[mode]]
    out = tmp_path / "o.png"
    code, _, err = _run(
        capsys, "generate", mode, "x", *args, *option.split(), value, "--model", HUB_ID, "--out", str(out)
    )
    assert (code, err.count("\n")) == (2, 1) and err.startswith("t2iscope: error: "), err
    assert message in err
    assert not out.exists() and not list(tmp_path.glob("o*"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--limit", "0"], "--limit must be an integer >= 1, got 0"),
        (["--limit", "-5"], "--limit must be an integer >= 1, got -5"),
        (["--batch-size", "0"], "--batch-size must be an integer from 1 to 64, got 0"),
        (["--batch-size", "100000"], "--batch-size must be an integer from 1 to 64, got 100000"),
        (["--upscale", "0"], "--upscale must be an integer from 1 to 8, got 0"),
        (["--model", HUB_ID], "hub ids are not supported"),
        (["--device", "tpu"], "device must be auto, cpu or cuda, got 'tpu'"),
    ],
)
def test_suite_options_are_refused_before_the_folder_exists(capsys, tmp_path, tiny_sd_path, argv, message):
    out = tmp_path / "o"
    model = ["--model", str(tiny_sd_path)]  # a later --model in argv wins
    code, _, err = _run(capsys, "generate", "suite", "cfg-steps", "--out", str(out), *model, *argv)
    assert (code, err.count("\n")) == (2, 1) and message in err, err
    assert not out.exists()


def _declared_png(path, width: int, height: int) -> str:
    """A PNG whose header declares width x height; its pixel data is a stub (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    return str(path)


@pytest.mark.parametrize("side", [100_000, 10_000])  # past PIL's error threshold / its warning threshold
@pytest.mark.parametrize(
    ("mode", "args", "what"),
    [
        ("img2img", ["--image", "BOMB"], "--image"),
        ("inpaint", ["--image", "BOMB", "--mask", "SRC"], "--image"),
        ("inpaint", ["--image", "SRC", "--mask", "BOMB"], "--mask"),
        ("outpaint", ["--image", "BOMB", "--right", "8"], "--image"),
    ],
)
def test_decompression_bombs_are_one_line_naming_the_file(capsys, tmp_path, source, side, mode, args, what):
    # issue 14 item 13: a PNG declaring 100000x100000 pixels raised PIL's DecompressionBombError
    bomb = _declared_png(tmp_path / "bomb.png", side, side)
    argv = [{"BOMB": bomb, "SRC": source}.get(a, a) for a in args]
    out = tmp_path / "o.png"
    code, _, err = _run(capsys, "generate", mode, "x", *argv, "--model", HUB_ID, "--out", str(out))
    assert (code, err.count("\n")) == (1, 1), err
    assert err.startswith(f"t2iscope: error: {what} {bomb}: ") and ("bomb" in err) and not out.exists()
    assert "89,478,485 pixels" in err and "178" not in err  # the one limit applied, not PIL's second one


def test_info_on_a_decompression_bomb_is_one_line(capsys, tmp_path):
    bomb = _declared_png(tmp_path / "bomb.png", 100_000, 100_000)
    code, _, err = _run(capsys, "generate", "info", bomb)
    assert (code, err.count("\n")) == (1, 1) and err.startswith(
        f"t2iscope: error: {bomb}: not a readable image"
    )


@pytest.mark.parametrize(
    ("mode", "extra"),
    [("img2img", []), ("inpaint", ["--mask", "BIG"]), ("outpaint", ["--right", "8"])],
)
def test_an_image_that_would_set_an_oversized_generation_is_refused(capsys, tmp_path, mode, extra):
    big = tmp_path / "big.png"
    Image.new("RGB", (2056, 64)).save(big)  # readable, but wider than anything a model may make here
    argv = [str(big) if a == "BIG" else a for a in extra]
    out = tmp_path / "o.png"
    code, _, err = _run(
        capsys, "generate", mode, "x", "--image", str(big), *argv, "--model", HUB_ID, "--out", str(out)
    )
    assert (code, err.count("\n")) == (2, 1), err
    size = "2064x64" if mode == "outpaint" else "2056x64"  # outpaint names the extended canvas
    assert size in err and "2048 pixels" in err and not out.exists()


def test_single_image_commands_show_step_progress(capsys, tmp_path, tiny_sd_path, source):
    # issue 14 item 10: `--steps 100000` ran with no progress output at all
    for mode, extra in (("txt2img", []), ("inpaint", ["--image", source, "--mask", source])):
        code, _, err = _run(
            capsys, "generate", mode, "x", *extra, "--seed", "1", "--steps", "3", "--no-watermark",
            "--model", str(tiny_sd_path), "--out", str(tmp_path / f"{mode}.png"),
        )  # fmt: skip
        assert code == 0, err
        assert f"{mode}: " in err and "step" in err, err
