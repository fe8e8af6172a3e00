"""Name -> object registries for every extension kind (filters, judges, attacks, audits, samplers).

One class so that every kind behaves the same: unknown names and duplicate registrations raise
with the list of valid names, and parameters are validated against the callable's signature
(Data-Juicer reads options with ``kwargs.get`` so typos pass silently; we refuse them).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from t2iscope.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of extension objects of one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@FILTERS.register("language")``."""

        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items)) or "(none)"
            raise ConfigError(f"unknown {self.kind} {name!r}; valid: {valid}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)


def check_params(fn: Callable[..., Any], params: dict[str, Any], where: str, data_args: int = 0) -> None:
    """Raise ConfigError if ``params`` names an argument that ``fn`` does not take, or misses one.

    ``where`` says where the params came from (e.g. ``recipe.yaml: stage 2 (language)``);
    the first ``data_args`` parameters are supplied by the engine (the batch), not by config.
    """
    sig = inspect.signature(fn)
    names = list(sig.parameters)[data_args:]
    sig = sig.replace(parameters=[sig.parameters[n] for n in names])
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    accepted = {n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ConfigError(
            f"{where}: unknown parameter(s) {', '.join(unknown)}; accepted: {', '.join(sorted(accepted))}"
        )
    required = {
        n
        for n, p in sig.parameters.items()
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    missing = sorted(required - set(params))
    if missing:
        raise ConfigError(f"{where}: missing parameter(s) {', '.join(missing)}")
