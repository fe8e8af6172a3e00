"""Suite YAML: strict validation naming file and key, deterministic grid expansion, shipped suites."""

from __future__ import annotations

import re
import tracemalloc

import pytest
import yaml

from t2iscope.cli import main
from t2iscope.curate.world import spec
from t2iscope.errors import ConfigError
from t2iscope.generate.suites import expand, grid_size, load_suite, parse_suite, shipped_suites

SUITE = {
    "name": "mini",
    "defaults": {
        "steps": 10,
        "cfg_scale": 7.0,
        "sampler": "Euler a",
        "negative_prompt": "blurry",
        "seeds": [0],
    },
    "grid": {"seeds": "1-5 (+2)", "cfg_scale": "3-9 [3]", "steps": [5, 10], "sampler": "Euler a, DDIM"},
    "prompts": [
        {"id": "red-dog", "text": "a red dog", "tags": ["dog", "red"]},
        {"id": "house", "translations": {"en": "a house", "de": "ein Haus"}, "negative_prompt": ""},
    ],
}


def _write(tmp_path, data) -> str:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


def _with(**changes):
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in SUITE.items()}
    data["prompts"] = [dict(p) for p in SUITE["prompts"]]
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = data
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[last] = value
    return data


def test_grid_expansion(tmp_path):
    suite = load_suite(_write(tmp_path, SUITE))
    assert list(suite.seeds) == [1, 3, 5] and list(suite.cfg_scale) == [3.0, 6.0, 9.0]
    assert list(suite.steps) == [5, 10]
    jobs = list(expand(suite))
    assert grid_size(suite) == len(jobs)
    assert len(jobs) == 3 * 3 * 2 * 2 * (1 + 2)  # seeds x cfg x steps x samplers x (1 + 2 languages)
    assert len({j.key for j in jobs}) == len(jobs)
    assert [j.key for j in jobs] == [j.key for j in expand(load_suite(_write(tmp_path, SUITE)))]
    first = jobs[0]
    assert first.key == "red-dog/en-eulera-n5-c3-s1"
    assert first.image_path == "images/red-dog/en-eulera-n5-c3-s1.png"
    assert first.params.negative_prompt == "blurry" and first.tags == ("dog", "red")
    german = [j for j in jobs if j.language == "de"]
    assert german and all(j.params.prompt == "ein Haus" and j.params.negative_prompt == "" for j in german)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with(colour="x"), r"suite\.yaml: unknown key\(s\) colour"),
        (_with(defaults__cfg=3), r"defaults: unknown key\(s\) cfg"),
        (_with(grid__width="64"), r"grid: unknown key\(s\) width"),
        (_with(prompts__0__txt="x"), r"prompts\[0\]: unknown key\(s\) txt"),
        (_with(prompts__1__id="red-dog"), "duplicate prompt id 'red-dog'"),
        (_with(grid__seeds="1-5 (+0)"), r"grid\.seeds: .*step must not be 0"),
        (_with(grid__cfg_scale="lots"), r"grid\.cfg_scale"),
        (_with(grid__sampler="Euler b"), "unknown sampler 'Euler b'"),
        (_with(grid__steps=[0, 5]), "steps must be an integer from 1 to 150, got 0"),
        (_with(grid__cfg_scale=[-1, 5]), "cfg_scale must be a finite number from 0 to 30, got -1.0"),
        (_with(defaults__width=100), "width must be a multiple of 8 from 8 to 2048 pixels, got 100"),
        (_with(grid__seeds=[-1]), "seeds must be from 0 to 4294967295, got -1"),
        (_with(prompts__0__translations={"en": "x"}), "exactly one of text or translations"),
        (_with(prompts__0__id="a b"), "id must be"),
        (_with(prompts=[]), "prompts must be a non-empty list"),
    ],
)
def test_bad_suites_name_file_and_key(tmp_path, data, message):
    with pytest.raises(ConfigError, match=message):
        load_suite(_write(tmp_path, data))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with(prompts__1__tags="x"), "prompts[1].tags: expected a list of strings, got 'x'"),
        (_with(prompts__0__txet="x"), "prompts[0]: unknown key(s) txet; accepted: id, text, language, "),
        (_with(prompts__0__expect={"legs": "four"}), "prompts[0].expect.legs: expected an integer"),
        (_with(prompts__1__translations={"en": 3}), "prompts[1].translations.en: expected a string, got 3"),
        (_with(defaults__width="64"), "defaults.width: expected an integer, got '64'"),
        (_with(defaults__width=64.0), "defaults.width: expected an integer, got 64.0"),
        (_with(defaults__negative_prompt=0), "defaults.negative_prompt: expected a string, got 0"),
        (
            _with(grid__steps=[5, True]),
            "grid.steps: expected an integer, a string or a list of integers or strings, got [5, True]",
        ),
        (_with(grid__cfg_scale=float("nan")), "grid.cfg_scale: expected a finite number, got nan"),
        (_with(name=5), "name: expected a string, got 5"),
        (_with(defaults="x"), "defaults: expected a mapping, got 'x'"),
    ],
)
def test_typos_and_types_name_file_and_dotted_field(tmp_path, data, message):
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    assert str(info.value).startswith(f"{path}: {message}")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"grid__sampler": "Euler b"}, "unknown sampler 'Euler b'"),
        ({"prompts__0__tagz": ["dog"]}, r"prompts\[0\]: unknown key\(s\) tagz"),
        # a language becomes part of the image's file name: issue 14's "language: ../../x" escape
        ({"prompts__0__language": "../../../escaped"}, r"prompts\[0\] \(red-dog\)\.language: a language is"),
        ({"prompts__1__translations": {"../esc": "x"}}, r"\.translations\.\.\./esc: a language is"),
    ],
)
def test_bad_suite_stops_generate_suite_before_any_work(tmp_path, capsys, change, message):
    out = tmp_path / "gen"
    path = _write(tmp_path, _with(**change))
    assert main(["generate", "suite", path, "--out", str(out), "--model", str(tmp_path / "no-model")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"t2iscope: error: {path}: ") and err.count("\n") == 1
    assert re.search(message, err) and not out.exists()


def test_unknown_suite_lists_shipped(tmp_path):
    with pytest.raises(ConfigError, match=r"shipped: .*multilingual"):
        load_suite("no-such-suite")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_suite(bad)
    bad.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"bad\.yaml: not UTF-8 text"):
        load_suite(bad)


