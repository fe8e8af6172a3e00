from __future__ import annotations

import pytest

from t2iscope.errors import ConfigError
from t2iscope.registry import Registry, check_params


def test_registry_unknown_lists_valid_names() -> None:
    reg: Registry[object] = Registry("filter")
    reg.register("b")(object())
    reg.register("a")(object())
    with pytest.raises(ConfigError, match="unknown filter 'c'; valid: a, b"):
        reg.get("c")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(object())
    assert reg.names() == ["a", "b"] and "a" in reg and len(reg) == 2


def test_check_params_refuses_typos_and_missing() -> None:
    def op(batch: object, *, min_side: int, max_ratio: float = 3.0) -> None: ...

    check_params(op, {"min_side": 1}, "r.yaml: stage 1", data_args=1)
    with pytest.raises(ConfigError, match=r"r\.yaml: stage 1: unknown parameter"):
        check_params(op, {"min_side": 1, "max_raito": 2}, "r.yaml: stage 1", data_args=1)
    with pytest.raises(ConfigError, match="missing parameter"):
        check_params(op, {}, "r.yaml: stage 1", data_args=1)
