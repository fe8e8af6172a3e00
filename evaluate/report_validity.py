"""Judge validity on the report: how far each judge can be trusted on each attribute of the run's
images (:class:`Verdict`, :class:`Validity`), which attributes a figure depends on, and a figure's
sentence stated as a finding or marked "not a finding". The validity of the page being rendered is
at hand through :func:`current_validity`.
"""

from __future__ import annotations

import contextvars
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from t2iscope.evaluate.folder import JUDGMENTS, FinishedRun
from t2iscope.evaluate.report_html import esc, interval, missing, num, with_columns
from t2iscope.evaluate.tables import SKIPPED
from t2iscope.evaluate.validity import USABLE_ACCURACY, VALID_ACCURACY, grade
from t2iscope.evaluate.vocabulary import read_vocabulary
from t2iscope.generate.attributes import ATTRIBUTES, LIMB_COUNTS, spelled

VALIDITY_AUDIT = "validity"  # the audit whose table says how far each judge can be trusted
ALL = "(all)"  # the audits' name for a pooled slice


@dataclass(frozen=True)
class Verdict:
    """How far one judge can be trusted on one attribute of this run's images."""

    judge: str
    attribute: str
    status: str  # validity.GRADES or unvalidated
    accuracy: float = math.nan
    low: float = math.nan
    high: float = math.nan
    n: int = 0
    kappa: float = math.nan
    source: str = ""
    domain: str = ""
    reason: str = ""  # why unvalidated

    @property
    def marked(self) -> bool:
        """A figure from this judge and attribute is not a finding."""
        return self.status in ("NOT valid", "too few labels", "unvalidated")

    def accuracy_text(self) -> str:
        ci = interval(self.low, self.high)
        return f"{num(self.accuracy)}{' ' + ci if ci else ''}"

    def problem(self) -> str:
        """Why a figure from this judge and attribute is not a finding (HTML)."""
        if self.status == "unvalidated":
            return f"judge {esc(self.judge)}'s {esc(self.attribute)} is unvalidated ({esc(self.reason)})"
        if self.status == "too few labels":
            return (
                f"judge {esc(self.judge)}'s {esc(self.attribute)} accuracy {self.accuracy_text()} rests on "
                f"n={self.n:,} labels: too few to tell valid from not"
            )
        return (
            f"judge {esc(self.judge)}'s {esc(self.attribute)} accuracy {self.accuracy_text()} "
            f"n={self.n:,} &lt; {USABLE_ACCURACY:g}"
        )

    def support(self) -> str:
        """The attribute's measured accuracy, for a finding's sentence (HTML)."""
        extra = f", usable: below {VALID_ACCURACY:g}" if self.status == "usable" else ""
        return f"{esc(self.attribute)} accuracy {num(self.accuracy)} (n={self.n:,}{extra})"


