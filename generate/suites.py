"""Prompt suites: a YAML file of prompts and a parameter grid, expanded into generation jobs.

A suite names its prompts (stable ids, tags, per-language translations, negative prompts), its
defaults and a grid whose axes (seeds, cfg_scale, cfg_rescale, steps, sampler) take lists or A1111 X/Y/Z range
syntax (``1-5 (+2)``, ``1-10 [5]``). Validation is strict: unknown keys, duplicate ids and bad
ranges are ConfigErrors naming the file and key, raised before any model is loaded. Expansion is
deterministic and every job has a stable key, which is what lets a killed run resume.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from t2iscope.errors import ConfigError
from t2iscope.generate.params import Params
from t2iscope.generate.ranges import parse_values
from t2iscope.generate.samplers import DEFAULT_SAMPLER

DEFAULT_LANGUAGE = "en"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SUITE_KEYS = {"name", "description", "defaults", "grid", "prompts"}
_GRID_AXES = {"seeds": int, "cfg_scale": float, "cfg_rescale": float, "steps": int, "sampler": str}
_DEFAULT_KEYS = {*_GRID_AXES, "width", "height", "negative_prompt"}
_PROMPT_KEYS = {"id", "text", "language", "translations", "tags", "negative_prompt"}


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


def _mapping(value: Any, where: str, allowed: set[str]) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    unknown = sorted(set(map(str, value)) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected text, got {type(value).__name__}")
    return value


def _values(spec: Any, kind: type, where: str) -> tuple:
    try:
        return tuple(parse_values(spec, kind))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _prompt(raw: Any, where: str, negative: str) -> Prompt:
    raw = _mapping(raw, where, _PROMPT_KEYS)
    pid = raw.get("id")
    if not isinstance(pid, str) or not _ID.match(pid):
        raise ConfigError(f"{where}: id must be letters, digits, '_', '-' or '.', got {pid!r}")
    where = f"{where} ({pid})"
    if ("text" in raw) == ("translations" in raw):
        raise ConfigError(f"{where}: give exactly one of text or translations")
    if "translations" in raw:
        if "language" in raw:
            raise ConfigError(f"{where}: language goes with text; translations are keyed by language")
        trans = raw["translations"]
        if not isinstance(trans, dict) or not trans:
            raise ConfigError(f"{where}.translations: expected a non-empty mapping language -> text")
        texts = tuple((str(k), _text(v, f"{where}.translations.{k}")) for k, v in trans.items())
    else:
        lang = _text(raw.get("language", DEFAULT_LANGUAGE), f"{where}.language")
        texts = ((lang, _text(raw["text"], f"{where}.text")),)
    tags = raw.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ConfigError(f"{where}.tags: expected a list of strings")
    neg = _text(raw.get("negative_prompt", negative), f"{where}.negative_prompt")
    return Prompt(id=pid, texts=texts, tags=tuple(tags), negative_prompt=neg)


def parse_suite(data: Any, source: str) -> Suite:
    """Validate a suite's parsed YAML (``source`` names it in errors) into a Suite."""
    data = _mapping(data, source, _SUITE_KEYS)
    name = data.get("name")
    if not isinstance(name, str) or not _ID.match(name):
        raise ConfigError(f"{source}: name must be letters, digits, '_', '-' or '.', got {name!r}")
    defaults = _mapping(data.get("defaults", {}), f"{source}: defaults", _DEFAULT_KEYS)
    grid = _mapping(data.get("grid", {}), f"{source}: grid", set(_GRID_AXES))
    axes = {"seeds": 0, "cfg_scale": 7.0, "cfg_rescale": 0.0, "steps": 20, "sampler": DEFAULT_SAMPLER}
    resolved = {}
    for axis, kind in _GRID_AXES.items():
        where = f"{source}: grid.{axis}" if axis in grid else f"{source}: defaults.{axis}"
        resolved[axis] = _values(grid.get(axis, defaults.get(axis, axes[axis])), kind, where)
    size = {}
    for key in ("width", "height"):
        value = defaults.get(key)
        if value is not None and not isinstance(value, int):
            raise ConfigError(f"{source}: defaults.{key}: expected an integer")
        size[key] = value
    negative = _text(defaults.get("negative_prompt", ""), f"{source}: defaults.negative_prompt")
    raw_prompts = data.get("prompts")
    if not isinstance(raw_prompts, list) or not raw_prompts:
        raise ConfigError(f"{source}: prompts must be a non-empty list")
    prompts = tuple(_prompt(p, f"{source}: prompts[{i}]", negative) for i, p in enumerate(raw_prompts))
    seen: set[str] = set()
    for p in prompts:
        if p.id in seen:
            raise ConfigError(f"{source}: duplicate prompt id {p.id!r}")
        seen.add(p.id)
    suite = Suite(
        name=name,
        description=str(data.get("description", "")),
        source=source,
        prompts=prompts,
        **resolved,
        **size,
    )
    if any(s < 0 for s in suite.seeds):
        raise ConfigError(f"{source}: seeds must be >= 0 (a suite must be reproducible)")
    for sampler in suite.sampler:
        for rescale in {min(suite.cfg_rescale), max(suite.cfg_rescale)}:
            low = {"steps": min(suite.steps), "cfg_scale": min(suite.cfg_scale), "cfg_rescale": rescale}
            probe = Params("", sampler=sampler, **low, **size)
            try:
                probe.check()
            except ConfigError as exc:
                raise ConfigError(f"{source}: {exc}") from None
    return suite


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
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    return parse_suite(data, str(path))


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
