"""One self-contained HTML report from an audit folder: plots inline, no network, mailable.

The page reads findings first (issue 15). Its first screen is the judges' measured validity
(accuracy against human labels, with Wilson interval, kappa and n, per judge and attribute, on
the run's own image domain), then one headline card per audit. A figure computed from a judge
that is unvalidated on the run's images, or whose accuracy on an attribute the figure depends on
is below ``USABLE_ACCURACY`` (0.8), is marked "not a finding" (greyed, with the reason) instead of
being presented as one. Each audit section then opens with 1-4 sentences generated from its
table (value, interval, n, the judge's validity), then compact pivot tables and charts with
interval bars; the full tidy table follows in a collapsed ``<details>``. Counted skips from every
audit are listed together on the first screen too.

Which audits, in which order, with which title, headline and section renderer: each audit's
registration says (``AUDITS.audit``); the renderers of the shipped audits are the ``section_*``
functions below. A renderer takes the tidy table only; the judges' validity of the page being
rendered is at hand through :func:`current_validity`.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import html
import io
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
import pandas as pd

from t2iscope import __version__, fileio
from t2iscope.errors import DataError
from t2iscope.evaluate.audits import Audit
from t2iscope.evaluate.folder import (
    JUDGMENTS,
    REPORT,
    FinishedRun,
    read_record,
    read_run,
    table_name,
)
from t2iscope.evaluate.tables import SKIPPED
from t2iscope.evaluate.validity import USABLE_ACCURACY, VALID_ACCURACY
from t2iscope.intervals import wilson
from t2iscope.locks import output_lock

VALIDITY_AUDIT = "validity"  # the audit whose table says how far each judge can be trusted
ALL = "(all)"  # the audits' name for a pooled slice
COUNT_METRICS = frozenset({"rows", "distinct", SKIPPED, "count"})  # values that count things
DETAIL_LIMIT = 500  # rows of a full tidy table shown in its collapsed section

# ---- formatting -----------------------------------------------------------------------------------


def esc(v: Any) -> str:
    """Data as HTML text."""
    return html.escape(str(v))


def _missing(v: Any) -> bool:
    if v is None or v is pd.NA:
        return True
    try:
        return bool(isinstance(v, (float, np.floating)) and math.isnan(v))
    except TypeError:
        return False


def num(v: Any, digits: int = 2) -> str:
    """A measured number: integral values of counts stay integers elsewhere; here ``digits`` decimals,
    or 2 significant digits for small non-zero values (an HHI of 0.0012 is not 0.00)."""
    if _missing(v):
        return "–"
    v = float(v)
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if abs(v) >= 1e5:
        return f"{v:,.0f}"
    if v != 0 and abs(v) < 10 ** (-digits):
        return f"{v:.2g}"
    return f"{v:.{digits}f}"


def fmt(v: Any, digits: int = 3) -> str:
    """A cell of a table: integers (and integral floats: ranks, seeds, steps) as integers, text escaped."""
    if _missing(v):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return esc(bool(v))
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        if math.isfinite(v) and float(v).is_integer():
            return f"{int(v):,}"
        return num(v, digits)
    if isinstance(v, str) and re.fullmatch(r"-?\d+\.0+", v):  # a level written from a float column
        return esc(v.split(".")[0])
    return esc(v)


def fmt_value(metric: Any, v: Any, digits: int = 3) -> str:
    """A measured value: counts (rows, skipped, ...) and integral values above 1 as integers."""
    if _missing(v):
        return "–"
    v = float(v)
    if math.isfinite(v) and v.is_integer() and (metric in COUNT_METRICS or abs(v) > 1):
        return f"{int(v):,}"
    return num(v, digits)


def interval(lo: Any, hi: Any, digits: int = 2) -> str:
    """``[lo, hi]`` or nothing when the row has no interval."""
    if _missing(lo) or _missing(hi):
        return ""
    return f"[{num(lo, digits)}, {num(hi, digits)}]"


def with_ci(row: pd.Series, digits: int = 3) -> str:
    value = fmt_value(row.get("metric"), row["value"], digits)
    ci = interval(row["ci_low"], row["ci_high"], digits)
    return f"{value} <span class='ci'>{ci}</span>" if ci else value


def said(row: pd.Series, digits: int = 2) -> str:
    """One measurement in a sentence: ``0.62 [0.55, 0.69], n=48``."""
    ci = interval(row["ci_low"], row["ci_high"], digits)
    value = fmt_value(row.get("metric"), row["value"], digits)
    return f"{value}{' ' + ci if ci else ''}, n={_n(row['n'])}"


def _n(v: Any) -> str:
    return "–" if _missing(v) else f"{int(v):,}"


def table(df: pd.DataFrame, cols: list[str], value: bool = True, limit: int = 60) -> str:
    """An HTML table of ``cols`` plus value [CI] and n."""
    if df.empty:
        return "<p class='lede'>No rows.</p>"
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    head += "<th>value [95% CI]</th><th>n</th>" if value else ""
    body = []
    for _, r in df.head(limit).iterrows():
        cells = "".join(f"<td>{fmt(r.get(c))}</td>" for c in cols)
        if value:
            cells += f"<td class='num'>{with_ci(r)}</td><td class='num'>{_n(r['n'])}</td>"
        body.append(f"<tr>{cells}</tr>")
    more = f"<p class='lede'>{len(df) - limit:,} more rows in the parquet.</p>" if len(df) > limit else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def pivot(
    df: pd.DataFrame,
    rows: list[str],
    columns: str,
    marked: pd.Series | None = None,
    corner: str = "",
    limit: int = 40,
) -> str:
    """A compact table: one line per distinct ``rows``, one column per value of ``columns``; each cell
    is value, interval and n. Lines whose every row is ``marked`` are greyed as not a finding."""
    df = df.dropna(subset=["value"]) if "value" in df else df
    if df.empty:
        return ""
    keys = [tuple(r) for r in df[rows].astype(object).itertuples(index=False)]
    cols = list(dict.fromkeys(df[columns].astype(object)))
    lines = list(dict.fromkeys(keys))
    cells: dict[tuple[Any, Any], pd.Series] = {}
    marks: dict[Any, bool] = {}
    for key, col, (idx, r) in zip(keys, df[columns].astype(object), df.iterrows(), strict=True):
        cells.setdefault((key, col), r)
        if marked is not None:
            marks[key] = marks.get(key, True) and bool(marked.get(idx, False))
    head = "".join(f"<th>{esc(c)}</th>" for c in rows[:-1]) + f"<th>{esc(corner or rows[-1])}</th>"
    head += "".join(f"<th class='num'>{fmt(c)}</th>" for c in cols)
    body = []
    for key in lines[:limit]:
        cls = " class='marked'" if marks.get(key) else ""
        out = "".join(f"<td>{fmt(k)}</td>" for k in key)
        for col in cols:
            r = cells.get((key, col))
            if r is None:
                out += "<td class='num'>–</td>"
                continue
            ci = interval(r["ci_low"], r["ci_high"])
            n = _n(r["n"])
            out += (
                f"<td class='num'>{fmt_value(r.get('metric'), r['value'], 2)}"
                f"<br><span class='ci'>{ci} n={n}</span></td>"
            )
        body.append(f"<tr{cls}>{out}</tr>")
    more = (
        f"<p class='lede'>{len(lines) - limit:,} more lines in the details below.</p>"
        if len(lines) > limit
        else ""
    )
    return f"<table class='pivot'><tr>{head}</tr>{''.join(body)}</table>{more}"


def details(df: pd.DataFrame, what: str = "") -> str:
    """The full tidy table, collapsed: every column but ``audit``, every row up to ``DETAIL_LIMIT``."""
    if df.empty:
        return ""
    name = str(df["audit"].iloc[0]) if "audit" in df else ""
    cols = [
        c
        for c in df.columns
        if c not in ("audit", "value", "n", "ci_low", "ci_high") and not df[c].isna().all()
    ]
    summary = f"All {len(df):,} rows{' ' + esc(what) if what else ''}"
    if name:
        summary += f" (<code>{esc(name)}.parquet</code>)"
    return f"<details><summary>{summary}</summary>{table(df, cols, limit=DETAIL_LIMIT)}</details>"


def card(label: str, value: str) -> str:
    return f"<div class='card'><b>{value}</b><span>{html.escape(label)}</span></div>"


def findings(sentences: Iterable[str]) -> str:
    """The sentences a section opens with (already HTML: data inside them escaped by the caller)."""
    items = [s for s in sentences if s]
    if not items:
        return ""
    return "<div class='findings'>" + "".join(f"<p>{s}</p>" for s in items) + "</div>"


def figure(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f"<img alt='figure' src='data:image/png;base64,{data}'>"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plain(value: Any) -> str:
    """A data value (file name, host, label) as matplotlib text: its '$' is a dollar, not mathtext.

    Only data is escaped: matplotlib's own log-axis tick labels are mathtext and must stay so.
    """
    return str(value).replace("$", r"\$")


def _errors(df: pd.DataFrame) -> list[np.ndarray]:
    lo = (df["value"] - df["ci_low"]).clip(lower=0).fillna(0)
    hi = (df["ci_high"] - df["value"]).clip(lower=0).fillna(0)
    # arrays, not Series: matplotlib calls float() on one-element Series, which pandas deprecates
    return [lo.to_numpy(float), hi.to_numpy(float)]


def bars(df: pd.DataFrame, label: str, title: str, ylabel: str, marked: pd.Series | None = None) -> str:
    """Bar chart of value with CI error bars, one bar per ``label``; ``marked`` bars grey."""
    plt = _plt()
    df = df.dropna(subset=["value"])
    if df.empty:
        return ""
    colors = ["#b8bec5" if marked is not None and bool(marked.get(i, False)) else "#3b6ea5" for i in df.index]
    fig, ax = plt.subplots(figsize=(min(11, 1.6 + 0.55 * len(df)), 2.8))
    ax.bar(df[label].map(plain), df["value"].to_numpy(float), yerr=_errors(df), color=colors, capsize=3)
    if marked is not None and any(bool(marked.get(i, False)) for i in df.index):
        title += " (grey: judge not valid here, not a finding)"
    ax.set_title(plain(title), fontsize=10)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    return figure(fig)


def grouped_bars(
    df: pd.DataFrame, x: str, hue: str, title: str, ylabel: str, marked: pd.Series | None = None
) -> str:
    """Bars of value with CI error bars: groups along ``x``, one color per ``hue``; ``marked`` hatched."""
    plt = _plt()
    df = df.dropna(subset=["value"])
    if df.empty:
        return ""
    xs = list(dict.fromkeys(df[x].astype(str)))
    hues = list(dict.fromkeys(df[hue].astype(str)))
    width = 0.8 / max(1, len(hues))
    fig, ax = plt.subplots(figsize=(min(12, 2 + 0.35 * len(xs) * len(hues)), 3.0))
    for i, h in enumerate(hues):
        g = df[df[hue].astype(str) == h]
        pos = (
            np.array([xs.index(v) for v in g[x].astype(str)], dtype=float) + (i - (len(hues) - 1) / 2) * width
        )
        grey = marked is not None and all(bool(marked.get(j, False)) for j in g.index)
        ax.bar(
            pos,
            g["value"].to_numpy(float),
            width,
            yerr=_errors(g),
            capsize=2,
            label=plain(h + (" (not a finding)" if grey else "")),
            hatch="//" if grey else None,
            alpha=0.45 if grey else 1.0,
        )
    ax.set_xticks(range(len(xs)), [plain(v) for v in xs], rotation=45, fontsize=8)
    ax.set_title(plain(title), fontsize=10)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, ncol=min(4, len(hues)))
    return figure(fig)


def _with(df: pd.DataFrame, *cols: str, optional: tuple[str, ...] = ()) -> pd.DataFrame:
    """``df`` with the slice columns a renderer reads, which a table of skip rows only lacks.

    A table with measurements but without its audit's slices is foreign: the KeyError it raises
    becomes the one-line ``not a table the ... audit writes`` error.
    """
    missing = [c for c in cols if c not in df.columns]
    if missing and (df["metric"] != SKIPPED).any():
        raise KeyError(missing[0])
    missing += [c for c in optional if c not in df.columns]  # slices only some runs write
    return df.assign(**dict.fromkeys(missing)) if missing else df


def _pooled(g: pd.DataFrame) -> pd.Series | None:
    """Rates of disjoint groups pooled into one (k = value * n summed), with its Wilson interval."""
    g = g.dropna(subset=["value"])
    g = g[g["n"] > 0]
    if g.empty:
        return None
    n = int(g["n"].sum())
    k = round(float((g["value"] * g["n"]).sum()))
    k = min(max(k, 0), n)
    lo, hi = wilson(k, n)
    return pd.Series({"metric": "rate", "value": k / n, "n": n, "ci_low": lo, "ci_high": hi})


# ---- judge validity ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """How far one judge can be trusted on one attribute of this run's images."""

    judge: str
    attribute: str
    status: str  # valid | usable | NOT valid | unvalidated
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
        return self.status in ("NOT valid", "unvalidated")

    def accuracy_text(self) -> str:
        ci = interval(self.low, self.high)
        return f"{num(self.accuracy)}{' ' + ci if ci else ''}"

    def problem(self) -> str:
        """Why a figure from this judge and attribute is not a finding (HTML)."""
        if self.status == "unvalidated":
            return f"judge {esc(self.judge)}'s {esc(self.attribute)} is unvalidated ({esc(self.reason)})"
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
    _cache: dict[tuple[str, str], Verdict] = field(default_factory=dict)

    @classmethod
    def of(cls, run: FinishedRun) -> Validity:
        table = next((df for a, df in run.tables if a.name == VALIDITY_AUDIT), None)
        if table is not None:
            table = _with(table, "attribute", "source", "domain")
        return cls(table, run_domain(run.root))

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
        r = covers.loc[covers["n"].idxmax()]
        kappa = t[
            (t["metric"] == "kappa")
            & (t["judge"].astype(str) == judge)
            & (t["attribute"].astype(str) == attribute)
            & (t["source"].astype(str) == str(r["source"]))
            & (t["domain"].astype(str) == str(r["domain"]))
        ]["value"]
        a = float(r["value"])
        status = _grade(a)
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

    def _covers(self, labelled: Any) -> bool:
        """Labels of ``labelled`` (model ids, comma-separated) cover every model id of the run."""
        if _missing(labelled):
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


