"""Recipes: YAML naming stages in order with their parameters, validated before any work starts.

```yaml
name: laion2b-en
description: English captions, LAION's clean thresholds
dropped: keys             # full (default) | keys | none: what dropped/ holds, see below
engine: ray               # local (default) | ray: the same outputs on a Ray cluster (docs/scale.md)
stages:
  - language: {keep: [en]}
  - watermark: {max_score: 0.8}
post_download:            # run by `t2iscope curate download` on the fetched images
  - resolution: {min_side: 256}
columns:                  # optional: LAION name -> the input's column, read before the built-in aliases
  AESTHETIC_SCORE: my_score
```

``columns`` extends the alias table of curate/schema.py for inputs whose names it does not know:
each key is one of LAION's columns (others are refused), each value a column of the input (matched
case-insensitively, as DuckDB does; a file without it is a DataError naming the file and column).

``dropped`` trades audit detail for write time (on LAION-scale runs most rows are dropped, and
writing their URL and TEXT can cost more than the filtering): ``full`` keeps every column of
every dropped row, ``keys`` only ``hash, LANGUAGE, lang, domain`` (those present) with ``stage``
and ``reason``, ``none`` writes no dropped files. stats.json stays exact in every mode.

Unknown keys, unknown stages, misspelled or mistyped parameters, values outside an operator's
``Literal`` choices or ranges are ConfigErrors naming the file, the stage and the field (``r.yaml:
stages 2 (dedup): by 'urll'; valid: hash, url, image``), raised by ``t2iscope.config`` before any
work; so are what an operator's ``check`` hook refuses (``source: model`` under ``stages``, a
``domain`` entry that is not a host name) and a stage named twice in one phase (stats.json counts
by stage name: merge the two entries' parameters). A
stage may be given by name alone (``- dedup``) to take its defaults. The ``validity`` stage (URL
and caption checks) is added when a recipe does not name it, so malformed rows are always counted:
right after the leading numeric stages (sizes, scores), which are cheap, and before any stage that
reads a URL or a caption. A row that fails both is counted once, under the numeric stage; that
order lets the engine test URLs only on rows that survive the numbers.
``Recipe.to_yaml()`` writes every parameter, defaults included: that is what a run saves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from t2iscope.config import bind_params, load_yaml, location, parse
from t2iscope.curate.operators import METADATA, OPERATORS, PIXELS, Operator, load_all
from t2iscope.curate.schema import LAION_COLUMNS
from t2iscope.errors import ConfigError

RECIPES_DIR = Path(__file__).parent / "recipes"
Engine = Literal["local", "ray"]
Dropped = Literal["full", "keys", "none"]


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
    engine: Engine = "local"
    dropped: Dropped = "full"
    stages: tuple[Stage, ...] = ()
    post_download: tuple[Stage, ...] = ()
    source: str = "<memory>"
    columns: dict[str, str] = field(default_factory=dict)  # LAION name -> the input's column

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "engine": self.engine,
            "dropped": self.dropped,
            "stages": [{s.name: dict(s.params)} for s in self.stages],
            "post_download": [{s.name: dict(s.params)} for s in self.post_download],
            "columns": dict(self.columns),
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


@dataclass(frozen=True, kw_only=True)  # keyword-only: fields in the order a recipe file lists them
class _RecipeFile:
    """A recipe file as written; each stage entry (``- name`` or ``- name: {params}``) is checked
    against its operator's signature by ``_stage``."""

    name: str | None = None
    description: str | None = None
    engine: Engine = "local"
    dropped: Dropped = "full"
    stages: list[Any]
    post_download: list[Any] | None = None
    columns: dict[str, str] | None = None


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
    return recipe_from_dict(load_yaml(path), str(path))


def recipe_from_dict(data: Any, where: str) -> Recipe:
    """Validate a recipe's parsed YAML (``where`` names it in errors) into a Recipe.

    Raises ConfigError for unknown keys, an unknown stage or one outside its phase, stage
    parameters that do not fit the operator's signature (names, types, ``Literal`` choices), and a
    ``columns:`` entry that is not a LAION column or reuses an input column.
    """
    raw = parse(_RecipeFile, data, where)
    load_all()
    stages = _stages(raw.stages, where, "stages", METADATA)
    if not any(s.name == "validity" for s in stages):
        lead = next((i for i, s in enumerate(stages) if not s.op.numeric), len(stages))
        validity = Stage("validity", bind_params(OPERATORS.get("validity").fn, {}, where, data_args=2))
        stages = (*stages[:lead], validity, *stages[lead:])
    post = _stages(raw.post_download or [], where, "post_download", PIXELS)
    name = raw.name or Path(where).stem
    columns = _columns(raw.columns or {}, where)
    return Recipe(name, raw.description or "", raw.engine, raw.dropped, stages, post, where, columns)


def _columns(columns: dict[str, str], where: str) -> dict[str, str]:
    """The recipe's ``columns:``, checked: LAION names only, each naming a different input column."""
    read_as: dict[str, str] = {}  # the input's column, lower-cased -> the LAION name it is read as
    for name, column in columns.items():
        at = location(where, ("columns", name))
        if name not in LAION_COLUMNS:
            raise ConfigError(f"{at}: not a LAION column; valid: {', '.join(LAION_COLUMNS)}")
        if not column.strip():
            raise ConfigError(f"{at}: expected an input column name, got {column!r}")
        if (other := read_as.setdefault(column.lower(), name)) != name:
            raise ConfigError(f"{at}: {column} is already read as {other}; one column gives one LAION name")
    return dict(columns)


def _stages(items: list[Any], where: str, key: str, phase: str) -> tuple[Stage, ...]:
    out: list[Stage] = []
    first: dict[str, int] = {}  # stage name -> its entry number, counted from 1
    for i, item in enumerate(items, start=1):
        if isinstance(item, str):
            name, params = item, None
        elif isinstance(item, dict) and len(item) == 1:
            ((name, params),) = item.items()
        else:
            shape = "'- name' or '- name: {params}'"
            raise ConfigError(f"{where}: {key} entry {i} must be {shape}, got {item!r}")
        stage = _stage(str(name), params, f"{where}: {key} {i}", key, phase)
        if stage.name in first:
            raise ConfigError(
                f"{where}: {key} {i} ({stage.name}): listed twice (also {key} {first[stage.name]}); "
                "stats.json counts by stage name, so merge their parameters into one entry"
            )
        first[stage.name] = i
        out.append(stage)
    return tuple(out)


def _stage(name: str, params: Any, where: str, key: str, phase: str) -> Stage:
    """One stage entry; ``where`` is its label, ``r.yaml: stages 2``, counted from 1 as users do."""
    try:
        op = OPERATORS.get(name)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    where = f"{where} ({name})"
    if phase not in op.phases:
        raise ConfigError(f"{where}: runs only on {', '.join(sorted(op.phases))}, not under {key}")
    bound = bind_params(op.fn, {} if params is None else params, where, data_args=2)
    try:
        op.check_params(bound, phase)
    except (ValueError, ConfigError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return Stage(name, bound)
