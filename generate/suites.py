"""Prompt suites: a YAML file of prompts and a parameter grid, expanded into generation jobs.

A suite names its prompts (stable ids, tags, per-language translations, negative prompts), its
defaults and a grid whose axes (seeds, cfg_scale, cfg_rescale, steps, sampler, scheduler,
subseed_strength, clip_skip, denoising_strength) take lists or A1111 X/Y/Z range syntax
(``1-5 (+2)``, ``1-10 [5]``); defaults also set A1111's subseed, emphasis and hires fix (enable_hr,
hr_scale, hr_upscaler, hr_second_pass_steps), which ``denoising_strength`` belongs to. Validation
is strict (``t2iscope.config``): unknown keys, wrong types, duplicate ids and bad ranges are
ConfigErrors naming the file and key, raised before any model is loaded. Values are bounded by
``t2iscope.generate.limits`` (steps 1..150, cfg_scale 0..30, seeds 0..2**32-1, width/height
8..2048), the same limits as the command line. Expansion is lazy and deterministic (a grid of 10**8
seeds is counted, not built) and every job has a stable key, which is what lets a killed run
resume.

Fields that become file names (``images/<prompt id>/<language>-<sampler>-n<steps>-...png``; a
setting at A1111's default is left out of the name, so folders made before it existed resume) are
checked to stay inside the run folder on every file system: prompt ids are 1..100 of
``A-Za-z0-9_.-`` starting with a letter or digit, not ending in ``.``, no Windows device name
(``CON``, ``NUL.x``...) and unique regardless of case (macOS and Windows ignore it); languages are
language codes of at most 35 characters (RFC 5646's buffer size), unique per prompt regardless of
case. Samplers must be registered names and numbers are written by the key itself. Tags, texts and
the suite's name reach only the manifest and the PNG text, never a path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from annotated_types import Le

from t2iscope.config import NonNegInt, PositiveInt, load_yaml, location, parse
from t2iscope.errors import ConfigError
from t2iscope.generate.attributes import EXPECTABLE, OTHER, spelled, word_problem
from t2iscope.generate.limits import (
    DEFAULT_CFG_RESCALE,
    DEFAULT_CFG_SCALE,
    DEFAULT_CLIP_SKIP,
    DEFAULT_DENOISING_STRENGTH,
    DEFAULT_EMPHASIS,
    DEFAULT_HR_SCALE,
    DEFAULT_HR_UPSCALER,
    DEFAULT_SAMPLER,
    DEFAULT_STEPS,
    MAX_LANGUAGE,
    MAX_SEED,
    is_language_code,
)
from t2iscope.generate.params import Params, check_side
from t2iscope.generate.ranges import Values, parse_values
from t2iscope.generate.schedules import AUTOMATIC

DEFAULT_LANGUAGE = "en"
# Letters, digits, '_-.'; not starting with '.' or '-' (no '..', no option look-alike), not ending
# in '.' (Windows drops it, so 'a.' and 'a' would share a folder); 100 characters at most.
_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,98}[A-Za-z0-9_-])?")
# Windows device names, reserved as a file name with any extension (NUL, nul.txt)
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"{d}{i}" for d in ("COM", "LPT") for i in range(10))}
# A BCP 47-style tag (en, zh-Hans, pt_BR): it becomes part of each image's file name, so nothing
# that could leave the run folder ('/', '..') gets through.

# A grid axis is a value, an A1111 range string or a list of those (expanded by parse_values).
_Ints = int | str | list[int | str]
_Floats = float | str | list[float | str]
_Names = str | list[str]
_AXES = {
    "seeds": int,
    "cfg_scale": float,
    "cfg_rescale": float,
    "steps": int,
    "sampler": str,
    "scheduler": str,
    "subseed_strength": float,
    "clip_skip": int,
    "denoising_strength": float,
}
# Settings a suite fixes for all its images (defaults only): A1111's names, Params' limits
_FIXED = ("subseed", "emphasis", "enable_hr", "hr_scale", "hr_upscaler", "hr_second_pass_steps")


@dataclass(frozen=True)
class _Defaults:
    """The generation defaults (``t2iscope.generate.limits``), except seeds: a suite is reproducible."""

    seeds: _Ints = 0
    cfg_scale: _Floats = DEFAULT_CFG_SCALE
    cfg_rescale: _Floats = DEFAULT_CFG_RESCALE
    steps: _Ints = DEFAULT_STEPS
    sampler: _Names = DEFAULT_SAMPLER
    scheduler: _Names = AUTOMATIC  # A1111's Schedule type
    subseed_strength: _Floats = 0.0  # A1111's Variation strength, toward the noise of `subseed`
    clip_skip: _Ints = DEFAULT_CLIP_SKIP
    denoising_strength: _Floats = DEFAULT_DENOISING_STRENGTH  # the hires fix's second pass
    width: int | None = None
    height: int | None = None
    negative_prompt: str = ""
    subseed: int = 0  # A1111's Variation seed; a suite is reproducible, so no -1
    emphasis: str = DEFAULT_EMPHASIS
    enable_hr: bool = False
    hr_scale: float = DEFAULT_HR_SCALE
    hr_upscaler: str = DEFAULT_HR_UPSCALER
    hr_second_pass_steps: int = 0


@dataclass(frozen=True)
class _Grid:
    """Axes swept by the grid; an axis left out takes its value from ``defaults``."""

    seeds: _Ints | None = None
    cfg_scale: _Floats | None = None
    cfg_rescale: _Floats | None = None
    steps: _Ints | None = None
    sampler: _Names | None = None
    scheduler: _Names | None = None
    subseed_strength: _Floats | None = None
    clip_skip: _Ints | None = None
    denoising_strength: _Floats | None = None  # with defaults.enable_hr only


MAX_COUNT = 1000  # legs, fingers, count: a bound that no picture reaches and no typo passes


@dataclass(frozen=True)
class _Expect:
    """What a prompt asks for, in English words shared by all its translations (``generate.attributes``)."""

    subject: str | None = None
    color: str | None = None
    culture: str | None = None
    gender: str | None = None
    legs: Annotated[NonNegInt, Le(MAX_COUNT)] | None = None
    fingers: Annotated[NonNegInt, Le(MAX_COUNT)] | None = None
    count: Annotated[PositiveInt, Le(MAX_COUNT)] | None = None


@dataclass(frozen=True)
class _Vocabulary:
    """Labels a judge may answer beyond the prompts' ``expect`` (observed attributes: culture, gender)."""

    subject: tuple[str, ...] = ()
    color: tuple[str, ...] = ()
    culture: tuple[str, ...] = ()
    gender: tuple[str, ...] = ()
    legs: tuple[Annotated[NonNegInt, Le(MAX_COUNT)], ...] = ()
    fingers: tuple[Annotated[NonNegInt, Le(MAX_COUNT)], ...] = ()
    count: tuple[Annotated[PositiveInt, Le(MAX_COUNT)], ...] = ()