_VALIDITY: contextvars.ContextVar[Validity] = contextvars.ContextVar("report_validity")


def current_validity() -> Validity:
    """The validity of the page being rendered (outside :func:`render`: nothing validated)."""
    try:
        return _VALIDITY.get()
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
    ids = {str(v) for v in j["model_id"] if not _missing(v)}
    return frozenset(ids) if ids else None


_ATTR_METRIC = re.compile(r"(?P<attr>.+?)_(?:match_gap|match|other)")


def figure_attributes(df: pd.DataFrame) -> pd.Series:
    """Per row of a judged audit table: the attributes its figure depends on.

    ``<attr>_match``, ``<attr>_match_gap`` and ``<attr>_other`` depend on ``attr``, the ``all_``
    ones on every attribute the table has ``<attr>_match`` rows of; rows with an ``attribute``
    slice (culture, limbs) on it; everything else (skips, text scores) on none.
    """
    metrics = df["metric"].astype(str) if "metric" in df else pd.Series("", index=df.index)
    asked = sorted(
        {m[: -len("_match")] for m in metrics.unique() if m.endswith("_match") and m != "all_match"}
    )
    attribute = df["attribute"] if "attribute" in df else pd.Series(None, index=df.index, dtype=object)
    out = []
    for metric, attr in zip(metrics, attribute, strict=True):
        hit = _ATTR_METRIC.fullmatch(metric)
        if metric == SKIPPED:
            out.append(())
        elif hit:
            out.append(tuple(asked) if hit["attr"] == "all" else (hit["attr"],))
        elif not _missing(attr) and str(attr) not in ("", ALL):
            out.append((str(attr),))
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


