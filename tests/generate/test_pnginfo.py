"""A1111 infotext: format, parse (ours and A1111's), PNG/JPEG storage, `generate info`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from t2iscope.errors import ConfigError, DataError
from t2iscope.generate.info_cli import info
from t2iscope.generate.pnginfo import format_parameters, parse_parameters, read_parameters, save_png

# The example in A1111's parse_generation_parameters docstring.
A1111_SAMPLE = (
    "girl with an artist's beret, determined, blue eyes, desert scene, computer monitors, heavy makeup, "
    "by Alphonse Mucha and Charlie Bowater, ((eyeshadow)), (coquettish), detailed, intricate\n"
    "Negative prompt: ugly, fat, obese, chubby, (((deformed))), [blurry], bad anatomy, disfigured, "
    "poorly drawn face, mutation, mutated, (extra_limb), (ugly), (poorly drawn hands), messy drawing\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b"
)

# A recent A1111 infotext with quoted values (Lora hashes, a comma in a value) and a multi-line prompt.
A1111_RECENT = (
    "a castle on a hill,\nmasterpiece <lora:detail:0.6>\n"
    "Negative prompt: lowres\n"
    "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 42, Size: 768x512, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.35, "
    'Lora hashes: "detail: 62b5c3c1d6e5", Version: v1.10.1'
)


def test_format_matches_a1111_layout() -> None:
    text = format_parameters(
        "a red cat",
        "blurry, lowres",
        {"Steps": 20, "Sampler": "Euler a", "CFG scale": 7.5, "Seed": 1, "Size": "64x64", "Model": "world"},
    )
    assert text == (
        "a red cat\nNegative prompt: blurry, lowres\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 1, Size: 64x64, Model: world"
    )


def test_format_quotes_like_a1111_and_skips_none() -> None:
    text = format_parameters("p", "", {"Steps": 5, "Lora hashes": "a: 1, b: 2", "VAE": None, "Seed": 3})
    assert text == 'p\nSteps: 5, Lora hashes: "a: 1, b: 2", Seed: 3'


def test_format_rejects_keys_a1111_cannot_read() -> None:
    with pytest.raises(ConfigError, match="Bad:key"):
        format_parameters("p", "", {"Bad:key": 1})


def test_parse_a1111_docstring_sample() -> None:
    fields = parse_parameters(A1111_SAMPLE)
    assert fields["prompt"].startswith("girl with an artist's beret")
    assert fields["prompt"].endswith("detailed, intricate")
    assert fields["negative_prompt"].startswith("ugly, fat")
    assert fields["negative_prompt"].endswith("messy drawing")
    assert fields["Steps"] == 20
    assert fields["Sampler"] == "Euler a"
    assert fields["CFG scale"] == 7
    assert fields["Seed"] == 965400086
    assert fields["Size"] == "512x512"
    assert fields["Model hash"] == "45dee52b"


def test_parse_recent_a1111_infotext() -> None:
    fields = parse_parameters(A1111_RECENT)
    assert fields["prompt"] == "a castle on a hill,\nmasterpiece <lora:detail:0.6>"
    assert fields["negative_prompt"] == "lowres"
    assert fields["Schedule type"] == "Karras"
    assert fields["CFG scale"] == 6.5
    assert fields["Lora hashes"] == "detail: 62b5c3c1d6e5"
    assert fields["Version"] == "v1.10.1"
    assert fields["Denoising strength"] == 0.35


def test_parse_without_parameter_line_is_all_prompt() -> None:
    assert parse_parameters("just a prompt\nNegative prompt: bad") == {
        "prompt": "just a prompt",
        "negative_prompt": "bad",
    }


LINE = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=30).filter(
    lambda s: s == s.strip() and s.strip() and not s.startswith("Negative prompt:")
)
KEY = st.from_regex(r"[A-Za-z][A-Za-z0-9 \-/]{0,12}[A-Za-z0-9]", fullmatch=True).filter(
    lambda k: k not in ("prompt", "negative_prompt")
)


def _reads_as_number(text: str) -> bool:
    """Documented: text that is exactly how Python writes a number comes back as that number."""
    try:
        return repr(float(text)) == text or str(int(text)) == text
    except ValueError:
        return False


VALUE = st.one_of(
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=20).filter(
        lambda s: not _reads_as_number(s)
    ),
)


@settings(max_examples=200)
@given(
    prompt=st.lists(LINE, min_size=1, max_size=3).map("\n".join),
    negative=st.one_of(st.just(""), st.lists(LINE, min_size=1, max_size=2).map("\n".join)),
    # every infotext we (and A1111) write names Steps: a parameter line has a key A1111 writes
    params=st.dictionaries(KEY, VALUE, min_size=2, max_size=5).map(lambda d: {"Steps": 20, **d}),
)
def test_round_trip(prompt: str, negative: str, params: dict[str, object]) -> None:
    fields = parse_parameters(format_parameters(prompt, negative, params))
    assert fields.pop("prompt") == prompt
    assert fields.pop("negative_prompt") == negative
    assert {k: str(v) for k, v in fields.items()} == {k: str(v) for k, v in params.items()}
    for key, value in params.items():
        if isinstance(value, (int, float)):
            assert fields[key] == value


def test_png_round_trip_with_non_latin_text(tmp_path: Path) -> None:
    text = format_parameters("東京の猫, café", "", {"Steps": 4, "Sampler": "DDIM", "Seed": 7})
    path = tmp_path / "out" / "img.png"
    save_png(path, Image.new("RGB", (8, 8), (10, 20, 30)), text)
    assert read_parameters(path) == text
    with Image.open(path) as image:
        assert image.info["parameters"] == text
        assert image.getpixel((0, 0)) == (10, 20, 30)
    assert [p.name for p in path.parent.iterdir()] == ["img.png"]  # no temp file left behind


def _jpeg_with_user_comment(path: Path, comment: bytes) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = comment
    Image.new("RGB", (8, 8)).save(path, format="JPEG", exif=exif)


@pytest.mark.parametrize(
    "comment",
    [
        b"UNICODE\0" + A1111_SAMPLE.encode("utf-16-be"),  # what A1111 writes (piexif, encoding="unicode")
        b"UNICODE\0" + A1111_SAMPLE.encode("utf-16-le"),
        b"ASCII\0\0\0" + A1111_SAMPLE.encode("ascii"),
    ],
)
def test_jpeg_exif_user_comment_like_a1111(tmp_path: Path, comment: bytes) -> None:
    path = tmp_path / "a1111.jpg"
    _jpeg_with_user_comment(path, comment)
    assert read_parameters(path) == A1111_SAMPLE


def test_image_without_parameters_and_non_image(tmp_path: Path) -> None:
    plain = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(plain)
    assert read_parameters(plain) is None
    bogus = tmp_path / "notes.png"
    bogus.write_text("not an image")
    with pytest.raises(DataError, match=r"notes\.png"):
        read_parameters(bogus)


def test_info_command_prints_text_and_json(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    save_png(path, Image.new("RGB", (4, 4)), A1111_RECENT)
    runner = CliRunner()
    shown = runner.invoke(info, [str(path)])
    assert shown.exit_code == 0 and shown.output == A1111_RECENT + "\n"
    as_json = runner.invoke(info, [str(path), "--json"])
    assert as_json.exit_code == 0
    assert json.loads(as_json.output) == parse_parameters(A1111_RECENT)


def test_info_command_without_parameters_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(path)
    with pytest.raises(DataError, match="no generation parameters"):
        CliRunner().invoke(info, [str(path)], standalone_mode=False, catch_exceptions=False)


def test_info_help_has_an_example() -> None:
    out = CliRunner().invoke(info, ["--help"]).output
    assert "t2iscope generate info" in out


def test_a_last_prompt_line_of_lora_tags_stays_prompt() -> None:
    """Three ``<lora:...>`` tags look like 3 key: value pairs, but none is a key A1111 writes."""
    text = "a castle\n<lora:detail:0.6>, <lora:style:0.8>, <lora:light:1>"
    assert parse_parameters(text) == {"prompt": text, "negative_prompt": ""}
    with_params = f"{text}\nSteps: 20, Sampler: Euler a, Seed: 1"
    assert parse_parameters(with_params) == {
        "prompt": text,
        "negative_prompt": "",
        "Steps": 20,
        "Sampler": "Euler a",
        "Seed": 1,
    }


def test_user_comment_in_ifd0_is_read(tmp_path: Path) -> None:
    """Some tools write the UserComment into IFD0 instead of the Exif IFD, where A1111 puts it."""
    exif = Image.Exif()
    exif[0x9286] = b"UNICODE\0" + "a dog\nSteps: 20, Sampler: Euler a, Seed: 3".encode("utf-16-le")
    Image.new("RGB", (8, 8)).save(tmp_path / "x.jpg", exif=exif)
    assert parse_parameters(read_parameters(tmp_path / "x.jpg") or "")["Seed"] == 3


@pytest.mark.parametrize("chunk", ["tEXt", "zTXt", "iTXt"])
def test_parameters_are_read_from_every_png_text_chunk(tmp_path: Path, chunk: str) -> None:
    """A1111 writes tEXt (iTXt for non-Latin-1 text, as PIL does); other tools zTXt or iTXt."""
    from PIL import PngImagePlugin

    prompt = "赤い犬" if chunk == "iTXt" else "a red dog"
    info = PngImagePlugin.PngInfo()
    if chunk == "iTXt":
        info.add_itxt("parameters", f"{prompt}\nSteps: 20, Sampler: Euler a, Seed: 7")
    else:
        info.add_text("parameters", f"{prompt}\nSteps: 20, Sampler: Euler a, Seed: 7", zip=chunk == "zTXt")
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png", pnginfo=info)
    fields = parse_parameters(read_parameters(tmp_path / "x.png") or "")
    assert (fields["prompt"], fields["Seed"]) == (prompt, 7)


# Issue 17: A1111's infotext for the settings it added, as A1111 v1.10 writes them
A1111_SETTINGS = (
    "a red dog\n"
    "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Variation seed: 5, Variation seed strength: 0.3, "
    "Denoising strength: 0.7, Clip skip: 2, Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent, "
    "Emphasis: No norm, Version: v1.10.1"
)


def test_a1111_settings_parse_to_their_fields() -> None:
    got = parse_parameters(A1111_SETTINGS)
    assert got == {
        "prompt": "a red dog", "negative_prompt": "", "Steps": 20, "Sampler": "DPM++ 2M",
        "Schedule type": "Karras", "CFG scale": 7, "Seed": 1, "Size": "512x512", "Model hash": "6ce0161689",
        "Model": "v1-5-pruned-emaonly",
        "Variation seed": 5, "Variation seed strength": 0.3, "Denoising strength": 0.7, "Clip skip": 2,
        "Hires upscale": 2, "Hires steps": 10, "Hires upscaler": "Latent", "Emphasis": "No norm",
        "Version": "v1.10.1",
    }  # fmt: skip


def test_params_from_a1111_infotext_generate_it_again() -> None:
    from t2iscope.generate.params import Params
    from t2iscope.generate.pnginfo import params_from_infotext

    kwargs = params_from_infotext(parse_parameters(A1111_SETTINGS))
    p = Params(**kwargs).check()
    assert p == Params(
        "a red dog", seed=1, steps=20, cfg_scale=7.0, sampler="DPM++ 2M", scheduler="Karras", width=512,
        height=512, subseed=5, subseed_strength=0.3, clip_skip=2, emphasis="No norm", enable_hr=True,
        hr_scale=2.0, hr_upscaler="Latent", hr_second_pass_steps=10, denoising_strength=0.7,
    )  # fmt: skip
    # an img2img's Denoising strength is no Params field: it comes back apart, as strength
    img2img = params_from_infotext(parse_parameters(A1111_RECENT))
    assert img2img["strength"] == 0.35 and "enable_hr" not in img2img and "denoising_strength" not in img2img
    # an old name keeps its schedule (A1111 < 1.9 wrote no Schedule type)
    old = Params(**params_from_infotext(parse_parameters(A1111_SAMPLE))).check()
    assert (old.sampler, old.scheduler, old.cfg_scale, old.seed) == ("Euler a", "Automatic", 7.0, 965400086)


def test_params_from_infotext_refuses_a_wrong_type() -> None:
    from t2iscope.generate.pnginfo import params_from_infotext

    with pytest.raises(DataError, match="infotext Steps: expected an integer, got 'many'"):
        params_from_infotext({"Steps": "many"})
    with pytest.raises(DataError, match="infotext Size: expected WIDTHxHEIGHT"):
        params_from_infotext({"Size": "big"})


def test_info_command_prints_params(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    save_png(path, Image.new("RGB", (4, 4)), A1111_SETTINGS)
    shown = CliRunner().invoke(info, [str(path), "--params"])
    assert shown.exit_code == 0, shown.output
    got = json.loads(shown.output)
    assert got["scheduler"] == "Karras" and got["enable_hr"] is True and got["hr_scale"] == 2.0
    assert got["width"] == 512 and got["clip_skip"] == 2 and "Model hash" not in got
