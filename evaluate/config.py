"""AUDIT.yaml: which audits to run, on which inputs, with which judge, validated before any work.

    judge: world                  # or clip
    judge_options: {}             # clip: clip_config, clip_checkpoint, device
    seed: 0
    inputs:                       # paths relative to the current directory
      generation: [runs/demo/gen] # generation folders (each with manifest.parquet)
      curation: [runs/demo/curated]
      world: runs/demo/world
      data: []                    # any parquet with URL (and lang/LANGUAGE) columns
    audits:
      domains: {top: 20}
      watermark: {sources: [skimage], max_images: 4}

Unknown keys, unknown audits and parameters an audit does not take are ConfigErrors naming the
file and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from t2iscope.errors import ConfigError
from t2iscope.evaluate.audits import AUDITS
from t2iscope.evaluate.context import Inputs
from t2iscope.evaluate.judges import judge_names
from t2iscope.registry import check_params

TOP_KEYS = {"judge", "judge_options", "seed", "inputs", "audits"}
INPUT_KEYS = {"generation", "curation", "world", "data"}


@dataclass(frozen=True)
class AuditConfig:
    audits: tuple[tuple[str, dict[str, Any]], ...]
    inputs: Inputs = field(default_factory=Inputs)
    judge: str = "world"
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

    def with_judge(self, judge: str | None, options: dict[str, Any]) -> AuditConfig:
        """Command-line overrides of the judge (and its options)."""
        if judge is not None and judge not in judge_names():
            raise ConfigError(f"--judge: unknown judge {judge!r}; valid: {', '.join(judge_names())}")
        merged = {**self.judge_options, **options} if judge in (None, self.judge) else dict(options)
        return replace(self, judge=judge or self.judge, judge_options=merged)


def _paths(value: Any, where: str) -> tuple[Path, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise ConfigError(f"{where}: expected a path or a list of paths")
    return tuple(Path(v) for v in items)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def parse_config(data: Any, source: str = "AUDIT.yaml") -> AuditConfig:
    """Validate parsed YAML into an AuditConfig (every error names ``source`` and the field)."""
    data = _mapping(data, source)
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(TOP_KEYS))}"
        )
    raw_inputs = _mapping(data.get("inputs"), f"{source}: inputs")
    bad = sorted(set(raw_inputs) - INPUT_KEYS)
    if bad:
        raise ConfigError(
            f"{source}: inputs: unknown key(s) {', '.join(bad)}; valid: {', '.join(sorted(INPUT_KEYS))}"
        )
    single = {}
    for key in ("world",):
        paths = _paths(raw_inputs.get(key), f"{source}: inputs.{key}")
        if len(paths) > 1:
            raise ConfigError(f"{source}: inputs.{key}: expected one path")
        single[key] = paths[0] if paths else None
    inputs = Inputs(
        generation=_paths(raw_inputs.get("generation"), f"{source}: inputs.generation"),
        world=single["world"],
        curation=_paths(raw_inputs.get("curation"), f"{source}: inputs.curation"),
        data=_paths(raw_inputs.get("data"), f"{source}: inputs.data"),
    )
    audits = _mapping(data.get("audits"), f"{source}: audits")
    if not audits:
        raise ConfigError(f"{source}: audits: name at least one of {', '.join(AUDITS.names())}")
    parsed = []
    for name, params in audits.items():
        fn = AUDITS.get(str(name))
        params = _mapping(params, f"{source}: audits.{name}")
        check_params(fn, params, f"{source}: audits.{name}", data_args=1)
        parsed.append((str(name), params))
    judge = data.get("judge", "world")
    if judge not in judge_names():
        raise ConfigError(f"{source}: judge: unknown judge {judge!r}; valid: {', '.join(judge_names())}")
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"{source}: seed: expected an integer, got {seed!r}")
    return AuditConfig(
        audits=tuple(parsed),
        inputs=inputs,
        judge=judge,
        judge_options=_mapping(data.get("judge_options"), f"{source}: judge_options"),
        seed=seed,
        source=source,
    )


def load_config(path: str | Path) -> AuditConfig:
    """Read and validate an AUDIT.yaml file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: audit config not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{p}: invalid YAML{where}") from None
    return parse_config(data, str(p))