def _skip_sentence(df: pd.DataFrame) -> str:
    skips = df[df["metric"] == SKIPPED]
    total = int(skips["value"].fillna(0).sum()) if len(skips) else 0
    if not total:
        return ""
    reasons = "; ".join(f"{esc(r.note)} ({int(r.value):,})" for r in skips.itertuples() if r.value)
    return f"{total:,} inputs were left out: {reasons}."


# ---- sections ----------------------------------------------------------------------------------------


def _grade(accuracy: float) -> str:
    return "valid" if accuracy >= VALID_ACCURACY else "usable" if accuracy >= USABLE_ACCURACY else "NOT valid"


def section_validity(df: pd.DataFrame) -> str:
    """Each judge's agreement with human labels, per attribute, label source and image domain."""
    df = _with(df, "attribute", "source", "domain")
    validity = current_validity()
    acc = df[df["metric"] == "accuracy"].dropna(subset=["value"])
    out = []
    sentences = []
    if acc.empty:
        sentences.append(
            "No human labels were compared with the judge: every figure from a judge in this report "
            "is unvalidated, so none of them is presented as a finding."
        )
    for (judge, source, domain), g in acc.groupby(["judge", "source", "domain"], sort=False, dropna=False):
        parts = ", ".join(
            f"{esc(r.attribute)} {said(pd.Series(r._asdict()))} ({_grade(r.value)})" for r in g.itertuples()
        )
        sentences.append(
            f"Judge {esc(judge)} against the human labels in {esc(source)} (images of {esc(domain)}): "
            f"accuracy {parts}."
        )
    if validity.domain:
        sentences.append(f"This run's judged images come from {esc(validity.domain_text())}.")
    out.append(findings(sentences))
    if not acc.empty:
        out.append(
            bars(
                acc.assign(label=acc["attribute"].astype(str) + " · " + acc["source"].astype(str)),
                "label",
                f"Judge accuracy against people (valid >= {VALID_ACCURACY:g}, usable >= {USABLE_ACCURACY:g})",
                "accuracy",
            )
        )
        both = df[df["metric"].isin(["accuracy", "kappa"])]
        out.append("<h3>Accuracy and Cohen's kappa per attribute (label source · domain as columns)</h3>")
        both = both.assign(labels=both["source"].astype(str) + " · " + both["domain"].astype(str))
        out.append(pivot(both, ["judge", "attribute", "metric"], "labels"))
    out.append(details(df))
    return "".join(out)


