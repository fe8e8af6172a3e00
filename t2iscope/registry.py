"""Name -> object registries for every extension kind (filters, judges, attacks, audits, samplers).

One class so that every kind behaves the same: unknown names and duplicate registrations raise
with the list of valid names, and parameters are validated against the callable's signature and
type hints (Data-Juicer reads options with ``kwargs.get`` so typos pass silently; we refuse them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from t2iscope.config import bind_params
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
    """Raise ConfigError if ``params`` do not fit ``fn``: unknown or missing names, wrong types.

    ``where`` says where the params came from (e.g. ``recipe.yaml: stage 2 (language)``);
    the first ``data_args`` parameters are supplied by the engine (the batch), not by config.
    The rules are ``t2iscope.config.bind_params``'s.
    """
    bind_params(fn, params, where, data_args=data_args)