def test_shipped_suites_load():
    assert set(shipped_suites()) >= {"multilingual", "limbs", "neutral", "cfg-steps"}
    for name in shipped_suites():
        suite = load_suite(name)
        assert grid_size(suite) == len(list(expand(suite))) > 0


def test_multilingual_covers_the_world_in_every_language():
    suite = load_suite("multilingual")
    assert {p.id for p in suite.prompts} == {f"{c}-{k}" for c in spec.COLORS for k in spec.KINDS}
    for prompt in suite.prompts:
        color, kind = prompt.id.split("-")
        assert [lang for lang, _ in prompt.texts] == list(spec.LANGUAGE_MIX)
        for lang, text in prompt.texts:
            assert spec.COLOR_WORDS[lang][list(spec.COLORS).index(color)] in text
            assert spec.KIND_WORDS[lang][list(spec.KINDS).index(kind)] in text


def test_limbs_and_sweep():
    limbs = load_suite("limbs")
    assert {p.tags[0] for p in limbs.prompts} == set(spec.LIMBED_KINDS) and len(limbs.seeds) > 1
    sweep = load_suite("cfg-steps")
    assert len(sweep.cfg_scale) > 1 and len(sweep.steps) > 1


def test_cfg_rescale_axis_keeps_plain_keys(tmp_path):
    plain = {job.key for job in expand(load_suite(_write(tmp_path, _with(grid={"seeds": [1]}))))}
    swept = list(expand(load_suite(_write(tmp_path, _with(grid={"seeds": [1], "cfg_rescale": [0, 0.7]})))))
    keys = {job.key for job in swept}
    assert plain < keys and len(keys) == 2 * len(plain)
    assert {j.params.cfg_rescale for j in swept if j.key.endswith("-r0.7-s1")} == {0.7}
    with pytest.raises(ConfigError, match="cfg_rescale must be a finite number from 0 to 1"):
        load_suite(_write(tmp_path, _with(defaults__cfg_rescale=2.0)))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with(grid__cfg_scale="nan"), "suite.yaml: grid.cfg_scale: expected a finite number, got 'nan'"),
        (_with(grid__cfg_scale="inf, 2"), "suite.yaml: grid.cfg_scale: expected a finite number, got 'inf'"),
        (_with(defaults__steps="four"), "suite.yaml: defaults.steps: expected an integer, got 'four'"),
        (_with(grid__steps=[0, 5]), "suite.yaml: grid.steps: steps must be an integer from 1 to 150, got 0"),
        (
            _with(defaults__width=100),
            "suite.yaml: defaults.width: width must be a multiple of 8 from 8 to 2048 pixels, got 100",
        ),
        (
            _with(grid__seeds=[-1]),
            "suite.yaml: grid.seeds: seeds must be from 0 to 4294967295, got -1 (a suite must be "
            "reproducible: no -1)",
        ),
        (
            _with(grid__cfg_rescale=[2]),
            "suite.yaml: grid.cfg_rescale: cfg_rescale must be a finite number from 0 to 1, got 2.0",
        ),
        # issue 14 item 10: A1111's limits, checked from a range's ends without expanding it
        (
            _with(grid__steps="1-100000"),
            "suite.yaml: grid.steps: steps must be an integer from 1 to 150, got 100000",
        ),
        (
            _with(grid__cfg_scale="1-31 [3]"),
            "suite.yaml: grid.cfg_scale: cfg_scale must be a finite number from 0 to 30, got 31.0",
        ),
        (
            _with(grid__seeds="0-4294967296 (+2)"),
            "suite.yaml: grid.seeds: seeds must be from 0 to 4294967295, got 4294967296 (a suite must be "
            "reproducible: no -1)",
        ),
        (
            _with(defaults__height=4096),
            "suite.yaml: defaults.height: height must be a multiple of 8 from 8 to 2048 pixels, got 4096",
        ),
        (
            _with(defaults__steps=200, grid__steps=5),
            "suite.yaml: defaults.steps: steps must be an integer from 1 to 150, got 200",
        ),
    ],
)
def test_suite_value_errors_name_their_field(tmp_path, data, message):
    with pytest.raises(ConfigError) as info:
        load_suite(_write(tmp_path, data))
    assert str(info.value).endswith(message) and "\n" not in str(info.value)