@dataclass
class Validity:
    """The validity table of the run (None when the run has no validity audit) and its image domain."""

    table: pd.DataFrame | None = None
    domain: frozenset[str] | None = None  # model ids of the run's judged images (judgments.parquet)
    words: dict[str, frozenset[str]] | None = None  # per word attribute: the words the run asks about
    _cache: dict[tuple[str, str], Verdict] = field(default_factory=dict)

    @classmethod
    def of(cls, run: FinishedRun) -> Validity:
        table = next((df for a, df in run.tables if a.name == VALIDITY_AUDIT), None)
        if table is not None:
            table = with_columns(table, "attribute", "source", "domain", optional=("words",))
        return cls(table, run_domain(run.root), run_words(run.root))

    def domain_text(self) -> str:
        return ", ".join(sorted(self.domain)) if self.domain else "this run's images"

    def verdict(self, judge: str, attribute: str) -> Verdict:
        key = (str(judge), str(attribute))
        if key not in self._cache:
            self._cache[key] = self._verdict(*key)
        return self._cache[key]

    def _verdict(self, judge: str, attribute: str) -> Verdict:
        on = self.domain_text()
        if self.table is None:
            return Verdict(
                judge, attribute, "unvalidated", reason=f"no validity audit in this run; images: {on}"
            )
        t = self.table
        acc = t[
            (t["metric"] == "accuracy")
            & (t["judge"].astype(str) == judge)
            & (t["attribute"].astype(str) == attribute)
            & (t["n"] > 0)
        ].dropna(subset=["value"])
        if acc.empty:
            return Verdict(judge, attribute, "unvalidated", reason=f"no human labels of {attribute} for {on}")
        covers = acc[acc["domain"].map(self._covers)]
        if covers.empty:
            other = ", ".join(sorted(set(acc["domain"].astype(str))))
            return Verdict(judge, attribute, "unvalidated", reason=f"labels only of {other}, images of {on}")
        asked = (self.words or {}).get(attribute)
        if asked:
            measured = covers[covers["words"].map(lambda w: self._knows(w, asked))]
            if measured.empty:
                labelled = sorted({w for ws in covers["words"] for w in self._split(ws)})
                unknown = sorted(asked - set(labelled))
                return Verdict(
                    judge,
                    attribute,
                    "unvalidated",
                    reason=f"labels of other words ({', '.join(labelled[:6])}); this run also asks "
                    f"about {', '.join(unknown[:6])}",
                )
            covers = measured
        r = covers.loc[covers["n"].idxmax()]
        kappa = t[
            (t["metric"] == "kappa")
            & (t["judge"].astype(str) == judge)
            & (t["attribute"].astype(str) == attribute)
            & (t["source"].astype(str) == str(r["source"]))
            & (t["domain"].astype(str) == str(r["domain"]))
        ]["value"]
        a = float(r["value"])
        status = grade(a, float(r["ci_low"]), float(r["ci_high"]))
        return Verdict(
            judge,
            attribute,
            status,
            a,
            float(r["ci_low"]),
            float(r["ci_high"]),
            int(r["n"]),
            float(kappa.iloc[0]) if len(kappa) else math.nan,
            str(r["source"]),
            str(r["domain"]),
        )

    @staticmethod
    def _split(words: Any) -> set[str]:
        return set() if missing(words) else {w.strip() for w in str(words).split(",") if w.strip()}

    def _knows(self, words: Any, asked: frozenset[str]) -> bool:
        """Labels over ``words`` (comma-separated; none recorded: counts, older runs) cover ``asked``."""
        labelled = self._split(words)
        return not labelled or asked <= labelled

    def _covers(self, labelled: Any) -> bool:
        """Labels of ``labelled`` (model ids, comma-separated) cover every model id of the run."""
        if missing(labelled):
            return False
        have = {d.strip() for d in str(labelled).split(",")}
        if self.domain is None:  # no judgments to compare with: any named domain is taken as it says
            return "(unknown)" not in have
        return self.domain <= have

    def verdicts(self, judge: str, attributes: Iterable[str]) -> list[Verdict]:
        return [self.verdict(judge, a) for a in attributes]

    def problem(self, judge: str, attributes: Iterable[str]) -> str | None:
        """Why a figure from ``judge`` over ``attributes`` is not a finding (HTML), or None if it is one."""
        bad = [v.problem() for v in self.verdicts(judge, attributes) if v.marked]
        return "; ".join(bad) if bad else None

    def support(self, judge: str, attributes: Iterable[str]) -> str:
        """``judge clip, subject accuracy 0.99 (n=166), color 0.98 (n=166)`` (HTML)."""
        parts = [v.support() for v in self.verdicts(judge, attributes)]
        return f"judge {esc(judge)}" + (", " + ", ".join(parts) if parts else "")

    def marks(self, df: pd.DataFrame) -> pd.Series:
        """Per row of a judged table: is it not a finding."""
        attrs = figure_attributes(df)
        judges = df["judge"].astype(str) if "judge" in df else pd.Series("", index=df.index)
        return pd.Series(
            [bool(a) and self.problem(j, a) is not None for j, a in zip(judges, attrs, strict=True)],
            index=df.index,
            dtype=bool,
        )


CURRENT_VALIDITY: contextvars.ContextVar[Validity] = contextvars.ContextVar("report_validity")


