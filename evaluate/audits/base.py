"""The audit record and its registry, kept apart from the audit modules so they can import it.

An audit registers once, with everything the runner and the report need (like curation's
``Operator``): nothing else names it, so a registered audit cannot miss the report.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import pandas as pd

from t2iscope.config import bind_params, location
from t2iscope.errors import ConfigError
from t2iscope.registry import Registry

if TYPE_CHECKING:
    from t2iscope.evaluate.context import AuditContext

AuditFn = Callable[..., pd.DataFrame]  # fn(ctx, **params) -> tidy DataFrame
Section = Callable[[pd.DataFrame], str]  # tidy table -> the HTML of its report section
Pick = Literal["first", "min", "max"]
# Fields of AuditContext.inputs (evaluate/context.py Inputs): "generation", "curation", "world", "data"
Needs = tuple[tuple[str, ...], ...]  # every group must be met; a group is met by any one of its inputs
Problem = tuple[tuple[str | int, ...], str] | None  # (field path under the audit's parameters, message)
# What a signature cannot say (a path that must exist): check(params) -> (field path, problem) or None
Check = Callable[[Mapping[str, Any]], Problem]
# What only the inputs can say (a language the generations have): check_data(ctx, params), run by the
# runner after every input path was checked and before any audit runs
DataCheck = Callable[["AuditContext", Mapping[str, Any]], Problem]


class Headline(NamedTuple):
    """The first-screen card of an audit: ``pick`` one ``metric`` row among those matching ``where``.

    ``pick`` is ``first`` (table order) or ``min``/``max`` (the value; ``min`` ignores unlabelled
    ``(none)`` groups): always one row, so the card shows its n and interval.
    """

    metric: str
    where: Mapping[str, str]
    pick: Pick
    label: str


@dataclass(frozen=True)
class Audit:
    """A registered audit: the function the runner calls and all the report shows of it."""

    name: str
    fn: AuditFn
    title: str  # report heading and nav link
    section: str  # "module:function" rendering the section; imported only when a report is built
    order: int  # report position: data audits first, then model audits, then watermarking
    headline: Headline | None = None
    judged: bool = False  # judges generated images: the runner builds the judge before any work
    needs: Needs = ()  # inputs it cannot run without: the runner checks them all before any work
    check: Check | None = None  # what the signature cannot say, checked when AUDIT.yaml is read
    check_data: DataCheck | None = None  # what only the inputs can say, checked before any audit runs

    def check_params(self, params: Mapping[str, Any], source: str, where: tuple[str | int, ...]) -> None:
        """ConfigError naming ``source`` and the field if ``params`` do not fit: signature, then ``check``."""
        bind_params(self.fn, params, source, where, data_args=1)
        _refuse(self.check(params) if self.check else None, source, where)

    def check_inputs(
        self, ctx: AuditContext, params: Mapping[str, Any], source: str, where: tuple[str | int, ...]
    ) -> None:
        """ConfigError naming ``source`` and the field if ``params`` do not fit the inputs: ``check_data``."""
        _refuse(self.check_data(ctx, params) if self.check_data else None, source, where)

    def render(self, table: pd.DataFrame) -> str:
        """The HTML of this audit's report section for its tidy ``table``."""
        module, _, attr = self.section.partition(":")
        renderer: Section = getattr(importlib.import_module(module), attr)
        return renderer(table)


def _refuse(problem: Problem, source: str, where: tuple[str | int, ...]) -> None:
    if problem:
        field, message = problem
        raise ConfigError(f"{location(source, (*where, *field))}: {message}")


class AuditRegistry(Registry[Audit]):
    """``AUDITS``: the audits by name, with the decorator that registers one and the report order."""

    def audit(
        self,
        name: str,
        *,
        title: str,
        section: str,
        order: int,
        headline: tuple[str, Mapping[str, str], Pick, str] | None = None,
        judged: bool = False,
        needs: Sequence[str | tuple[str, ...]] = (),
        check: Check | None = None,
        check_data: DataCheck | None = None,
    ) -> Callable[[AuditFn], AuditFn]:
        """Decorator registering ``fn(ctx, **params) -> tidy DataFrame`` as audit ``name``.

        ``headline`` is ``(metric, where, pick, label)`` (see :class:`Headline`); ``section`` names
        the renderer as ``"module:function"`` so running audits never imports report code.
        ``needs`` lists the inputs the audit requires: ``"curation"``, or a tuple for "one of"
        (``("data", "world", "curation")``); inputs it only uses when present are not listed.
        ``check(params)`` returns ``(field path, problem)`` for what a signature cannot say (a folder
        that must exist), or None; the config parser and the runner both call it.
        ``check_data(ctx, params)`` does the same for what depends on the inputs (a language the
        generations must have); the runner calls it once every input path has been checked.
        """
        groups = tuple((n,) if isinstance(n, str) else tuple(n) for n in needs)

        def add(fn: AuditFn) -> AuditFn:
            spec = Headline(*headline) if headline else None
            record = Audit(name, fn, title, section, order, spec, judged, groups, check, check_data)
            self.register(name)(record)
            return fn

        return add

    def in_report_order(self) -> list[Audit]:
        """Every registered audit, in report order."""
        return sorted((self.get(n) for n in self), key=lambda a: (a.order, a.name))


AUDITS = AuditRegistry("audit")
