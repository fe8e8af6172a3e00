"""One strict parser for every YAML the toolkit reads: recipes, suites, AUDIT.yaml, training recipes.

A config's shape is Python types: frozen dataclasses (``parse``), or the signature of an extension
function for its parameters (``bind_params``: operators, audits, judges). pydantic v2 validates
against those types, with one policy everywhere:

- unknown keys are refused at every level;
- scalars are strict: ``"4"`` is not an integer, ``4.0`` is not an integer, ``true`` is not a
  number; an integer is a valid float; NaN and infinities are refused;
- ``Literal`` and ``enum.Enum`` values, ``tuple[...]`` (given as a YAML list), ``list``, ``dict``,
  ``X | None`` and nested dataclasses all work as annotated;
- value ranges are ``annotated_types`` bounds on the annotation, the one constraint style:
  ``Annotated[int, Ge(1)]``, or the aliases below (``Probability``, ``PositiveInt``...); a value
  outside reads ``r.yaml: stages 1 (watermark).max_score: expected a number >= 0 and <= 1, got 2``.

``load_yaml`` refuses a mapping that repeats a key (YAML's own rule; PyYAML would keep the last),
naming the line; merge keys (``<<``) still work, and a key written beside a merge overrides it.

Every failure is a ``ConfigError`` of one line naming the file and the dotted field:
``suite.yaml: prompts[3].tags: expected a list of strings, got 'x'``,
``AUDIT.yaml: audits.limbs: unknown parameter(s) max_imgs; accepted: ...``, and for a value outside
a ``Literal`` or enum ``r.yaml: engine 'spark'; valid: local, ray``. Loaders add their semantic
checks (duplicate ids, ranges) with ``location`` so those read the same way.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import inspect
import sys
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from annotated_types import Ge, Gt, Le, Lt
from pydantic import TypeAdapter, ValidationError
from pydantic_core import SchemaValidator
from typing_extensions import NotRequired, Required, TypedDict, is_typeddict

from t2iscope.errors import ConfigError

T = TypeVar("T")
Loc = tuple[str | int, ...]

_UNKNOWN = {"extra_forbidden", "unexpected_keyword_argument"}
_MISSING = {"missing", "missing_keyword_argument", "missing_argument"}
# How errors name a type: "expected an integer", "expected a list of integers".
_SINGULAR = {int: "an integer", float: "a number", str: "a string", bool: "true or false", Path: "a path"}
_NOUNS = {
    int: "integers",
    float: "numbers",
    str: "strings",
    bool: "true/false values",
    Path: "paths",
    Any: "values",
}
_REQUIRED = {
    NotRequired,
    Required,
    getattr(typing, "NotRequired", NotRequired),
    getattr(typing, "Required", Required),
}
_BOUNDS = {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}

# Ranges every area shares (annotated_types bounds, checked by pydantic when a file is read).
Probability = Annotated[float, Ge(0), Le(1)]  # LAION's pwatermark/punsafe, similarities, rates
OpenProbability = Annotated[float, Gt(0), Lt(1)]  # a rate that 0 and 1 make meaningless (a target FPR)
NonNegInt = Annotated[int, Ge(0)]  # sizes and counts where 0 means "no limit" or "none"
PositiveInt = Annotated[int, Ge(1)]  # counts that must be at least one (steps of a loop, batch)
NonNegFloat = Annotated[float, Ge(0)]
PositiveFloat = Annotated[float, Gt(0)]

__all__ = [
    "Ge",
    "Gt",
    "Le",
    "Lt",
    "NonNegFloat",
    "NonNegInt",
    "OpenProbability",
    "PositiveFloat",
    "PositiveInt",
    "Probability",
    "bind_params",
    "literal_choices",
    "load_yaml",
    "location",
    "param_hints",
    "parse",
]


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that repeats a key (PyYAML keeps the last silently)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._checked: set[int] = set()  # ids of mapping nodes whose own keys were checked

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # Check the node's own keys once, before flatten_mapping splices merged (``<<``) keys into
        # node.value in place: a merged key the mapping sets again is an override, as YAML means it,
        # not a duplicate. PyYAML flattens a merged node while building whoever merges it, which
        # can come before the node's own turn, hence the check here and not in construct_mapping.
        if id(node) not in self._checked:
            self._checked.add(id(node))
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base constructor words that error
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first at line {first + 1})", key_node.start_mark
                    )
                seen[key] = key_node.start_mark.line
        super().flatten_mapping(node)


def load_yaml(path: str | Path) -> Any:
    """Read one YAML file into plain Python data.

    Raises ConfigError naming the file if it is missing or unreadable, is not UTF-8 text, or is
    not valid YAML (then with the line of the problem).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        raise ConfigError(f"{p}: not UTF-8 text (byte {byte:#04x} at offset {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror})") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise ConfigError(f"{p}: not valid YAML{line}: {problem}") from None