def test_duplicate_key_in_a_suite_prompt_is_refused(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text("name: s\nprompts:\n  - id: a\n    text: x\n    text: y\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"suite\.yaml: not valid YAML at line 5: duplicate key 'text'"):
        load_suite(str(path))


# Issue 14 item 4: every suite field that reaches a file name, against names that would leave the
# run folder or misbehave on some file system. Tags, texts and the suite name reach no path (the
# name is held to the same rule anyway); samplers must be registered names.
HOSTILE = [
    "../x",
    "../../../escaped",
    "/abs/x",
    "C:\\x",
    "a/b",
    "a\\b",
    "a\0b",
    "x\n",
    "x" * 300,
    "CON",
    "nul.txt",
    "Com1",
    "a.",
    ".hidden",
    "-rf",
    "",
]
PATH_FIELDS = {
    "name": (lambda v: _with(name=v), r"suite\.yaml: name"),
    "id": (lambda v: _with(prompts__0__id=v), r"prompts\[0\]: id"),
    "language": (lambda v: _with(prompts__0__language=v), r"prompts\[0\] \(red-dog\)\.language: "),
    "translation": (
        lambda v: _with(prompts__1__translations={"en": "a house", v: "x"}),
        r"prompts\[1\] \(house\)\.translations\.",
    ),
    "sampler": (lambda v: _with(grid__sampler=[v]), r"grid\.sampler: unknown sampler"),
}


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
@pytest.mark.parametrize("field", PATH_FIELDS)
def test_hostile_values_in_path_fields_are_refused_before_any_work(tmp_path, capsys, field, value):
    make, where = PATH_FIELDS[field]
    if value == "CON" and field in ("language", "translation"):
        value = "CON-x/y"  # a language is never a whole file name, so a device name is safe there
    if value == "" and field == "sampler":
        value = ","  # an empty sampler list is "no values", also refused
        where = r"grid\.sampler: no values"
    path = _write(tmp_path, make(value))
    out = tmp_path / "gen"
    code = main(["generate", "suite", path, "--out", str(out), "--model", str(tmp_path / "no-model")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"t2iscope: error: {path}: "), err
    assert re.search(where, err), err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["suite.yaml"]  # nothing written anywhere


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with(prompts__0__language="en" + "-abcdefgh" * 4), r"\.language: .*at most 35 characters"),
        (_with(prompts__0__id="a" * 101), r"prompts\[0\]: id must be 1 to 100 letters"),
        (
            _with(prompts__1__id="Red-Dog"),
            r"prompts\[1\]\.id: prompt id 'Red-Dog' differs from 'red-dog' only",
        ),
        (
            _with(prompts__1__translations={"en": "a house", "EN": "x"}),
            r"translations\.(en|EN): language '(en|EN)' differs from '(en|EN)' only in case",
        ),
    ],
)
def test_names_that_collide_or_overflow_a_file_name_are_refused(tmp_path, data, message):
    with pytest.raises(ConfigError, match=message):
        load_suite(_write(tmp_path, data))