def section_domains(df: pd.DataFrame) -> str:
    df = _with(df, "dataset", "level", optional=("rank", "key", "stage"))
    plt = _plt()
    out = []
    sentences = []
    for dataset, g in df[df["level"] == "domain"].groupby("dataset", sort=False):
        rows = g[g["metric"] == "rows"]
        distinct = g[g["metric"] == "distinct"]
        top = g[g["metric"] == "top100_share"]
        first = g[(g["metric"] == "share")].sort_values("rank")
        if rows.empty or top.empty:
            continue
        s = (
            f"{esc(dataset)}: the top 100 of {fmt(distinct['value'].iloc[0]) if len(distinct) else '–'} "
            f"registrable domains hold {said(top.iloc[0])} rows"
        )
        if len(first):
            f0 = first.iloc[0]
            s += f"; the largest, {esc(f0['key'])}, holds {said(f0)}"
        sentences.append(s + ".")
    out.append(findings(sentences[:4]))
    cov = df[df["metric"] == "coverage"]
    if not cov.empty:
        fig, ax = plt.subplots(figsize=(7, 3.0))
        for (dataset, level), g in cov.groupby(["dataset", "level"], sort=False):
            ax.plot(g["rank"].astype(float), g["value"], marker=".", label=plain(f"{dataset} ({level})"))
        ax.set_xscale("log")
        ax.set_xlabel("top-k hosts / domains")
        ax.set_ylabel("share of rows")
        ax.set_title("Coverage curve", fontsize=10)
        ax.legend(fontsize=7)
        out.append(figure(fig))
    summary = df[
        df["metric"].isin(["rows", "distinct", "top10_share", "top100_share", "top1000_share", "hhi", "gini"])
    ]
    if not summary.empty:
        out.append("<h3>Concentration (hosts and registrable domains)</h3>")
        out.append(pivot(summary, ["dataset", "level"], "metric"))
    top = df[(df["metric"] == "share") & (df["level"] == "domain")]
    if not top.empty:
        out.append("<h3>Top registrable domains (share of rows)</h3>")
        labelled = top.assign(
            domain=top["key"].astype(str) if "key" in top else "",
            place=top["rank"].map(lambda r: "–" if _missing(r) else int(r)),
        )
        out.append(pivot(labelled.head(200), ["place", "domain"], "dataset", corner="domain", limit=15))
    lift = df[(df["metric"] == "pass_rate") & (df["level"] == "domain")]
    if not lift.empty:
        out.append("<h3>Which domains each filter favours (pass rate among rows reaching the stage)</h3>")
        out.append(pivot(lift, ["dataset", "key"], "stage", limit=20))
    out.append(details(df))
    return "".join(out)


def section_language_mix(df: pd.DataFrame) -> str:
    df = _with(df, "run", "column", "key", optional=("stage", "group"))
    out = []
    sentences = []
    for (run, column), g in df.groupby(["run", "column"], sort=False):
        keep = g[(g["metric"] == "keep_rate")].dropna(subset=["value"])
        keep = keep[keep["n"] > 0]
        if len(keep) >= 2:
            low, high = keep.loc[keep["value"].idxmin()], keep.loc[keep["value"].idxmax()]
            s = (
                f"{esc(run)} keeps {esc(column)} {esc(high['key'])} at {said(high)} "
                f"but {esc(low['key'])} at {said(low)}"
            )
            stages = g[(g["metric"] == "pass_rate") & (g["key"] == low["key"])].dropna(subset=["value"])
            stages = stages[stages["n"] > 0]
            if len(stages):
                worst = stages.loc[stages["value"].idxmin()]
                s += f"; stage {esc(worst['stage'])} passes {said(worst)} of {esc(low['key'])}"
            sentences.append(s + ".")
    out.append(findings(sentences[:4]))
    for (run, column), g in df.groupby(["run", "column"], sort=False):
        keep = g[g["metric"] == "keep_rate"]
        out.append(bars(keep, "key", f"{run}: keep rate by {column}", "kept / input"))
        shares = g[g["metric"].isin(["share_in", "share_out", "keep_rate"])]
        if not shares.empty:
            out.append(f"<h3>{esc(run)}: share of input, of output, and keep rate by {esc(column)}</h3>")
            out.append(pivot(shares, ["key"], "metric", corner=str(column)))
        stages = g[g["metric"] == "pass_rate"]
        if not stages.empty:
            out.append(f"<h3>{esc(run)}: pass rate per stage (stages as columns)</h3>")
            out.append(pivot(stages, ["key"], "stage", corner=str(column)))
    out.append(details(df))
    return "".join(out)


def _reference(note: Any) -> str:
    hit = re.match(r"vs (\S+)", str(note or ""))
    return hit.group(1) if hit else "the reference language"


