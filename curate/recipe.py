"""Recipes: YAML naming stages in order with their parameters, validated before any work starts.

```yaml
name: laion2b-en
description: English captions, LAION's clean thresholds
dropped: keys             # full (default) | keys | none: what dropped/ holds, see below
stages:
  - language: {keep: [en], min_score: 0.5}
  - watermark: {max_score: 0.8}
post_download:            # run by `t2iscope curate download` on the fetched images
  - resolution: {min_side: 256}
```

``dropped`` trades audit detail for write time (on LAION-scale runs most rows are dropped, and
writing their URL and TEXT can cost more than the filtering): ``full`` keeps every column of
every dropped row, ``keys`` only ``hash, LANGUAGE, lang, domain`` (those present) with ``stage``
and ``reason``, ``none`` writes no dropped files. stats.json stays exact in every mode.

Unknown keys, unknown stages, misspelled or mistyped parameters are ConfigErrors naming the
file and the stage. A stage may be given by name alone (``- dedup``) to take its defaults. The
``validity`` stage (URL and caption checks) is added when a recipe does not name it, so malformed
rows are always counted: right after the leading numeric stages (sizes, scores), which are cheap,
and before any stage that reads a URL or a caption. A row that fails both is counted once, under
the numeric stage; that order lets the engine test URLs only on rows that survive the numbers.
``Recipe.to_yaml()`` writes every parameter, defaults included: that is what a run saves.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from t2iscope.curate.operators import METADATA, OPERATORS, PIXELS, Operator, load_all
from t2iscope.errors import ConfigError
from t2iscope.registry import check_params

RECIPES_DIR = Path(__file__).parent / "recipes"
TOP_KEYS = ("name", "description", "engine", "dropped", "stages", "post_download")
ENGINES = ("local", "ray")
DROPPED_MODES = ("full", "keys", "none")


@dataclass(frozen=True)
class Stage:
    name: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def op(self) -> Operator:
        return OPERATORS.get(self.name)


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str = ""
    engine: str = "local"
    dropped: str = "full"
    stages: tuple[Stage, ...] = ()
    post_download: tuple[Stage, ...] = ()
    source: str = "<memory>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "engine": self.engine,
            "dropped": self.dropped,
            "stages": [{s.name: dict(s.params)} for s in self.stages],
            "post_download": [{s.name: dict(s.params)} for s in self.post_download],
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


def builtin_names() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def resolve_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.is_file():
        return path
    builtin = RECIPES_DIR / f"{name_or_path}.yaml"
    if "/" not in name_or_path and builtin.is_file():
        return builtin
    raise ConfigError(
        f"recipe {name_or_path!r} is neither a file nor a built-in; built-ins: {', '.join(builtin_names())}"
    )


def load_recipe(name_or_path: str) -> Recipe:
    """Read, validate and resolve a recipe file or built-in recipe name."""
    path = resolve_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    return recipe_from_dict(data, str(path))


def recipe_from_dict(data: Any, where: str) -> Recipe:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a recipe is a mapping with keys {', '.join(TOP_KEYS)}")
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; accepted: {', '.join(TOP_KEYS)}")
    engine = data.get("engine", "local")
    if engine not in ENGINES:
        raise ConfigError(f"{where}: engine {engine!r}; valid: {', '.join(ENGINES)}")
    dropped = data.get("dropped", "full")
    if dropped not in DROPPED_MODES:
        raise ConfigError(f"{where}: dropped {dropped!r}; valid: {', '.join(DROPPED_MODES)}")
    if "stages" not in data:
        raise ConfigError(f"{where}: missing key 'stages'")
    stages = _stages(data.get("stages"), where, "stages", METADATA)
    if not any(s.name == "validity" for s in stages):
        lead = next((i for i, s in enumerate(stages) if not s.op.numeric), len(stages))
        validity = _stage("validity", {}, where, "stages", 0, METADATA)
        stages = (*stages[:lead], validity, *stages[lead:])
    post = _stages(data.get("post_download") or [], where, "post_download", PIXELS)
    name = data.get("name") or Path(where).stem
    return Recipe(str(name), str(data.get("description") or ""), engine, dropped, stages, post, where)


def _stages(items: Any, where: str, key: str, phase: str) -> tuple[Stage, ...]:
    if not isinstance(items, list):
        raise ConfigError(f"{where}: '{key}' must be a list of '- stage: {{params}}' entries")
    out = []
    for i, item in enumerate(items, start=1):
        if isinstance(item, str):
            name, params = item, {}
        elif isinstance(item, dict) and len(item) == 1:
            name, params = next(iter(item.items()))
            params = {} if params is None else params
        else:
            raise ConfigError(f"{where}: {key} entry {i} must be '- name' or '- name: {{params}}'")
        if not isinstance(params, dict):
            raise ConfigError(f"{where}: {key} {i} ({name}): parameters must be a mapping")
        out.append(_stage(str(name), params, where, key, i, phase))
    return tuple(out)


def _stage(name: str, params: dict[str, Any], where: str, key: str, i: int, phase: str) -> Stage:
    load_all()
    label = f"{where}: {key} {i} ({name})"
    try:
        op = OPERATORS.get(name)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {key} {i}: {exc}") from None
    if phase not in op.phases:
        raise ConfigError(f"{label}: runs only on {', '.join(sorted(op.phases))}, not under {key}")
    check_params(op.fn, params, label, data_args=2)
    sig = inspect.signature(op.fn)
    hints = typing.get_type_hints(op.fn)
    resolved = {}
    for pname in list(sig.parameters)[2:]:
        value = params.get(pname, sig.parameters[pname].default)
        if pname in params and not _fits(value, hints.get(pname, Any)):
            raise ConfigError(f"{label}: parameter {pname}={value!r} is not {_hint_name(hints.get(pname))}")
        resolved[pname] = value
    return Stage(name, resolved)


def _fits(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (inner,) = typing.get_args(hint) or (Any,)
        return isinstance(value, list) and all(_fits(v, inner) for v in value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _hint_name(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "") if hint is not None else "valid"