def test_longest_accepted_names_make_a_file_name_within_255_bytes(tmp_path):
    data = _with(prompts__0__id="a" * 100, prompts__0__language="en-" + "-".join(["abcdefgh"] * 3) + "-ab")
    data["grid"] = {
        "seeds": [4294967295],
        "cfg_scale": [7.000000000000001],
        "cfg_rescale": [0.10000000000000002],
    }
    data["grid"]["sampler"] = "DPM++ 2M Karras"
    job = next(expand(load_suite(_write(tmp_path, data))))
    assert len(job.key.split("/")[1] + ".png") < 255 and len(job.key.split("/")[0]) == 100


def test_huge_seed_range_is_counted_not_built(tmp_path):
    tracemalloc.start()
    try:
        suite = load_suite(_write(tmp_path, _with(grid={"seeds": "0-100000000"})))
        first = next(expand(suite))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert grid_size(suite) == 100_000_001 * 3 and len(suite.seeds) == 100_000_001
    assert first.key == "red-dog/en-eulera-n10-c7-s0"
    assert peak < 5_000_000  # bytes; the old eager grid of these seeds took gigabytes


def test_keys_keep_every_digit_of_a_value(tmp_path):
    # %g keeps 6 digits: 7.0000001 and 7.0000002 shared one key, so one image overwrote the other
    data = _with(grid={"seeds": [1], "cfg_scale": [7.0000001, 7.0000002, 7.5], "cfg_rescale": [0, 1e-05]})
    keys = [j.key for j in expand(load_suite(_write(tmp_path, data))) if j.prompt_id == "red-dog"]
    assert keys == [
        "red-dog/en-eulera-n10-c7.0000001-s1",
        "red-dog/en-eulera-n10-c7.0000001-r1e-05-s1",
        "red-dog/en-eulera-n10-c7.0000002-s1",
        "red-dog/en-eulera-n10-c7.0000002-r1e-05-s1",
        "red-dog/en-eulera-n10-c7.5-s1",  # a value %g writes exactly keeps its old key
        "red-dog/en-eulera-n10-c7.5-r1e-05-s1",
    ]


def test_a_latin1_suite_is_one_line_from_the_command(tmp_path, capsys):
    # issue 14 item 13: a Latin-1 encoded suite raised UnicodeDecodeError
    path = tmp_path / "latin.yaml"
    path.write_bytes("name: caf\xe9\nprompts:\n  - {id: a, text: caf\xe9}\n".encode("latin-1"))
    out = tmp_path / "gen"
    assert main(["generate", "suite", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"t2iscope: error: {path}: not UTF-8 text (byte 0xe9 at offset 9)\n" and not out.exists()


def test_expectations_are_declared_once_for_every_translation(tmp_path):
    """``expect`` (generate.attributes) is shared by a prompt's translations; the judge's label sets
    are the prompts' expects, then the suite's ``vocabulary``; templates need one ``{}``."""
    data = {
        "name": "real",
        "vocabulary": {"gender": ["feminine", "masculine"], "subject": ["zebra"]},
        "templates": {"subject": "a photo of a {}", "other": "a photo"},
        "prompts": [
            {
                "id": "horse",
                "translations": {"en": "a horse", "ja": "馬"},
                "expect": {"subject": "horse", "legs": 4},
            },
            {
                "id": "apples",
                "text": "two red apples",
                "expect": {"subject": " apple ", "color": "red", "count": 2},
            },
        ],
    }
    suite = parse_suite(data, "real.yaml")
    jobs = list(expand(suite))
    assert {j.expect for j in jobs if j.prompt_id == "horse"} == {'{"legs": 4, "subject": "horse"}'}
    assert suite.vocabulary == {
        "subject": ("horse", "apple", "zebra"), "color": ("red",), "gender": ("feminine", "masculine"),
        "legs": (4,), "count": (2,),
    }  # fmt: skip
    assert all(j.vocabulary == suite.vocabulary_json() for j in jobs)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"expect": {"wings": 2}}, r"prompts\[0\]\.expect: unknown key\(s\) wings"),
        ({"expect": {"legs": "4"}}, r"prompts\[0\]\.expect\.legs: expected an integer"),
        ({"expect": {"count": 0}}, r"prompts\[0\]\.expect\.count: expected an integer >= 1"),
        ({"expect": {"subject": "other"}}, r"expect\.subject: expected a word"),
        ({"expect": {"color": ""}}, r"expect\.color: expected a word"),
        ({"expect": {"subject": "Unclear"}}, r"expect\.subject: expected a word of 1 to 100 characters"),
        ({"expect": {"subject": "x" * 101}}, r"expect\.subject: expected a word of 1 to 100 characters"),
    ],
)
def test_bad_expectations_name_file_and_field(change, message):
    with pytest.raises(ConfigError, match=message):
        parse_suite({"name": "s", "prompts": [{"id": "a", "text": "t", **change}]}, "s.yaml")