def current_validity() -> Validity:
    """The validity of the page being rendered (outside :func:`render`: nothing validated)."""
    try:
        return CURRENT_VALIDITY.get()
    except LookupError:
        return Validity()


def run_domain(root: Path) -> frozenset[str] | None:
    """Model ids of the run's judged images, from judgments.parquet; None when it is absent or unreadable."""
    path = root / JUDGMENTS
    try:
        if not path.is_file():
            return None
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
        if "model_id" not in names:
            return None
        j = pq.read_table(path, columns=[c for c in ("model_id", "status") if c in names]).to_pandas()
    except Exception:  # a damaged judgments file leaves the domain unknown, never the report
        return None
    if "status" in j:
        j = j[j["status"].astype(str) == "ok"]
    ids = {str(v) for v in j["model_id"] if not missing(v)}
    return frozenset(ids) if ids else None


def run_words(root: Path) -> dict[str, frozenset[str]] | None:
    """Per word attribute, the words the run's judged images were asked about (their suites' expects
    and vocabularies in judgments.parquet, one spelling); None when unknown."""
    path = root / JUDGMENTS
    try:
        import pyarrow.parquet as pq

        names = set(pq.read_schema(path).names) if path.is_file() else set()
        columns = [c for c in ("expect", "vocabulary") if c in names]
        if not columns:
            return None
        vocabulary = read_vocabulary(pq.read_table(path, columns=columns).to_pandas(), str(path))
    except Exception:  # a damaged judgments file leaves the words unknown, never the report
        return None
    return {
        a: frozenset(w for w in map(spelled, labels) if w)
        for a, labels in vocabulary.labels.items()
        if ATTRIBUTES[a].kind == "word"
    }


_ATTR_METRIC = re.compile(r"(?P<attr>.+?)_(?:match_gap|match|other)")


def figure_attributes(df: pd.DataFrame) -> pd.Series:
    """Per row of a judged audit table: the attributes its figure depends on.

    ``<attr>_match``, ``<attr>_match_gap`` and ``<attr>_other`` depend on ``attr``, the ``all_``
    ones on every attribute the table has ``<attr>_match`` rows of; rows with an ``attribute``
    slice (culture, limbs) on it, and a limb count also on ``subject`` where the table counted
    limbs only on images the judge saw the subject in (``subject_drawn`` rows); everything else
    (skips, text scores) on none.
    """
    metrics = df["metric"].astype(str) if "metric" in df else pd.Series("", index=df.index)
    asked = sorted(
        {m[: -len("_match")] for m in metrics.unique() if m.endswith("_match") and m != "all_match"}
    )
    attribute = df["attribute"] if "attribute" in df else pd.Series(None, index=df.index, dtype=object)
    out = []
    seen_subject = (metrics == "subject_drawn").any()  # limbs counted only where the subject was seen
    for metric, attr in zip(metrics, attribute, strict=True):
        hit = _ATTR_METRIC.fullmatch(metric)
        if metric == SKIPPED:
            out.append(())
        elif hit:
            out.append(tuple(asked) if hit["attr"] == "all" else (hit["attr"],))
        elif not missing(attr) and str(attr) not in ("", ALL):
            on_subject = seen_subject and str(attr) in LIMB_COUNTS
            out.append((str(attr), "subject") if on_subject else (str(attr),))
        else:
            out.append(())
    return pd.Series(out, index=df.index, dtype=object)


def not_a_finding(problem: str, sentence: str) -> str:
    """A sentence whose figure is not a finding: greyed, with the reason first."""
    return f"<span class='marked'><b>Not a finding</b> ({problem}): {sentence}</span>"


def stated(validity: Validity, judge: str, attributes: Iterable[str], sentence: str) -> str:
    """``sentence`` as a finding with its judge's validity, or marked as not a finding."""
    attributes = list(attributes)
    problem = validity.problem(judge, attributes)
    if problem:
        return not_a_finding(problem, sentence)
    return f"{sentence}; {validity.support(judge, attributes)}." if attributes else f"{sentence}."
