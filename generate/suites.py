"""Prompt suites: a YAML file of prompts and a parameter grid, expanded into generation jobs.

A suite names its prompts (stable ids, tags, per-language translations, negative prompts), its
defaults and a grid whose axes (seeds, cfg_scale, cfg_rescale, steps, sampler) take lists or A1111
X/Y/Z range syntax (``1-5 (+2)``, ``1-10 [5]``). Validation is strict (``t2iscope.config``):
unknown keys, wrong types, duplicate ids and bad ranges are ConfigErrors naming the file and key,
raised before any model is loaded. Expansion is deterministic and every job has a stable key,
which is what lets a killed run resume.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from t2iscope.config import load_yaml, location, parse
from t2iscope.errors import ConfigError
from t2iscope.generate.params import Params
from t2iscope.generate.ranges import parse_values
from t2iscope.generate.samplers import DEFAULT_SAMPLER

DEFAULT_LANGUAGE = "en"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# A BCP 47-style tag (en, zh-Hans, pt_BR): it becomes part of each image's file name, so nothing
# that could leave the run folder ('/', '..') gets through.
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")

# A grid axis is a value, an A1111 range string or a list of those (expanded by parse_values).
_Ints = int | str | list[int | str]
_Floats = float | str | list[float | str]
_Names = str | list[str]
_AXES = {"seeds": int, "cfg_scale": float, "cfg_rescale": float, "steps": int, "sampler": str}


@dataclass(frozen=True)
class _Defaults:
    seeds: _Ints = 0
    cfg_scale: _Floats = 7.0
    cfg_rescale: _Floats = 0.0
    steps: _Ints = 20
    sampler: _Names = DEFAULT_SAMPLER
    width: int | None = None
    height: int | None = None
    negative_prompt: str = ""


@dataclass(frozen=True)
class _Grid:
    """Axes swept by the grid; an axis left out takes its value from ``defaults``."""

    seeds: _Ints | None = None
    cfg_scale: _Floats | None = None
    cfg_rescale: _Floats | None = None
    steps: _Ints | None = None
    sampler: _Names | None = None


@dataclass(frozen=True)
class _PromptEntry:
    id: str
    text: str | None = None
    language: str | None = None
    translations: dict[str, str] | None = None
    tags: tuple[str, ...] = ()
    negative_prompt: str | None = None


@dataclass(frozen=True)
class _SuiteFile:
    """A suite file as written: its shape; ``parse_suite`` adds the checks types cannot say."""

    name: str
    description: str = ""
    defaults: _Defaults = field(default_factory=_Defaults)
    grid: _Grid = field(default_factory=_Grid)
    prompts: tuple[_PromptEntry, ...] = ()


@dataclass(frozen=True)
class Prompt:
    id: str
    texts: tuple[tuple[str, str], ...]  # (language, text), in file order
    tags: tuple[str, ...]
    negative_prompt: str


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    source: str
    prompts: tuple[Prompt, ...]
    seeds: tuple[int, ...]
    cfg_scale: tuple[float, ...]
    cfg_rescale: tuple[float, ...]
    steps: tuple[int, ...]
    sampler: tuple[str, ...]
    width: int | None
    height: int | None


@dataclass(frozen=True)
class Job:
    """One image of a suite: its row key, metadata and generation parameters."""

    key: str
    suite: str
    prompt_id: str
    language: str
    tags: tuple[str, ...]
    params: Params

    @property
    def image_path(self) -> str:
        return f"images/{self.key}.png"


def _values(spec: Any, kind: type, where: str) -> tuple:
    try:
        return tuple(parse_values(spec, kind))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _prompt(raw: _PromptEntry, where: str, negative: str) -> Prompt:
    if not _ID.match(raw.id):
        raise ConfigError(f"{where}: id must be letters, digits, '_', '-' or '.', got {raw.id!r}")
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
        texts = ((raw.language or DEFAULT_LANGUAGE, raw.text),)
        fields = [f"{where}.language"]
    for (lang, _), at in zip(texts, fields, strict=True):
        if not _LANGUAGE.match(lang):
            raise ConfigError(f"{at}: a language is a code like en, de or zh-Hans, got {lang!r}")
    neg = negative if raw.negative_prompt is None else raw.negative_prompt
    return Prompt(id=raw.id, texts=texts, tags=raw.tags, negative_prompt=neg)


def parse_suite(data: Any, source: str) -> Suite:
    """Validate a suite's parsed YAML (``source`` names it in errors) into a Suite.

    Beyond the shape (``t2iscope.config``: unknown keys, types), checks that names and ids are
    letters, digits, ``_-.``, that each prompt gives exactly one of text or translations, that
    ids are unique, that axes parse as A1111 ranges and that every sampler and setting is valid
    for generation. Raises ConfigError naming ``source`` and the field.
    """
    raw = parse(_SuiteFile, data, source)
    if not _ID.match(raw.name):
        raise ConfigError(f"{source}: name must be letters, digits, '_', '-' or '.', got {raw.name!r}")
    resolved = {}
    where = {}  # axis -> its field, as errors name it: "s.yaml: grid.steps"
    for axis, kind in _AXES.items():
        # A default the grid overrides is still checked: a bad value is a mistake wherever it is.
        where[axis] = location(source, ("defaults", axis))
        resolved[axis] = _values(getattr(raw.defaults, axis), kind, where[axis])
        if (spec := getattr(raw.grid, axis)) is not None:
            where[axis] = location(source, ("grid", axis))
            resolved[axis] = _values(spec, kind, where[axis])
    size = {"width": raw.defaults.width, "height": raw.defaults.height}
    _check_settings(resolved, size, where, source)
    if not raw.prompts:
        raise ConfigError(f"{source}: prompts must be a non-empty list")
    negative = raw.defaults.negative_prompt
    prompts = tuple(_prompt(p, location(source, ("prompts", i)), negative) for i, p in enumerate(raw.prompts))
    seen: dict[str, int] = {}
    for i, p in enumerate(prompts):
        if p.id in seen:
            where = location(source, ("prompts", i, "id"))
            raise ConfigError(f"{where}: duplicate prompt id {p.id!r} (also prompts[{seen[p.id]}].id)")
        seen[p.id] = i
    suite = Suite(
        name=raw.name,
        description=raw.description,
        source=source,
        prompts=prompts,
        **resolved,
        **size,
    )
    for sampler in suite.sampler:  # the settings together (each alone is checked above)
        for rescale in {min(suite.cfg_rescale), max(suite.cfg_rescale)}:
            low = {"steps": min(suite.steps), "cfg_scale": min(suite.cfg_scale), "cfg_rescale": rescale}
            probe = Params("", sampler=sampler, **low, **size)
            try:
                probe.check()
            except ConfigError as exc:
                raise ConfigError(f"{source}: {exc}") from None
    return suite


def _check_settings(
    axes: dict[str, tuple], size: dict[str, int | None], where: dict[str, str], source: str
) -> None:
    """Each axis value and size alone, as generation checks it, the error naming its field."""
    if any(s < 0 for s in axes["seeds"]):
        raise ConfigError(f"{where['seeds']}: seeds must be >= 0 (a suite must be reproducible)")
    settings = [
        (axis, {axis: v}, where[axis])
        for axis in ("steps", "cfg_scale", "cfg_rescale", "sampler")
        for v in sorted(set(axes[axis]))
    ]
    settings += [(name, {name: v}, location(source, ("defaults", name))) for name, v in size.items()]
    for _, setting, field_at in settings:
        try:
            Params("", **setting).check()
        except ConfigError as exc:
            raise ConfigError(f"{field_at}: {exc}") from None


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


def expand(suite: Suite) -> list[Job]:
    """Every (prompt, language, sampler, steps, cfg, seed) combination, in a fixed order."""
    jobs = []
    for prompt in suite.prompts:
        for (lang, text), sampler, steps, cfg, rescale, seed in itertools.product(
            prompt.texts, suite.sampler, suite.steps, suite.cfg_scale, suite.cfg_rescale, suite.seeds
        ):
            # plain CFG keeps the key it had before cfg_rescale existed, so old runs resume
            rescaled = f"-r{rescale:g}" if rescale else ""
            key = f"{prompt.id}/{lang}-{_slug(sampler)}-n{steps}-c{cfg:g}{rescaled}-s{seed}"
            params = Params(
                prompt=text,
                negative_prompt=prompt.negative_prompt,
                seed=seed,
                steps=steps,
                cfg_scale=cfg,
                cfg_rescale=rescale,
                sampler=sampler,
                width=suite.width,
                height=suite.height,
            )
            jobs.append(Job(key, suite.name, prompt.id, lang, prompt.tags, params))
    return jobs