@pytest.mark.parametrize(
    ("templates", "message"),
    [
        ({"subject": "a photo"}, r"templates\.subject: a template has exactly one \{\}"),
        ({"subject": "{} and {}"}, r"templates\.subject: a template has exactly one"),
        ({"wings": "{}"}, r"templates\.wings: no template for this; valid: subject, color"),
        ({"watermark": "a photo of {}"}, r"templates\.watermark: no template for this"),
        ({"other": "a {}"}, r"templates\.other: the 'other' label's text takes no"),
    ],
)
def test_bad_templates_name_file_and_field(templates, message):
    with pytest.raises(ConfigError, match=message):
        parse_suite({"name": "s", "templates": templates, "prompts": [{"id": "a", "text": "t"}]}, "s.yaml")


def test_a_vocabulary_has_one_label_per_spelling():
    prompts = [{"id": "a", "text": "t", "expect": {"gender": "feminine"}}]
    with pytest.raises(
        ConfigError, match=r"s\.yaml: vocabulary\.gender\[1\]: 'Feminine' repeats vocabulary\.gender\[0\]"
    ):
        parse_suite(
            {"name": "s", "vocabulary": {"gender": ["feminine", "Feminine"]}, "prompts": prompts}, "s.yaml"
        )
    suite = parse_suite(
        {"name": "s", "vocabulary": {"gender": ["Feminine", "masculine"]}, "prompts": prompts}, "s.yaml"
    )
    assert suite.vocabulary["gender"] == ("feminine", "masculine")  # the prompt's word, once


# Issue 17: A1111's settings as axes and defaults
def test_a1111_axes_and_settings_reach_every_job(tmp_path):
    data = _with(grid={"seeds": [1], "scheduler": "Automatic, Karras, SGM Uniform", "clip_skip": "1-2",
                       "subseed_strength": [0, 0.25], "denoising_strength": [0.5, 0.7]})  # fmt: skip
    data["defaults"].update(subseed=7, emphasis="No norm", enable_hr=True, hr_scale=1.5,
                            hr_upscaler="Lanczos", hr_second_pass_steps=3, sampler="DPM++ 2M")  # fmt: skip
    suite = load_suite(_write(tmp_path, data))
    jobs = list(expand(suite))
    assert grid_size(suite) == len(jobs) == 3 * 3 * 2 * 2 * 2 * 2 // 2  # (1 + 2 languages) x axes, steps 10
    assert len({j.key for j in jobs}) == len(jobs)  # a new axis that varies keeps keys unique
    p = jobs[-1].params
    assert (p.scheduler, p.clip_skip, p.subseed_strength, p.denoising_strength) == (
        "SGM Uniform",
        2,
        0.25,
        0.7,
    )
    assert (p.subseed, p.emphasis, p.enable_hr, p.hr_scale, p.hr_upscaler, p.hr_second_pass_steps) == (
        7, "No norm", True, 1.5, "Lanczos", 3,
    )  # fmt: skip
    assert jobs[-1].key == "house/en-dpmpp2m-sgmuniform-n10-c7-cs2-v7x0.25-enonorm-hr1.5-lanczos-hn3-d0.7-s1"