@dataclass(frozen=True)
class _PromptEntry:
    id: str
    text: str | None = None
    language: str | None = None
    translations: dict[str, str] | None = None
    tags: tuple[str, ...] = ()
    negative_prompt: str | None = None
    expect: _Expect | None = None


@dataclass(frozen=True)
class _SuiteFile:
    """A suite file as written: its shape; ``parse_suite`` adds the checks types cannot say."""

    name: str
    description: str = ""
    defaults: _Defaults = field(default_factory=_Defaults)
    grid: _Grid = field(default_factory=_Grid)
    vocabulary: _Vocabulary = field(default_factory=_Vocabulary)
    templates: dict[str, str] = field(default_factory=dict)
    prompts: tuple[_PromptEntry, ...] = ()


@dataclass(frozen=True)
class Prompt:
    id: str
    texts: tuple[tuple[str, str], ...]  # (language, text), in file order
    tags: tuple[str, ...]
    negative_prompt: str
    expect: dict[str, str | int] = field(default_factory=dict)  # attribute -> asked value


@dataclass(frozen=True)
class Suite:
    """A checked suite; each axis is a lazy sequence of values (``ranges.Values``), in file order."""

    name: str
    description: str
    source: str
    prompts: tuple[Prompt, ...]
    seeds: Values
    cfg_scale: Values
    cfg_rescale: Values
    steps: Values
    sampler: Values
    width: int | None
    height: int | None
    # attribute -> labels offered to a judge (the prompts' expects first, then the suite's
    # vocabulary) and attribute (or ``other``) -> zero-shot template; see ``vocabulary_json``
    vocabulary: dict[str, tuple[str | int, ...]] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)
    # A1111 settings (Params' defaults unless the suite sets them); the last four axes come first
    scheduler: Values = field(default_factory=lambda: Values([(AUTOMATIC,)]))
    subseed_strength: Values = field(default_factory=lambda: Values([(0.0,)]))
    clip_skip: Values = field(default_factory=lambda: Values([(DEFAULT_CLIP_SKIP,)]))
    denoising_strength: Values = field(default_factory=lambda: Values([(DEFAULT_DENOISING_STRENGTH,)]))
    subseed: int = 0
    emphasis: str = DEFAULT_EMPHASIS
    enable_hr: bool = False
    hr_scale: float = DEFAULT_HR_SCALE
    hr_upscaler: str = DEFAULT_HR_UPSCALER
    hr_second_pass_steps: int = 0

    def vocabulary_json(self) -> str:
        """The manifest's ``vocabulary`` cell: ``{"labels": {...}, "templates": {...}}`` as JSON."""
        labels = {a: list(v) for a, v in self.vocabulary.items()}
        return json.dumps({"labels": labels, "templates": self.templates}, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class Job:
    """One image of a suite: its row key, metadata and generation parameters."""

    key: str
    suite: str
    prompt_id: str
    language: str
    tags: tuple[str, ...]
    params: Params
    expect: str = "{}"  # the prompt's expect as JSON (the manifest's ``expect`` column)
    vocabulary: str = "{}"  # the suite's ``Suite.vocabulary_json()``

    @property
    def image_path(self) -> str:
        return f"images/{self.key}.png"


def _values(spec: Any, kind: type, where: str) -> Values:
    try:
        return parse_values(spec, kind)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _check_id(value: str, what: str, where: str) -> None:
    """A prompt id or suite name: a safe file name on every system (see the module docstring)."""
    if not _ID.fullmatch(value):
        raise ConfigError(
            f"{where}: {what} must be 1 to 100 letters, digits, '_', '-' or '.', starting with a letter "
            f"or digit and not ending in '.', got {value!r}"
        )
    if value.split(".")[0].upper() in _RESERVED:
        raise ConfigError(f"{where}: {what} {value!r} is a Windows device name; choose another")


def _unique(names: Sequence[str], what: str, fields: Sequence[str]) -> None:
    """Refuse repeats, and names that differ only in case (one file on macOS and Windows)."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        first = names[seen.setdefault(name.casefold(), i)]
        if first == name and seen[name.casefold()] != i:
            raise ConfigError(f"{fields[i]}: duplicate {what} {name!r}")
        if first != name:
            raise ConfigError(
                f"{fields[i]}: {what} {name!r} differs from {first!r} only in case, "
                "which macOS and Windows file names ignore"
            )


def _prompt(raw: _PromptEntry, where: str, negative: str) -> Prompt:
    _check_id(raw.id, "id", where)
    where = f"{where} ({raw.id})"
    if (raw.text is None) == (raw.translations is None):
        raise ConfigError(f"{where}: give exactly one of text or translations")
    if raw.translations is not None:
        if raw.language is not None:
            raise ConfigError(f"{where}: language goes with text; translations are keyed by language")
        if not raw.translations:
            raise ConfigError(f"{where}.translations: expected a non-empty mapping language -> text")
        texts = tuple(raw.translations.items())
        fields = [f"{where}.translations.{lang}" for lang, _ in texts]
    else:
        texts = ((DEFAULT_LANGUAGE if raw.language is None else raw.language, raw.text),)
        fields = [f"{where}.language"]
    for (lang, _), at in zip(texts, fields, strict=True):
        if not is_language_code(lang):
            raise ConfigError(
                f"{at}: a language is a code like en, de or zh-Hans (at most {MAX_LANGUAGE} characters), "
                f"got {lang!r}"
            )
    _unique([lang for lang, _ in texts], "language", fields)
    neg = negative if raw.negative_prompt is None else raw.negative_prompt
    expect = _words(raw.expect, f"{where}.expect") if raw.expect else {}
    return Prompt(id=raw.id, texts=texts, tags=raw.tags, negative_prompt=neg, expect=expect)


def _word(value: str, where: str) -> str:
    """A label word (``attributes.word_problem``), stripped."""
    problem = word_problem(value)
    if problem:
        raise ConfigError(f"{where}: {problem}")
    return value.strip()


def _words(entry: _Expect, where: str) -> dict[str, str | int]:
    """An ``expect`` as attribute -> value, words checked by ``_word``."""
    out: dict[str, str | int] = {}
    for name in EXPECTABLE:
        value = getattr(entry, name)
        if value is not None:
            out[name] = _word(value, f"{where}.{name}") if isinstance(value, str) else value
    return out


def _vocabulary(
    prompts: Sequence[Prompt], extra: _Vocabulary, source: str
) -> dict[str, tuple[str | int, ...]]:
    """Per attribute, the labels a judge is offered: the prompts' expects, then the suite's ``vocabulary``.

    Labels are one per spelling (``generate.attributes.spelled``): a vocabulary listing ``feminine``
    and ``Feminine`` is refused; a vocabulary word a prompt already expects is kept once.
    """
    out = {}
    for name in EXPECTABLE:
        labels = {spelled(p.expect[name]): p.expect[name] for p in prompts if name in p.expect}
        listed: dict[str | None, int] = {}
        for i, value in enumerate(getattr(extra, name)):
            where = location(source, ("vocabulary", name, i))
            label = _word(value, where) if isinstance(value, str) else value
            key = spelled(label)
            if key in listed:
                raise ConfigError(f"{where}: {value!r} repeats vocabulary.{name}[{listed[key]}]")
            listed[key] = i
            labels.setdefault(key, label)
        if labels:
            out[name] = tuple(labels.values())
    return out


def _templates(templates: dict[str, str], source: str) -> dict[str, str]:
    """Zero-shot templates: keys are attributes or ``other``; an attribute's has one ``{}`` for the label."""
    for name, text in templates.items():
        where = location(source, ("templates", name))
        if name != OTHER and name not in EXPECTABLE:  # flags (watermark, present) have fixed texts
            raise ConfigError(f"{where}: no template for this; valid: {', '.join([*EXPECTABLE, OTHER])}")
        holes = text.count("{}")
        if name == OTHER and "{" in text:
            raise ConfigError(f"{where}: the 'other' label's text takes no {{}} placeholder, got {text!r}")
        if name != OTHER and (holes != 1 or text.count("{") != 1 or text.count("}") != 1):
            raise ConfigError(f"{where}: a template has exactly one {{}} where the label goes, got {text!r}")
    return dict(templates)


def parse_suite(data: Any, source: str) -> Suite:
    """Validate a suite's parsed YAML (``source`` names it in errors) into a Suite.

    Beyond the shape (``t2iscope.config``: unknown keys, types), checks that names and ids are safe
    file names and languages are language codes (module docstring), that each prompt gives exactly
    one of text or translations, that ids are unique (regardless of case), that axes parse as A1111
    ranges and that every sampler and value is within generation's limits. Raises ConfigError
    naming ``source`` and the field.
    """
    raw = parse(_SuiteFile, data, source)
    _check_id(raw.name, "name", source)
    resolved = {}
    where = {}  # axis -> its field, as errors name it: "s.yaml: grid.steps"
    for axis, kind in _AXES.items():
        # A default the grid overrides is still checked: a bad value is a mistake wherever it is.
        where[axis] = location(source, ("defaults", axis))
        resolved[axis] = _values(getattr(raw.defaults, axis), kind, where[axis])
        _check_axis(axis, resolved[axis], where[axis])
        if (spec := getattr(raw.grid, axis)) is not None:
            where[axis] = location(source, ("grid", axis))
            resolved[axis] = _values(spec, kind, where[axis])
            _check_axis(axis, resolved[axis], where[axis])
    size = {"width": raw.defaults.width, "height": raw.defaults.height}
    for name, value in size.items():
        if value is not None:
            _located(location(source, ("defaults", name)), check_side, name, value)
    fixed = {name: getattr(raw.defaults, name) for name in _FIXED}
    _check_settings(fixed, resolved, size, where, source)
    if not raw.prompts:
        raise ConfigError(f"{source}: prompts must be a non-empty list")
    negative = raw.defaults.negative_prompt
    prompts = tuple(_prompt(p, location(source, ("prompts", i)), negative) for i, p in enumerate(raw.prompts))
    ids = [p.id for p in prompts]
    _unique(ids, "prompt id", [location(source, ("prompts", i, "id")) for i in range(len(ids))])
    return Suite(
        name=raw.name,
        description=raw.description,
        source=source,
        prompts=prompts,
        **resolved,
        **size,
        vocabulary=_vocabulary(prompts, raw.vocabulary, source),
        templates=_templates(raw.templates, source),
        **fixed,
    )


def _located(where: str, check: Any, *args: Any) -> None:
    """Run ``check(*args)``, its ConfigError prefixed with the field (``s.yaml: grid.steps: ...``)."""
    try:
        check(*args)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _check_settings(
    fixed: dict[str, Any],
    axes: dict[str, Values],
    size: dict[str, int | None],
    where: dict[str, str],
    source: str,
) -> None:
    """The suite's fixed A1111 settings, and what holds only between settings.

    Each fixed setting within Params' limits (``subseed`` 0..2**32-1: a suite is reproducible);
    every sampler with every schedule type (an old ``DPM++ 2M Karras`` takes Automatic or Karras
    only); ``denoising_strength`` swept only with ``enable_hr`` (it is the hires fix's); and with
    a fixed width/height, the hires size a valid image size.
    """
    for name, value in fixed.items():
        at = location(source, ("defaults", name))
        if name == "subseed" and not (isinstance(value, int) and 0 <= value <= MAX_SEED):
            raise ConfigError(
                f"{at}: subseed must be from 0 to {MAX_SEED}, got {value!r} (a suite is reproducible: no -1)"
            )
        _located(at, Params("", **{"enable_hr": True, name: value}).check)
    schedulers = dict.fromkeys(axes["scheduler"])
    for sampler in dict.fromkeys(axes["sampler"]):
        for scheduler in schedulers:
            _located(where["scheduler"], Params("", sampler=sampler, scheduler=scheduler).check)
    if not fixed["enable_hr"] and len(axes["denoising_strength"]) > 1:
        raise ConfigError(
            f"{where['denoising_strength']}: sweeps the hires fix's second pass; set defaults.enable_hr: true"
        )
    if fixed["enable_hr"] and size["width"] is not None and size["height"] is not None:
        from t2iscope.generate.txt2img import hires_size

        p = Params("", width=size["width"], height=size["height"], enable_hr=True, hr_scale=fixed["hr_scale"])
        _located(location(source, ("defaults", "hr_scale")), hires_size, p, size["width"], size["height"])


def _check_axis(axis: str, values: Values, where: str) -> None:
    """Every value of an axis within generation's limits; numeric ranges are checked by their ends."""
    if axis in ("sampler", "scheduler"):
        for name in dict.fromkeys(values):
            _located(where, Params("", **{axis: name}).check)
        return
    low, high = values.bounds()
    if axis == "seeds":
        if low < 0 or high > MAX_SEED:
            raise ConfigError(
                f"{where}: seeds must be from 0 to {MAX_SEED}, got {low if low < 0 else high} "
                "(a suite must be reproducible: no -1)"
            )
        return
    for value in (low, high):  # enable_hr: denoising_strength is checked only for the hires fix
        _located(where, Params("", enable_hr=True, **{axis: value}).check)


def shipped_suites() -> list[str]:
    folder = resources.files("t2iscope.generate") / "suites"
    return sorted(f.name[: -len(".yaml")] for f in folder.iterdir() if f.name.endswith(".yaml"))


def load_suite(name_or_path: str | Path) -> Suite:
    """Load a suite from a YAML path, or by the name of a shipped suite (``multilingual``)."""
    path = Path(name_or_path)
    if not path.is_file():
        shipped = resources.files("t2iscope.generate") / "suites" / f"{name_or_path}.yaml"
        if not shipped.is_file():
            raise ConfigError(
                f"suite {name_or_path}: no such file and no shipped suite of that name; "
                f"shipped: {', '.join(shipped_suites())}"
            )
        path = Path(str(shipped))
    return parse_suite(load_yaml(path), str(path))


def _slug(value: object) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "", str(value).replace("+", "p")).lower()