def location(source: str, path: Loc = ()) -> str:
    """``source`` and the dotted field path, as every config error starts: ``s.yaml: a.b[2].c``."""
    dotted = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path).lstrip(".")
    return f"{source}: {dotted}" if dotted else source


def parse(tp: type[T], data: Any, source: str, path: Loc = ()) -> T:
    """Validate YAML data against ``tp`` (a dataclass or any annotation) and build it.

    ``source`` (the file) and ``path`` (where ``data`` sits in it) name the field in errors.
    Raises ConfigError, one line, for the first problem: unknown or missing key, wrong type, value
    outside a ``Literal``/enum, NaN or infinity.
    """
    try:
        return _validator(tp).validate_python(data)
    except ValidationError as exc:
        raise _error(exc, tp, data, source, path, "key") from None


def bind_params(
    fn: Callable[..., Any], params: Any, source: str, path: Loc = (), data_args: int = 0
) -> dict[str, Any]:
    """Validate ``params`` against ``fn``'s signature and type hints; return every parameter.

    The first ``data_args`` parameters are supplied by the engine (the batch, the context), not by
    config. Unknown and missing parameters, wrong types and values outside a ``Literal`` raise
    ConfigError naming ``source``, ``path`` and the parameter. The result maps each parameter, in
    signature order, to the value as given (validation does not convert it, so a resolved file
    writes back what the user wrote) or else to its default. A ``**kwargs`` function accepts any
    extra name unchecked.
    """
    schema, defaults, open_ended = _signature(fn, data_args)
    checked = params
    if open_ended and isinstance(params, dict):
        checked = {k: v for k, v in params.items() if k in defaults}
    try:
        _validator(schema).validate_python(checked)
    except ValidationError as exc:
        raise _error(exc, schema, checked, source, path, "parameter") from None
    resolved = {k: params.get(k, default) for k, default in defaults.items()}
    resolved.update(params)  # the extras a **kwargs function takes
    return resolved


@functools.cache
def _validator(tp: Any) -> SchemaValidator:
    # pydantic's lax mode is right for containers (a YAML list is a valid tuple, a mapping a valid
    # dataclass, a value a valid enum) and wrong for scalars, so harden the scalar nodes only.
    schema = copy.deepcopy(TypeAdapter(tp).core_schema)
    _harden(schema)
    return SchemaValidator(schema)


def _harden(node: Any) -> None:
    if isinstance(node, dict):
        kind = node.get("type")
        if kind in ("int", "float", "bool", "str"):
            node["strict"] = True
        if kind == "float":
            node["allow_inf_nan"] = False
        if kind in ("dataclass-args", "typed-dict", "model-fields"):
            node["extra_behavior"] = "forbid"
        for key, value in node.items():
            if key not in ("metadata", "serialization"):
                _harden(value)
    elif isinstance(node, list | tuple):
        for value in node:
            _harden(value)


def param_hints(fn: Callable[..., Any], data_args: int = 0) -> dict[str, Any]:
    """``fn``'s config parameters (after the first ``data_args``) -> their annotations, resolved.

    Hints are resolved one parameter at a time: the engine's arguments may name types imported
    only for checkers. ``Annotated`` bounds are kept; a parameter without annotation is ``Any``.
    """
    params = list(inspect.signature(fn).parameters.values())[data_args:]
    scope = vars(sys.modules[fn.__module__])
    hints = {}
    for p in params:
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            hint = Any if p.annotation is p.empty else p.annotation
            hints[p.name] = eval(hint, scope) if isinstance(hint, str) else hint  # as typing does
    return hints