def test_settings_at_their_defaults_keep_the_keys_folders_were_made_with(tmp_path):
    plain = [j.key for j in expand(load_suite(_write(tmp_path, SUITE)))]
    explicit = _with()
    explicit["defaults"].update(scheduler="Automatic", clip_skip=1, subseed_strength=0, emphasis="Original",
                                enable_hr=False, denoising_strength=0.7, subseed=3)  # fmt: skip
    assert [j.key for j in expand(load_suite(_write(tmp_path, explicit)))] == plain
    assert plain[0] == "red-dog/en-eulera-n5-c3-s1"  # as every run before issue 17 named it
    assert [j.key for j in expand(load_suite("cfg-steps"))][:2] == [
        "red-dog/en-dpmpp2m-n5-c1-s0",
        "red-dog/en-dpmpp2m-n5-c1-s1",
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _with(grid__scheduler="Karras, Fancy"),
            "suite.yaml: grid.scheduler: scheduler must be one of Automatic,",
        ),
        (
            _with(grid__scheduler="Exponential", grid__sampler="LMS Karras"),
            "suite.yaml: grid.scheduler: sampler 'LMS Karras' implies schedule type Karras; "
            "got 'Exponential'",
        ),
        (
            _with(grid__clip_skip=[1, 13]),
            "suite.yaml: grid.clip_skip: clip_skip must be an integer from 1 to 12, got 13",
        ),
        (
            _with(grid__subseed_strength="0-2 [3]"),
            "suite.yaml: grid.subseed_strength: subseed_strength must be a finite number "
            "from 0 to 1, got 2.0",
        ),
        (
            _with(grid__denoising_strength=[0.5, 0.7]),
            "suite.yaml: grid.denoising_strength: sweeps the hires fix's second pass; set "
            "defaults.enable_hr: true",
        ),
        (
            _with(defaults__enable_hr=True, grid__denoising_strength=[0.5, 1.5]),
            "suite.yaml: grid.denoising_strength: denoising_strength must be a finite number "
            "from 0 to 1, got 1.5",
        ),
        (
            _with(defaults__subseed=-1),
            "suite.yaml: defaults.subseed: subseed must be from 0 to 4294967295, got -1 (a "
            "suite is reproducible: no -1)",
        ),
        (
            _with(defaults__emphasis="Loud"),
            "suite.yaml: defaults.emphasis: emphasis must be one of Original, No norm",
        ),
        (
            _with(defaults__hr_scale=8),
            "suite.yaml: defaults.hr_scale: hr_scale must be a finite number from 1 to 4",
        ),
        (
            _with(defaults__hr_upscaler="ESRGAN"),
            "suite.yaml: defaults.hr_upscaler: hr_upscaler must be one of Latent",
        ),
        (_with(defaults__enable_hr="yes"), "defaults.enable_hr: expected true or false, got 'yes'"),
        (
            _with(defaults__enable_hr=True, defaults__hr_scale=4, defaults__width=1024, defaults__height=64),
            "suite.yaml: defaults.hr_scale: hires fix size 4096x256",
        ),
    ],
)
def test_bad_a1111_settings_name_their_field(tmp_path, data, message):
    with pytest.raises(ConfigError) as info:
        load_suite(_write(tmp_path, data))
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_every_setting_at_its_longest_still_makes_a_file_name_within_255_bytes(tmp_path):
    data = _with(prompts__0__id="a" * 100, prompts__0__language="en-" + "-".join(["abcdefgh"] * 3) + "-ab")
    data["grid"] = {
        "seeds": [4294967295], "cfg_scale": [7.000000000000001], "cfg_rescale": [0.10000000000000002],
        "sampler": "DPM++ 2S a Karras", "scheduler": "Karras", "clip_skip": [12],
        "subseed_strength": [0.10000000000000002], "denoising_strength": [0.10000000000000002],
        "steps": [150],
    }  # fmt: skip
    data["defaults"].update(subseed=4294967295, emphasis="No norm", enable_hr=True, hr_second_pass_steps=150,
                            hr_upscaler="Latent (nearest)", hr_scale=1.0000000000000002)  # fmt: skip
    job = next(expand(load_suite(_write(tmp_path, data))))
    assert len(job.key.split("/")[1] + ".png") < 255, job.key