def _number(value: float) -> str:
    """A number as keys write it: ``%g`` (7.5, 1e-05) when that is exact, else Python's repr.

    ``%g`` keeps 6 digits, so 7.0000001 and 7.0000002 would share a key (and a file); keys that
    ``%g`` writes exactly are unchanged, so folders made before resume as they were.
    """
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


def grid_size(suite: Suite) -> int:
    """How many jobs ``expand`` yields, computed from the axes' lengths (nothing is expanded)."""
    size = sum(len(p.texts) for p in suite.prompts)
    for values in _axes(suite):
        size *= len(values)
    return size


def _axes(suite: Suite) -> tuple[Values, ...]:
    """The grid's axes in expansion order (the seed varies fastest)."""
    return (
        suite.sampler,
        suite.scheduler,
        suite.steps,
        suite.cfg_scale,
        suite.cfg_rescale,
        suite.clip_skip,
        suite.subseed_strength,
        suite.denoising_strength,
        suite.seeds,
    )


def job_key(prompt_id: str, language: str, p: Params) -> str:
    """An image's key (and file name, ``images/<key>.png``): one per distinct setting of the grid.

    ``<id>/<language>-<sampler>-n<steps>-c<cfg>-s<seed>``; a setting added later is written only
    when it is not A1111's default (``-r0.7`` guidance rescale, ``-karras`` a schedule type other
    than Automatic, ``-cs2`` clip skip, ``-v5x0.3`` variation seed x strength, ``-enonorm``
    emphasis, ``-hr2-latent[-hn10]-d0.7`` hires fix), so folders made before keep their keys
    and resume.
    """
    parts = [f"{language}-{_slug(p.sampler)}"]
    if p.scheduler != AUTOMATIC:
        parts.append(_slug(p.scheduler))
    parts += [f"n{p.steps}", f"c{_number(p.cfg_scale)}"]
    if p.cfg_rescale:
        parts.append(f"r{_number(p.cfg_rescale)}")
    if p.clip_skip != DEFAULT_CLIP_SKIP:
        parts.append(f"cs{p.clip_skip}")
    if p.subseed_strength:
        parts.append(f"v{p.subseed}x{_number(p.subseed_strength)}")
    if p.emphasis != DEFAULT_EMPHASIS:
        parts.append(f"e{_slug(p.emphasis)}")
    if p.enable_hr:
        parts += [f"hr{_number(p.hr_scale)}", _slug(p.hr_upscaler)]
        if p.hr_second_pass_steps:
            parts.append(f"hn{p.hr_second_pass_steps}")
        parts.append(f"d{_number(p.denoising_strength)}")
    return f"{prompt_id}/{'-'.join(parts)}-s{p.seed}"