def section_language_bias(df: pd.DataFrame) -> str:
    df = _with(df, "language")
    validity = current_validity()
    marked = validity.marks(df)
    attrs = figure_attributes(df)
    sentences = []
    match = df[df["metric"] == "all_match"].dropna(subset=["value"])
    match = match[match["n"] > 0]
    if not match.empty:
        low = match.loc[match["value"].idxmin()]
        asked = attrs[low.name]
        s = (
            f"Adherence (all attributes: {esc(', '.join(asked))}) is lowest in "
            f"{esc(low['language'])}: {said(low)}"
        )
        gap = df[(df["metric"] == "all_match_gap") & (df["language"] == low["language"])].dropna(
            subset=["value"]
        )
        if len(gap):
            g = gap.iloc[0]
            where = "below" if g["value"] < 0 else "above"
            s += (
                f", {num(abs(g['value']))} {where} {esc(_reference(g['note']))} "
                f"(Newcombe 95% CI {interval(g['ci_low'], g['ci_high'])})"
            )
        if len(match) > 1:
            high = match.loc[match["value"].idxmax()]
            s += f"; highest in {esc(high['language'])}: {said(high)}"
        sentences.append(stated(validity, str(low["judge"]), asked, s))
        gaps = df[df["metric"] == "all_match_gap"].dropna(subset=["ci_low", "ci_high"])
        if len(gaps):
            clear = gaps[(gaps["ci_high"] < 0) | (gaps["ci_low"] > 0)]
            if clear.empty:
                s = (
                    "Every language's gap interval includes 0 (n per language "
                    f"{_n(gaps['n'].min())}–{_n(gaps['n'].max())}): no evidence of a language gap at this n"
                )
            else:
                langs = ", ".join(esc(v) for v in clear["language"])
                s = f"The gap's interval excludes 0 for {len(clear)} of {len(gaps)} languages ({langs})"
            sentences.append(stated(validity, str(gaps["judge"].iloc[0]), asked, s))
    others = df[df["metric"].str.endswith("_other", na=False)]
    worst = None
    for metric, g in others.groupby("metric", sort=False):
        p = _pooled(g)
        if p is not None and (worst is None or p["value"] > worst[1]["value"]):
            worst = (str(metric)[: -len("_other")], p, str(g["judge"].iloc[0]))
    if worst is not None and worst[1]["value"] >= 0.1:
        attr, p, judge = worst
        share = f"{p['value']:.0%} {interval(p['ci_low'], p['ci_high'])} of n={int(p['n']):,} images"
        if p["value"] >= 0.5:
            s = (
                f"The judge's answer for {esc(attr)} was 'other' (none of the suite's words) for {share}: "
                "the model mostly does not draw what these prompts ask for, so adherence here measures that"
            )
        else:
            s = f"The judge's answer for {esc(attr)} was 'other' (none of the suite's words) for {share}"
        sentences.append(stated(validity, judge, [attr], s))
    skip = _skip_sentence(df)
    if skip and len(sentences) < 4:
        sentences.append(skip)
    out = [findings(sentences)]
    rates = df[df["metric"].str.endswith("_match", na=False)]
    if not rates.empty:
        out.append(
            grouped_bars(
                rates, "language", "metric", "Prompt adherence by language (95% intervals)", "rate", marked
            )
        )
    table_rows = df[(df["metric"] != SKIPPED)]
    order = {m: i for i, m in enumerate(_metric_order(table_rows["metric"]))}
    table_rows = table_rows.sort_values("metric", key=lambda s: s.map(order), kind="stable")
    if not table_rows.empty:
        out.append(
            "<h3>Adherence, gap to the reference language, 'other' answers, text score "
            "(languages as columns)</h3>"
        )
        out.append(pivot(table_rows, ["metric"], "language", marked))
    out.append(details(df))
    return "".join(out)


def _metric_order(metrics: pd.Series) -> list[str]:
    """all_match first, then per attribute match, gaps, other rates, then the rest."""
    seen = list(dict.fromkeys(metrics.astype(str)))

    def rank(m: str) -> tuple[int, str]:
        if m.startswith("all_"):
            return (0 if m == "all_match" else 2, m)
        if m.endswith("_match"):
            return (1, m)
        if m.endswith("_match_gap"):
            return (3, m)
        if m.endswith("_other"):
            return (4, m)
        return (5, m)

    return sorted(seen, key=rank)


