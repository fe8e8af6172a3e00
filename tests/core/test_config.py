"""The one config parser: every type kind, unknown keys at every level, strict scalars, one-line errors."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import pytest
import yaml
from annotated_types import MinLen

from t2iscope.config import (
    NonNegInt,
    OpenProbability,
    PositiveInt,
    Probability,
    bind_params,
    literal_choices,
    load_yaml,
    location,
    parse,
)
from t2iscope.errors import ConfigError
from t2iscope.listing import parameters
from t2iscope.registry import check_params

if TYPE_CHECKING:  # the engine's arguments may name types that exist only for type checkers
    from t2iscope.curate.operators import StageContext


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Expect:
    legs: int = 4
    color: Color = Color.RED


@dataclass(frozen=True)
class Prompt:
    id: str
    tags: tuple[str, ...] = ()
    expect: Expect = field(default_factory=Expect)


@dataclass(frozen=True)
class Suite:
    prompts: list[Prompt]
    mode: Literal["fast", "slow"] = "fast"
    size: tuple[int, int] = (64, 64)
    scale: float = 1.0
    seed: int = 0
    flip: bool = False
    width: int | None = None
    extra: dict[str, list[float]] = field(default_factory=dict)
    note: Any = None


GOOD = {"prompts": [{"id": "a"}, {"id": "b", "tags": ["x"], "expect": {"legs": 2, "color": "blue"}}]}


def _with(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


def _prompt(i: int, **changes: Any) -> dict[str, Any]:
    prompts = [dict(p) for p in GOOD["prompts"]]
    prompts[i].update(changes)
    return {**GOOD, "prompts": prompts}


def _error(tp: Any, data: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse(tp, data, "s.yaml")
    message = str(info.value)
    assert "\n" not in message and "pydantic" not in message and "http" not in message
    return message


def test_every_type_kind_is_built() -> None:
    suite = parse(
        Suite,
        _with(mode="slow", size=[32, 16], scale=2, width=None, extra={"a": [1, 2.5]}, note={"k": [1]}),
        "s.yaml",
    )
    assert suite.mode == "slow" and suite.size == (32, 16) and suite.extra == {"a": [1.0, 2.5]}
    assert suite.scale == 2.0 and isinstance(suite.scale, float)  # an integer is a valid float
    assert suite.note == {"k": [1]} and suite.width is None
    second = suite.prompts[1]
    assert isinstance(second, Prompt) and second.tags == ("x",)
    assert second.expect == Expect(legs=2, color=Color.BLUE)
    assert suite.prompts[0].expect == Expect()  # defaults fill what the file leaves out


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with(colour=1), "s.yaml: unknown key(s) colour; accepted: prompts, mode, size"),
        (_prompt(1, txt="x", tgs=[]), "s.yaml: prompts[1]: unknown key(s) txt, tgs; accepted: id, tags"),
        (
            _prompt(0, expect={"lges": 2}),
            "s.yaml: prompts[0].expect: unknown key(s) lges; accepted: legs",
        ),
        ({"mode": "fast"}, "s.yaml: missing key 'prompts'"),
        ({"prompts": [{"tags": []}]}, "s.yaml: prompts[0]: missing key 'id'"),
        # a misspelt required key is named as the misspelling, not as the missing key
        ({"promts": []}, "s.yaml: unknown key(s) promts"),
    ],
)
def test_unknown_and_missing_keys_at_every_level(data: dict, message: str) -> None:
    assert _error(Suite, data).startswith(message)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_prompt(1, tags="x"), "s.yaml: prompts[1].tags: expected a list of strings, got 'x'"),
        (_prompt(1, tags=["x", 3]), "s.yaml: prompts[1].tags[1]: expected a string, got 3"),
        (
            _prompt(0, expect={"legs": "four"}),
            "s.yaml: prompts[0].expect.legs: expected an integer, got 'four'",
        ),
        (
            _prompt(0, expect={"color": "green"}),
            "s.yaml: prompts[0].expect.color 'green'; valid: red, blue",
        ),
        (_prompt(0, expect=3), "s.yaml: prompts[0].expect: expected a mapping, got 3"),
        (_with(mode="medium"), "s.yaml: mode 'medium'; valid: fast, slow"),
        (_with(seed="4"), "s.yaml: seed: expected an integer, got '4'"),
        (_with(seed=4.0), "s.yaml: seed: expected an integer, got 4.0"),
        (_with(seed=True), "s.yaml: seed: expected an integer, got true"),
        (_with(width="64"), "s.yaml: width: expected an integer, got '64'"),
        (_with(scale="1.5"), "s.yaml: scale: expected a number, got '1.5'"),
        (_with(scale=False), "s.yaml: scale: expected a number, got false"),
        (_with(flip=1), "s.yaml: flip: expected true or false, got 1"),
        (_with(flip="yes"), "s.yaml: flip: expected true or false, got 'yes'"),
        (
            _with(size=[1, 2, 3]),
            "s.yaml: size: expected a list of 2 values (an integer, an integer), got [1, 2, 3]",
        ),
        (_with(extra=[1]), "s.yaml: extra: expected a mapping, got [1]"),
        (_with(extra={"a": 1}), "s.yaml: extra.a: expected a list of numbers, got 1"),
        ({"prompts": None}, "s.yaml: prompts: expected a list of mappings, got null"),
        ("text", "s.yaml: expected a mapping, got 'text'"),
    ],
)
def test_types_are_strict_and_errors_name_the_dotted_field(data: Any, message: str) -> None:
    assert _error(Suite, data) == message


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_are_refused(bad: float) -> None:
    assert _error(Suite, _with(scale=bad)) == f"s.yaml: scale: expected a finite number, got {bad!r}"
    assert _error(Suite, _with(extra={"a": [1.0, bad]})).startswith("s.yaml: extra.a[1]: expected a finite")


def test_unions_name_every_accepted_shape() -> None:
    message = _error(int | str | list[int | str], [1, None])
    assert message == "s.yaml: expected an integer, a string or a list of integers or strings, got [1, None]"


def test_errors_carry_the_callers_path() -> None:
    with pytest.raises(ConfigError, match=r"^a\.yaml: unet\.expect\.legs: expected an integer, got 'x'$"):
        parse(Prompt, {"id": "a", "expect": {"legs": "x"}}, "a.yaml", ("unet",))
    assert location("a.yaml") == "a.yaml"
    assert location("a.yaml", ("prompts", 3, "tags")) == "a.yaml: prompts[3].tags"


def _operator(
    table: object,
    ctx: StageContext,
    by: Literal["hash", "url", "image"] = "hash",
    keep: list[str] | None = None,
    min_side: int = 0,
    max_score: float = 0.5,
) -> None: ...


def test_bind_params_resolves_defaults_and_keeps_values_as_written() -> None:
    resolved = bind_params(_operator, {"max_score": 1, "keep": ["en"]}, "r.yaml", data_args=2)
    assert resolved == {"by": "hash", "keep": ["en"], "min_side": 0, "max_score": 1}
    assert list(resolved) == ["by", "keep", "min_side", "max_score"]  # signature order
    assert type(resolved["max_score"]) is int  # as written: a resolved file writes back the user's value


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"by": "urll"}, "r.yaml: stages[2].dedup.by 'urll'; valid: hash, url, image"),
        ({"keep": "en"}, "r.yaml: stages[2].dedup.keep: expected a list of strings, got 'en'"),
        ({"min_side": "big"}, "r.yaml: stages[2].dedup.min_side: expected an integer, got 'big'"),
        ({"min_side": 1.5}, "r.yaml: stages[2].dedup.min_side: expected an integer, got 1.5"),
        ({"max_score": float("nan")}, "r.yaml: stages[2].dedup.max_score: expected a finite number, got nan"),
        (
            {"bye": 1},
            "r.yaml: stages[2].dedup: unknown parameter(s) bye; accepted: by, keep, min_side, max_score",
        ),
        (
            {"by\nDROP": 1},  # a key from the file stays on one line
            "r.yaml: stages[2].dedup: unknown parameter(s) 'by\\nDROP'; "
            "accepted: by, keep, min_side, max_score",
        ),
        ([1], "r.yaml: stages[2].dedup: expected a mapping, got [1]"),
    ],
)
def test_bind_params_checks_names_types_and_literals(params: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        bind_params(_operator, params, "r.yaml", ("stages", 2, "dedup"), data_args=2)
    assert str(info.value) == message


def test_bind_params_missing_and_open_signatures() -> None:
    def audit(ctx: object, top: int, *, n: int = 1, **options: Any) -> None: ...

    with pytest.raises(ConfigError, match=r"^a\.yaml: audits\.x: missing parameter 'top'$"):
        bind_params(audit, {}, "a.yaml", ("audits", "x"), data_args=1)
    # **options takes any other name unchecked; the named ones are still typed
    assert bind_params(audit, {"top": 3, "other": "x"}, "a.yaml", data_args=1) == {
        "top": 3,
        "n": 1,
        "other": "x",
    }
    with pytest.raises(ConfigError, match=r"^a\.yaml: n: expected an integer, got 'x'$"):
        bind_params(audit, {"top": 3, "n": "x"}, "a.yaml", data_args=1)


def test_check_params_checks_types_for_every_registry() -> None:
    def judge(device: Literal["cpu", "cuda"] = "cpu", max_images: int = 8) -> None: ...

    check_params(judge, {"device": "cuda"}, "AUDIT.yaml: judge (clip)")
    with pytest.raises(
        ConfigError, match=r"^AUDIT\.yaml: judge \(clip\): max_images: expected an integer, got 'four'$"
    ):
        check_params(judge, {"max_images": "four"}, "AUDIT.yaml: judge (clip)")
    with pytest.raises(ConfigError, match=r"device 'tpu'; valid: cpu, cuda$"):
        check_params(judge, {"device": "tpu"}, "AUDIT.yaml: judge (clip)")


def test_load_yaml_reads_and_refuses_in_one_line(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("name: café\nseeds: [1, 2]\n", encoding="utf-8")
    assert load_yaml(good) == {"name": "café", "seeds": [1, 2]}
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin\.yaml: not UTF-8 text \(byte 0xe9 at offset 9\)$"):
        load_yaml(latin)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nstages:\n  - a\n bad: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML at line 4: ") as info:
        load_yaml(broken)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=r"missing\.yaml: no such file$"):
        load_yaml(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r": cannot read \("):
        load_yaml(tmp_path)


# -- issue 13's QA gaps: duplicate keys, value ranges, Literal choices in listings ------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("stages:\n  - resolution: {min_side: 512, min_side: 10}\n", 2),
        ("stages: []\nname: a\nstages: []\n", 3),
        ("prompts:\n  - id: a\n    text: x\n    text: y\n", 4),
    ],
)
def test_load_yaml_refuses_duplicate_keys_with_their_line(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"d\.yaml: not valid YAML at line {line}: duplicate key") as info:
        load_yaml(path)
    assert "\n" not in str(info.value)


def test_load_yaml_keeps_merge_keys_and_their_overrides(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("base: &b {a: 1, c: 2}\nuse:\n  <<: *b\n  a: 3\n", encoding="utf-8")
    assert load_yaml(path) == {"base": {"a": 1, "c": 2}, "use": {"a": 3, "c": 2}}


def test_load_yaml_reads_merges_of_merges_as_pyyaml_does(tmp_path: Path) -> None:
    """A merged node that itself merges and overrides is flattened while a later mapping is built
    (before its own turn): its override is still no duplicate."""
    text = "outer:\n  - &a {x: 1}\n  - &b {<<: *a, x: 2}\nc: {<<: *b}\n"
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_yaml(path) == yaml.safe_load(text)


def _ranged(
    batch: object,
    ctx: object,
    score: Probability = 0.5,
    top: PositiveInt = 20,
    side: NonNegInt | None = None,
    fpr: OpenProbability = 0.01,
) -> None:
    """A stage with bounded parameters."""


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"score": -1}, "r.yaml: s: score: expected a number >= 0 and <= 1, got -1"),
        ({"score": 2}, "r.yaml: s: score: expected a number >= 0 and <= 1, got 2"),
        ({"top": 0}, "r.yaml: s: top: expected an integer >= 1, got 0"),
        ({"side": -5}, "r.yaml: s: side: expected an integer >= 0, got -5"),
        ({"fpr": 1.5}, "r.yaml: s: fpr: expected a number > 0 and < 1, got 1.5"),
        ({"fpr": 0}, "r.yaml: s: fpr: expected a number > 0 and < 1, got 0"),
    ],
)
def test_out_of_range_parameters_read_in_plain_words(params: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        bind_params(_ranged, params, "r.yaml: s", data_args=2)
    assert str(info.value) == message


def test_in_range_parameters_pass_as_written() -> None:
    resolved = bind_params(_ranged, {"score": 1, "side": 0, "top": 1}, "r.yaml", data_args=2)
    assert resolved == {"score": 1, "top": 1, "side": 0, "fpr": 0.01}


@dataclass(frozen=True)
class _Bounded:
    steps: NonNegInt = 1
    sizes: tuple[PositiveInt, ...] = (1,)


def test_bounds_inside_dataclasses_and_lists_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"^t\.yaml: steps: expected an integer >= 0, got -1$"):
        parse(_Bounded, {"steps": -1}, "t.yaml")
    with pytest.raises(ConfigError, match=r"^t\.yaml: sizes\[1\]: expected an integer >= 1, got 0$"):
        parse(_Bounded, {"sizes": [4, 0]}, "t.yaml")


def _chosen(
    batch: object, by: Literal["hash", "url"] = "hash", keys: tuple[Literal["a", "b"], ...] = ()
) -> None:
    """A stage with choices."""


def test_listing_shows_literal_choices() -> None:
    assert parameters(_chosen, data_args=1) == "by='hash' (hash|url), keys=() (a|b)"
    assert literal_choices(int) is None


@dataclass(frozen=True)
class _Tower:
    widths: Annotated[tuple[int, ...], MinLen(1)] = (16,)
    heads: int = 4

    def __post_init__(self) -> None:
        if self.widths[0] % self.heads:
            raise ValueError(f"widths[0] {self.widths[0]} must be divisible by heads {self.heads}")


def test_empty_list_and_post_init_rules_are_worded_plainly() -> None:
    empty = r"^t\.yaml: tower\.widths: expected a non-empty list of integers, got \[\]$"
    with pytest.raises(ConfigError, match=empty):
        parse(_Tower, {"widths": []}, "t.yaml", ("tower",))
    with pytest.raises(ConfigError, match=r"^t\.yaml: tower: widths\[0\] 16 must be divisible by heads 5$"):
        parse(_Tower, {"heads": 5}, "t.yaml", ("tower",))