def _product(*axes: Sequence) -> Iterator[tuple]:
    """itertools.product's order, without first copying every axis into a tuple as it does."""
    if not axes:
        yield ()
        return
    for head in axes[0]:
        for tail in _product(*axes[1:]):
            yield (head, *tail)


def expand(suite: Suite) -> Iterator[Job]:
    """Every (prompt, language, sampler, scheduler, steps, cfg, rescale, clip skip, variation
    strength, denoising strength, seed) combination, in a fixed order.

    A generator over the lazy axes (the seed varies fastest): take what you need with
    ``itertools.islice``; ``grid_size`` counts them all.
    """
    vocabulary = suite.vocabulary_json()
    for prompt in suite.prompts:
        expect = json.dumps(prompt.expect, ensure_ascii=False, sort_keys=True)
        for (
            lang,
            text,
        ), sampler, scheduler, steps, cfg, rescale, clip_skip, variation, denoise, seed in _product(
            prompt.texts, *_axes(suite)
        ):
            params = Params(
                prompt=text,
                negative_prompt=prompt.negative_prompt,
                seed=seed,
                steps=steps,
                cfg_scale=cfg,
                cfg_rescale=rescale,
                sampler=sampler,
                scheduler=scheduler,
                width=suite.width,
                height=suite.height,
                subseed=suite.subseed,
                subseed_strength=variation,
                clip_skip=clip_skip,
                emphasis=suite.emphasis,
                enable_hr=suite.enable_hr,
                hr_scale=suite.hr_scale,
                hr_upscaler=suite.hr_upscaler,
                hr_second_pass_steps=suite.hr_second_pass_steps,
                denoising_strength=denoise,
            )
            key = job_key(prompt.id, lang, params)
            yield Job(key, suite.name, prompt.id, lang, prompt.tags, params, expect, vocabulary)