@functools.cache
def _signature(fn: Callable[..., Any], data_args: int) -> tuple[Any, dict[str, Any], bool]:
    """A TypedDict of ``fn``'s config parameters, their defaults (None if required), **kwargs."""
    params = list(inspect.signature(fn).parameters.values())[data_args:]
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    hints = param_hints(fn, data_args)
    fields = {}
    for p in named:
        hint = hints[p.name]
        fields[p.name] = hint if p.default is p.empty else NotRequired[hint]
    schema = TypedDict(f"{fn.__name__}_params", fields)  # type: ignore[misc]
    defaults = {p.name: None if p.default is p.empty else p.default for p in named}
    return schema, defaults, any(p.kind is p.VAR_KEYWORD for p in params)


def _error(exc: ValidationError, tp: Any, data: Any, source: str, path: Loc, noun: str) -> ConfigError:
    """The first error of ``exc`` as one line: file, dotted field, what was expected and got."""
    errors = exc.errors()
    # A misspelt key also leaves its field missing: naming the misspelling says more.
    first = next((e for e in errors if e["type"] in _UNKNOWN), errors[0])
    if first["type"] in _UNKNOWN | _MISSING:
        parent = first["loc"][:-1]
        same = [e["loc"][-1] for e in errors if e["type"] == first["type"] and e["loc"][:-1] == parent]
        noun = noun if not parent else "key"  # a parameter's own nested keys are keys
        if first["type"] in _UNKNOWN:
            accepted = ", ".join(_fields(_type_at(tp, parent)[0])) or "(none)"
            message = f"unknown {noun}(s) {', '.join(map(_key, same))}; accepted: {accepted}"
        else:
            message = f"missing {noun}{'s' if len(same) > 1 else ''} {', '.join(map(repr, same))}"
        return ConfigError(f"{location(source, path + parent)}: {message}")
    if first["type"] == "value_error":  # a dataclass's __post_init__ rule (ValueError): its own words
        return ConfigError(f"{location(source, path + first['loc'])}: {first['ctx']['error']}")
    at, depth = _type_at(tp, first["loc"])
    where = location(source, path + first["loc"][:depth])
    got = _shown(_value_at(data, first["loc"][:depth]))
    if first["type"] == "too_short":  # annotated_types.MinLen on a list
        least = first["ctx"]["min_length"]
        size = "non-empty" if least == 1 else f"at least {least}-item"
        return ConfigError(f"{where}: expected a {size} {_describe(at).removeprefix('a ')}, got {got}")
    if (choices := _choices(at)) is not None:
        return ConfigError(f"{where} {got}; valid: {', '.join(choices)}")
    if first["type"] in _BOUNDS:
        raw, _ = _type_at(tp, first["loc"][:depth], unwrap=False)
        return ConfigError(f"{where}: expected {_describe(at)} {_bounds(raw)}, got {got}")
    expected = "a finite number" if first["type"] == "finite_number" else _describe(at)
    return ConfigError(f"{where}: expected {expected}, got {got}")


def _key(key: object) -> str:
    """A key from the file as written, quoted when it holds spaces or control characters."""
    text = str(key)
    return text if text.isprintable() and text and " " not in text else repr(text)


def _type_at(tp: Any, loc: Loc, unwrap: bool = True) -> tuple[Any, int]:
    """The annotation at ``loc`` and how many steps of ``loc`` name fields.

    A union stops the walk: pydantic's locations then go on with member labels, not fields.
    ``unwrap=False`` keeps the last annotation as written (its ``Annotated`` bounds, its ``None``).
    """
    for depth, key in enumerate(loc):
        inner = _unwrap(tp)
        child = _child(inner, key)
        if child is None:
            return (inner if unwrap else tp), depth
        tp = child
    return (_unwrap(tp) if unwrap else tp), len(loc)