def section_culture(df: pd.DataFrame) -> str:
    df = _with(df, "attribute", "subject", "language", "source", "label")
    validity = current_validity()
    marked = validity.marks(df)
    plt = _plt()
    sentences = []
    attributes = [a for a in dict.fromkeys(df["attribute"].dropna().astype(str))]
    for attribute in attributes:
        g = df[df["attribute"] == attribute]
        pooled = (g["subject"] == ALL) & (g["language"] == ALL)
        shares = g[pooled & (g["metric"] == "share") & (g["source"] == "generated")].dropna(subset=["value"])
        imb = g[pooled & (g["metric"] == "imbalance") & (g["source"] == "generated")]
        if shares.empty:
            continue
        top = shares.loc[shares["value"].idxmax()]
        judge = str(top["judge"])
        s = (
            f"{esc(attribute.capitalize())}: where the prompt names none, the model draws "
            f"{esc(top['label'])} in {said(top)}"
        )
        train = g[
            pooled & (g["metric"] == "share") & (g["source"] == "training") & (g["label"] == top["label"])
        ]
        if len(train):
            s += f" (training data: {said(train.iloc[0])})"
        if len(imb):
            k = len(shares)
            s += f"; imbalance {said(imb.iloc[0])} (HEIM mean |f_k − 1/{k}|, 0 = parity)"
        sentences.append(stated(validity, judge, [attribute], s))
        per = g[
            (g["metric"] == "imbalance")
            & (g["source"] == "generated")
            & (g["language"] == ALL)
            & (g["subject"] != ALL)
        ].dropna(subset=["value"])
        if len(per) > 1:
            w = per.loc[per["value"].idxmax()]
            sentences.append(
                stated(
                    validity,
                    judge,
                    [attribute],
                    f"Most skewed subject for {esc(attribute)}: {esc(w['subject'])}, imbalance {said(w)}",
                )
            )
        other = g[(g["metric"] == SKIPPED)]
        left = int(other["value"].fillna(0).sum()) if len(other) else 0
        seen = int(shares["n"].max())
        if left and left >= seen:
            sentences.append(
                f"For {esc(attribute)}, the judge saw none of the offered labels ('other') in {left:,} "
                "images, "
                f"more than the {seen:,} it could place: the model mostly does not draw these subjects "
                "recognisably, and the distribution above rests on few images."
            )
    if not attributes:
        sentences.append(_skip_sentence(df) or "No culture or gender was judged.")
    out = [findings(sentences[:4] if len(sentences) > 4 else sentences)]
    share = df[(df["metric"] == "share") & (df["language"] == ALL) & (df["subject"] == ALL)]
    if not share.empty:
        attrs = list(dict.fromkeys(share["attribute"].astype(str)))
        fig, axes = plt.subplots(1, len(attrs), figsize=(3.6 * len(attrs), 3), squeeze=False)
        for ax, attribute in zip(axes[0], attrs, strict=False):
            g = share[share["attribute"].astype(str) == attribute]
            grid = g.pivot_table(index="source", columns="label", values="value", aggfunc="first")
            grid = grid.rename(index=plain, columns=plain)
            grid.plot.bar(stacked=True, ax=ax, legend=True, rot=0)
            ax.legend(fontsize=6)
            bad = bool(marked.loc[g.index].all())
            ax.set_title(plain(attribute + (" (not a finding)" if bad else "")), fontsize=10)
            ax.set_ylim(0, 1)
        out.append(figure(fig))
    for attribute in attributes:
        g = df[df["attribute"] == attribute]
        s = g[(g["metric"] == "share") & (g["subject"] == ALL) & (g["language"] == ALL)]
        if not s.empty:
            out.append(f"<h3>{esc(attribute.capitalize())}: share of each label (sources as columns)</h3>")
            out.append(pivot(s, ["label"], "source", marked, corner=attribute))
        imb = g[(g["metric"] == "imbalance") & (g["source"] == "generated")]
        if not imb.empty:
            out.append(
                f"<h3>{esc(attribute.capitalize())}: imbalance per subject "
                "(languages as columns; 0 = parity)</h3>"
            )
            out.append(pivot(imb, ["subject"], "language", marked))
    out.append(details(df))
    return "".join(out)


def section_limbs(df: pd.DataFrame) -> str:
    df = _with(df, "attribute", "by", "level", "subject")
    validity = current_validity()
    marked = validity.marks(df)
    rates = df[df["metric"] == "failure_rate"]
    sentences = []
    attributes = list(dict.fromkeys(rates["attribute"].dropna().astype(str)))
    for attribute in attributes:
        g = rates[rates["attribute"] == attribute]
        subj = g[g["by"] == "subject"].dropna(subset=["value"])
        subj = subj[subj["n"] > 0]
        if subj.empty:
            continue
        judge = str(subj["judge"].iloc[0])
        total = _pooled(subj)
        s = f"{esc(attribute.capitalize())}: the count is wrong in {said(total)} images"
        if len(subj) > 1:
            worst, best = subj.loc[subj["value"].idxmax()], subj.loc[subj["value"].idxmin()]
            s += (
                f"; worst subject {esc(worst['subject'])}: {said(worst)}; "
                f"best {esc(best['subject'])}: {said(best)}"
            )
        sentences.append(stated(validity, judge, [attribute], s))
        spread = None
        for factor, f in g[(g["by"] != "subject") & (g["subject"] == ALL)].groupby("by", sort=False):
            f = f.dropna(subset=["value"])
            f = f[f["n"] > 0]
            if len(f) < 2:
                continue
            lo, hi = f.loc[f["value"].idxmin()], f.loc[f["value"].idxmax()]
            if spread is None or hi["value"] - lo["value"] > spread[2]:
                spread = (factor, (lo, hi), hi["value"] - lo["value"])
        if spread is not None:
            factor, (lo, hi), _ = spread
            s = (
                f"Across settings it varies most with {esc(factor)}: {said(lo)} at {fmt(lo['level'])} "
                f"to {said(hi)} at {fmt(hi['level'])}"
            )
            sentences.append(stated(validity, judge, [attribute], s))
    if not attributes:
        sentences.append(_skip_sentence(df) or "No limb count was judged.")
    out = [findings(sentences[:4])]
    for attribute in attributes:
        g = rates[rates["attribute"] == attribute]
        subj = g[g["by"] == "subject"]
        out.append(bars(subj, "subject", f"Wrong {attribute} count by subject", "failure rate", marked))
        settings = g[g["by"] != "subject"]
        if not settings.empty:
            out.append(
                f"<h3>{esc(attribute.capitalize())}: failure rate by generation setting "
                "(subjects as columns)</h3>"
            )
            cols = settings.assign(subject=settings["subject"].astype(str))
            out.append(pivot(cols, ["by", "level"], "subject", marked, limit=30))
    out.append(details(df))
    return "".join(out)


