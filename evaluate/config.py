"""AUDIT.yaml: which audits to run, on which inputs, with which judge, validated before any work.

    judge: clip                   # the default: zero-shot over the suite's words; or world (renders)
    judge_options: {}             # clip: clip_config, clip_checkpoint, device, legs_model, negative_labels
    seed: 0
    inputs:                       # paths relative to the current directory
      generation: [runs/demo/gen] # generation folders (each with manifest.parquet)
      curation: [runs/demo/curated]
      world: runs/demo/world
      data: []                    # any parquet with URL (and lang/LANGUAGE) columns
    audits:
      domains: {top: 20}
      watermark: {sources: [skimage], max_images: 4}

Unknown keys, unknown audits, parameters an audit does not take, of the wrong type or out of range,
and ``judge_options`` the judge's factory does not take (checked whether or not a listed audit
uses the judge) are ConfigErrors naming the file and the field (``t2iscope.config``), raised
before any work.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from t2iscope.config import NonNegInt, bind_params, load_yaml, location, parse
from t2iscope.errors import ConfigError
from t2iscope.evaluate.audits import AUDITS
from t2iscope.evaluate.context import Inputs
from t2iscope.evaluate.judges import JUDGES, judge_names

_Paths = str | list[str] | None  # one path or a list of paths


@dataclass(frozen=True)
class _InputsEntry:
    generation: _Paths = None
    curation: _Paths = None
    world: _Paths = None
    data: _Paths = None


# The judge whose validity on generated images is measured (evaluate/validity.py; the embedded
# model's human labels give subject 0.99 and color 0.98); ``world`` is exact only on the world's renders.
DEFAULT_JUDGE = "clip"


@dataclass(frozen=True)
class _AuditFile:
    """AUDIT.yaml as written; audit parameters are checked against each audit's signature."""

    audits: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    judge: str = DEFAULT_JUDGE
    judge_options: dict[str, Any] | None = None
    seed: NonNegInt = 0  # numpy's generators take no negative seed
    inputs: _InputsEntry | None = None


@dataclass(frozen=True)
class AuditConfig:
    audits: tuple[tuple[str, dict[str, Any]], ...]
    inputs: Inputs = field(default_factory=Inputs)
    judge: str = DEFAULT_JUDGE
    judge_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    source: str = "AUDIT.yaml"

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain YAML-able data (saved beside the results)."""
        inp = self.inputs
        return {
            "judge": self.judge,
            "judge_options": dict(self.judge_options),
            "seed": self.seed,
            "inputs": {
                "generation": [str(p) for p in inp.generation],
                "curation": [str(p) for p in inp.curation],
                "world": str(inp.world) if inp.world else None,
                "data": [str(p) for p in inp.data],
            },
            "audits": {name: params for name, params in self.audits},
        }

    def identity(self) -> dict[str, Any]:
        """What makes two runs the same run: the resolved config with its input paths made absolute.

        ``run.json`` records it; a rerun into the folder compares against it (``folder.prepare``).
        """
        data = self.to_dict()
        for key, value in data["inputs"].items():
            if isinstance(value, list):
                data["inputs"][key] = [os.path.abspath(p) for p in value]
            elif value is not None:
                data["inputs"][key] = os.path.abspath(value)
        # as run.json will hold it (YAML dates and integer keys turn into strings), so the two compare equal
        return json.loads(json.dumps(data, sort_keys=True, default=str))

    def with_judge(self, judge: str | None, options: dict[str, Any]) -> AuditConfig:
        """Command-line overrides of the judge (and its options)."""
        if judge is not None and judge not in judge_names():
            raise ConfigError(f"--judge: unknown judge {judge!r}; valid: {', '.join(judge_names())}")
        merged = {**self.judge_options, **options} if judge in (None, self.judge) else dict(options)
        _check_judge_options(judge or self.judge, merged, f"{self.source} with command-line judge options")
        return replace(self, judge=judge or self.judge, judge_options=merged)


def _check_judge_options(judge: str, options: dict[str, Any], source: str) -> None:
    """``options`` against the factory of ``judge`` (registered: ``judge_names`` loaded them)."""
    bind_params(JUDGES.get(judge).make, options, source, ("judge_options",))


def _paths(value: _Paths) -> tuple[Path, ...]:
    items = [value] if isinstance(value, str) else value or []
    return tuple(Path(v) for v in items)


def parse_config(data: Any, source: str = "AUDIT.yaml") -> AuditConfig:
    """Validate parsed YAML into an AuditConfig (every error names ``source`` and the field).

    Checks the file's shape (``t2iscope.config``), that it names at least one registered audit,
    each audit's parameters against its signature, the judge's name, and one path for ``world``.
    """
    raw = parse(_AuditFile, data, source)
    entry = raw.inputs or _InputsEntry()
    world = _paths(entry.world)
    if len(world) > 1:
        raise ConfigError(f"{location(source, ('inputs', 'world'))}: expected one path")
    inputs = Inputs(
        generation=_paths(entry.generation),
        world=world[0] if world else None,
        curation=_paths(entry.curation),
        data=_paths(entry.data),
    )
    if not raw.audits:
        raise ConfigError(f"{source}: audits: name at least one of {', '.join(AUDITS.names())}")
    parsed = []
    for name, params in raw.audits.items():
        where = ("audits", name)
        try:
            audit = AUDITS.get(name)
        except ConfigError as exc:
            raise ConfigError(f"{location(source, where)}: {exc}") from None
        params = params or {}
        audit.check_params(params, source, where)
        parsed.append((name, params))  # as written: audit.resolved.yaml repeats the user's values
    if raw.judge not in judge_names():
        valid = ", ".join(judge_names())
        raise ConfigError(f"{source}: judge: unknown judge {raw.judge!r}; valid: {valid}")
    _check_judge_options(raw.judge, raw.judge_options or {}, source)
    return AuditConfig(
        audits=tuple(parsed),
        inputs=inputs,
        judge=raw.judge,
        judge_options=raw.judge_options or {},
        seed=raw.seed,
        source=source,
    )


def load_config(path: str | Path) -> AuditConfig:
    """Read and validate an AUDIT.yaml file."""
    return parse_config(load_yaml(path), str(path))