def _bounds(tp: Any) -> str:
    """The ``annotated_types`` bounds on ``tp`` in words: ``>= 0 and < 1``."""
    words: list[str] = []
    while True:
        members = _members(tp)
        if members is not None and type(None) in members and len(members) == 2:
            tp = next(m for m in members if m is not type(None))
        elif typing.get_origin(tp) in _REQUIRED:
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) is typing.Annotated:
            tp, *meta = typing.get_args(tp)
            for m in meta:
                for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
                    if getattr(m, attr, None) is not None:  # Ge, Gt, Le, Lt, Interval
                        words.append(f"{op} {getattr(m, attr)!r}")
        else:
            return " and ".join(words) or "in range"


def _unwrap(tp: Any) -> Any:
    if typing.get_origin(tp) in _REQUIRED:  # a TypedDict field's marker
        return _unwrap(typing.get_args(tp)[0])
    if typing.get_origin(tp) is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    members = _members(tp)
    if members is not None and type(None) in members and len(members) == 2:
        return _unwrap(next(m for m in members if m is not type(None)))
    return tp


def _members(tp: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return None


def _child(tp: Any, key: str | int) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp) or is_typeddict(tp):
        return typing.get_type_hints(tp, include_extras=True).get(key) if isinstance(key, str) else None
    if origin in (list, set, frozenset) and isinstance(key, int):
        return args[0] if args else Any
    if origin is tuple and isinstance(key, int):
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
        return args[key] if key < len(args) else None
    if origin is dict:
        return args[1] if args else Any
    return None


def _fields(tp: Any) -> list[str]:
    return list(typing.get_type_hints(tp)) if dataclasses.is_dataclass(tp) or is_typeddict(tp) else []


def _value_at(data: Any, loc: Loc) -> Any:
    for key in loc:
        if isinstance(data, Mapping):
            data = data.get(key)
        elif isinstance(data, list | tuple) and isinstance(key, int) and key < len(data):
            data = data[key]
        else:
            return None
    return data


def literal_choices(tp: Any) -> list[str] | None:
    """The choices of a ``Literal``/enum annotation, looking through ``X | None``, ``Annotated`` and
    one list or tuple of them (``tuple[Literal[...], ...]``); None for any other annotation."""
    tp = _unwrap(tp)
    if typing.get_origin(tp) in (list, tuple, set, frozenset) and typing.get_args(tp):
        tp = _unwrap(typing.get_args(tp)[0])
    return _choices(tp)


def _choices(tp: Any) -> list[str] | None:
    """The values a ``Literal`` or an enum allows, as written in YAML; None for other types."""
    if typing.get_origin(tp) is typing.Literal:
        return [str(v) for v in typing.get_args(tp)]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return [str(m.value) for m in tp]
    return None


def _describe(tp: Any) -> str:
    """What a value of annotation ``tp`` looks like in YAML, in words: ``a list of strings``."""
    tp = _unwrap(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp in _SINGULAR:
        return _SINGULAR[tp]
    if (choices := _choices(tp)) is not None:
        return "one of " + ", ".join(choices)
    if (members := _members(tp)) is not None:
        words = [_describe(m) for m in members if m is not type(None)]
        return ", ".join(words[:-1]) + " or " + words[-1]
    if origin in (list, set, frozenset) or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
        return f"a list of {_plural(args[0]) if args else 'values'}"
    if origin is tuple:
        return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})"
    if origin is dict or dataclasses.is_dataclass(tp) or is_typeddict(tp) or tp is dict:
        return "a mapping"
    if tp is list or tp is tuple:
        return "a list"
    return "any value" if tp is Any else getattr(tp, "__name__", str(tp))


def _plural(tp: Any) -> str:
    tp = _unwrap(tp)
    if tp in _NOUNS:
        return _NOUNS[tp]
    if (members := _members(tp)) is not None:
        return " or ".join(_plural(m) for m in members if m is not type(None))
    if _describe(tp) == "a mapping":
        return "mappings"
    return f"items, each {_describe(tp)}"


def _shown(value: Any) -> str:
    """A value as the user wrote it in YAML (null, true), cut to one short line."""
    if value is None or isinstance(value, bool):
        return yaml.safe_dump(value).split("\n")[0]
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