def section_watermark(df: pd.DataFrame) -> str:
    from t2iscope.evaluate.audits.watermark import readme_comparison

    df = _with(df, "source", "method", optional=("attack", "strength"))
    plt = _plt()
    out = []
    sentences = []
    det = df[df["metric"] == "detection_rate"].copy()
    for (source, method), g in det.groupby(["source", "method"], sort=False):
        g = g.dropna(subset=["value"])
        attacked = g[g["attack"] != "none"]
        if attacked.empty:
            continue
        worst = attacked.loc[attacked["value"].idxmin()]
        fpr = df[(df["metric"] == "fpr") & (df["source"] == source) & (df["method"] == method)]
        s = (
            f"{esc(method)} on {esc(source)}: detected after {g['value'].mean():.0%} of attacks on average; "
            f"weakest against {esc(worst['attack'])} {fmt(worst['strength'])} ({said(worst)})"
        )
        if len(fpr):
            s += f", at a false-positive rate of {said(fpr.iloc[0])}"
        sentences.append(s + ".")
    out.append(findings(sentences[:4]))
    if not det.empty:
        det["attack_s"] = det["attack"].astype(str) + " " + det["strength"].map(lambda s: fmt(s))
        for source, g in det.groupby("source", sort=False):
            grid = g.pivot_table(index="method", columns="attack_s", values="value", sort=False)
            fig, ax = plt.subplots(figsize=(min(14, 1 + 0.3 * grid.shape[1]), 0.6 + 0.45 * grid.shape[0]))
            ax.imshow(grid.to_numpy(), vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
            ax.set_xticks(range(grid.shape[1]), grid.columns.map(plain), rotation=90, fontsize=7)
            ax.set_yticks(range(grid.shape[0]), grid.index.map(plain), fontsize=8)
            ax.set_title(plain(f"Detection rate at measured-FPR threshold: {source}"), fontsize=10)
            out.append(figure(fig))
        out.append("<h3>Detection rate per attack (methods as columns)</h3>")
        det["at"] = det["source"].astype(str)
        out.append(pivot(det, ["at", "attack_s"], "method", corner="attack", limit=40))
    quality = df[df["metric"].isin(["psnr", "ssim", "threshold", "fpr"])]
    if not quality.empty:
        out.append("<h3>Image quality of the marked image, threshold and false-positive rate</h3>")
        out.append(pivot(quality, ["source", "method"], "metric"))
    cmp = readme_comparison(df)
    if not cmp.empty:
        agree = int(cmp["agrees"].sum())
        out.append(f"<h3>Beside the invisible-watermark README ({agree} of {len(cmp)} agree)</h3>")
        rows = "".join(
            f"<tr><td>{esc(r.readme_attack)}</td><td>{esc(r.attack)} {fmt(r.strength)}</td>"
            f"<td>{esc(r.source)}</td><td>{esc(r.method)}</td><td>{esc(r.readme)}</td>"
            f"<td class='num'>{r.detection_rate:.2f} "
            f"<span class='ci'>[{r.ci_low:.2f}, {r.ci_high:.2f}]</span> "
            f"n={int(r.n)}</td><td class='{'ok' if r.agrees else 'bad'}'>{esc(r.ours)}</td></tr>"
            for r in cmp.itertuples()
        )
        out.append(
            "<table><tr><th>README attack</th><th>ours</th><th>source</th><th>method</th><th>README</th>"
            f"<th>detection [95% CI]</th><th>our verdict</th></tr>{rows}</table>"
        )
    out.append(details(df))
    return "".join(out)


# ---- first screen ------------------------------------------------------------------------------------


def _headline_row(audit: Audit, df: pd.DataFrame) -> pd.Series | None:
    """The row a headline card shows (None for ``mean`` cards and when no row matches)."""
    if audit.headline is None:
        return None
    metric, where, pick, _ = audit.headline
    g = df[df["metric"] == metric].dropna(subset=["value"])
    for col, val in where.items():
        if col in g.columns:
            g = g[g[col] == val]
    if g.empty or pick == "mean":
        return None
    if pick == "min":
        g = g[~g.get("key", pd.Series("", index=g.index)).isin(["(none)"])]  # unlabelled rows are no group
        if g.empty:
            return None
    return (
        g.iloc[0] if pick == "first" else g.loc[g["value"].idxmin() if pick == "min" else g["value"].idxmax()]
    )


def headline(audit: Audit, df: pd.DataFrame) -> str:
    """The first-screen card of one audit: its headline number with interval and n (and who it is about)."""
    if audit.headline is None:
        return ""
    metric, where, pick, label = audit.headline
    if pick == "mean":
        g = df[df["metric"] == metric].dropna(subset=["value"])
        for col, val in where.items():
            if col in g.columns:
                g = g[g[col] == val]
        if g.empty:
            return ""
        return card(label, f"{g['value'].mean():.2f} <span class='ci'>{len(g):,} cells</span>")
    r = _headline_row(audit, df)
    if r is None:
        return ""
    parts = []
    if "attribute" in r and not _missing(r["attribute"]):
        parts.append(str(r["attribute"]))
    who = next(
        (str(r[c]) for c in ("language", "key", "subject", "dataset") if c in r and not _missing(r[c])), ""
    )
    if who and who != ALL:
        parts.append(who)
    ci = interval(r["ci_low"], r["ci_high"])
    value = fmt_value(r["metric"], r["value"], 2)
    text = f"{value} <span class='ci'>{ci + ' ' if ci else ''}n={_n(r['n'])}</span>"
    return card(f"{label} ({', '.join(parts)})" if parts else label, text)


def _marked_card(card_html: str, problem: str) -> str:
    return f"<div class='card-marked'>{card_html}<p><b>not a finding:</b> {problem}</p></div>"


def validity_panel(validity: Validity, used: dict[tuple[str, str], None]) -> str:
    """The first screen's table: each judge's validity per attribute, and what that means for the page."""
    pairs = dict(used)
    if validity.table is not None:
        acc = validity.table[validity.table["metric"] == "accuracy"]
        for judge, attribute in zip(acc["judge"].astype(str), acc["attribute"].astype(str), strict=True):
            pairs.setdefault((judge, attribute), None)
    rule = (
        f"A figure is a finding only when its judge's accuracy on every attribute it depends on, "
        f"measured against human labels of this run's image domain, is at least {USABLE_ACCURACY:g} "
        f"(valid: at least {VALID_ACCURACY:g}); other figures are greyed and marked "
        "<b>not a finding</b>."
    )
    if not pairs:
        return (
            "<section id='judge-validity'><h2>Judge validity</h2>"
            "<p class='lede'>No audit in this run depends on a judge's answers.</p></section>"
        )
    rows = []
    for judge, attribute in sorted(pairs):
        v = validity.verdict(judge, attribute)
        cls = {"valid": "ok", "usable": "warn", "NOT valid": "bad"}.get(v.status, "unk")
        rows.append(
            f"<tr><td>{esc(judge)}</td><td>{esc(attribute)}</td><td class='{cls}'><b>{esc(v.status)}</b></td>"
            f"<td class='num'>{num(v.accuracy)} <span class='ci'>{interval(v.low, v.high)}</span></td>"
            f"<td class='num'>{num(v.kappa)}</td><td class='num'>{v.n:,}</td>"
            f"<td>{esc(v.source) or '–'}</td><td>{esc(v.domain or v.reason)}</td></tr>"
        )
    where = f"This run's judged images: {esc(validity.domain_text())}." if validity.domain else ""
    return (
        "<section id='judge-validity'><h2>Judge validity</h2>"
        f"<p class='lede'>{rule} {where}</p>"
        "<table><tr><th>judge</th><th>attribute</th><th>verdict</th><th>accuracy [95% Wilson]</th>"
        "<th>kappa</th><th>n</th><th>labels</th><th>domain</th></tr>" + "".join(rows) + "</table></section>"
    )


def build_report(audit_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` for the finished run in an audit folder and return its path.

    Shows exactly the audits run.json lists (``folder.read_run``); holds the folder's lock while it
    reads and writes, so a run replacing the folder cannot change it halfway.
    """
    root = Path(audit_dir)
    read_record(root)  # a folder with no finished run is refused before it is locked
    with output_lock(root):
        run = read_run(root)
        page = render(run)
        dest = Path(out) if out else root / REPORT
        fileio.write_text(dest, page)
    return dest


def render(run: FinishedRun) -> str:
    """The report page of a finished run."""
    root, tables = run.root, run.tables
    validity_audit = next((a for a, _ in tables if a.name == VALIDITY_AUDIT), None)
    if validity_audit is not None:
        with _table_problems(root, validity_audit):
            validity = Validity.of(run)
    else:
        validity = Validity(None, run_domain(root))
    token = _VALIDITY.set(validity)
    try:
        return _page(run, validity)
    finally:
        _VALIDITY.reset(token)


def _page(run: FinishedRun, validity: Validity) -> str:
    root, tables = run.root, run.tables
    skips, cards, sections = [], [], []
    used: dict[tuple[str, str], None] = {}
    for audit, df in tables:
        with _table_problems(root, audit):
            skipped = df[df["metric"] == SKIPPED]
            skips.append(skipped.assign(count=skipped["value"].fillna(0).astype(int)))  # a skip counts inputs
            judged = audit.judged and audit.name != VALIDITY_AUDIT
            attrs = figure_attributes(df) if judged else None
            if attrs is not None:
                for judge, a in zip(df["judge"].astype(str), attrs, strict=True):
                    for attribute in a:
                        used.setdefault((judge, attribute), None)
            c = headline(audit, df)
            row = _headline_row(audit, df) if c and judged else None
            if row is not None and attrs is not None:
                problem = validity.problem(str(row["judge"]), attrs.loc[row.name])
                if problem:
                    c = _marked_card(c, problem)
            cards.append(c)
            judge = ", ".join(sorted(set(df["judge"].astype(str))))
            sections.append(
                f"<section id='{audit.name}'><h2>{html.escape(audit.title)}</h2><p class='lede'>judge: "
                f"{html.escape(judge)}; {len(df):,} measurements in <code>{audit.name}.parquet</code></p>"
                f"{audit.render(df)}</section>"
            )
    body = [validity_panel(validity, used)]
    body.append("<section><h2>Headline findings</h2><div class='cards'>" + "".join(cards) + "</div>")
    counts = pd.concat(skips, ignore_index=True)
    if counts.empty:
        body.append("<p class='lede ok'>No inputs were skipped.</p>")
    else:
        body.append(
            f"<details><summary class='skip'>Counted skips ({int(counts['count'].sum()):,} inputs left out, "
            f"{len(counts):,} reason{'s' if len(counts) != 1 else ''})</summary>"
        )
        body.append(table(counts, ["audit", "note", "count"], value=False) + "</details>")
    body.append("</section>")
    body += sections
    names = ", ".join(a.name for a, _ in tables)
    return Template(
        resources.files("t2iscope.evaluate").joinpath("templates/report.html").read_text()
    ).substitute(
        title=html.escape(root.name),
        subtitle=html.escape(f"{names} · judge {run.record.get('judge', '?')} · t2iscope {__version__}"),
        nav="".join(f"<a href='#{a.name}'>{html.escape(a.title)}</a>" for a, _ in tables),
        body="\n".join(body),
        footer=html.escape(
            f"Every rate carries n and a 95% interval (Wilson; Newcombe for differences; bootstrap where "
            f"noted). Full tables: the parquet files in {root}"
        ),
    )


@contextlib.contextmanager
def _table_problems(root: Path, audit: Audit) -> Iterator[None]:
    """A table with the core columns but not the slices its audit writes: one line naming the file.

    ``folder.read_table`` checked the columns every audit shares; the section renderers index the
    audit's own columns, so a foreign table shows up here as a KeyError or a type error.
    """
    try:
        yield
    except (KeyError, ValueError, TypeError, AttributeError, IndexError, ArithmeticError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
        raise DataError(
            f"{root / table_name(audit.name)}: not a table the {audit.name!r} audit writes ({problem})"
        ) from None
