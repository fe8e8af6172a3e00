"""The report's formatting: numbers and cells as HTML, tables, pivots, collapsed details, cards and
charts (matplotlib, inlined as PNG). Pure functions of a tidy table; nothing here knows about judges.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from t2iscope.evaluate.tables import SKIPPED

COUNT_METRICS = frozenset({"rows", "distinct", SKIPPED, "count"})  # values that count things
DETAIL_LIMIT = 500  # rows of a full tidy table shown in its collapsed section


def esc(v: Any) -> str:
    """Data as HTML text."""
    return html.escape(str(v))


def missing(v: Any) -> bool:
    if v is None or v is pd.NA:
        return True
    try:
        return bool(isinstance(v, (float, np.floating)) and math.isnan(v))
    except TypeError:
        return False


def num(v: Any, digits: int = 2) -> str:
    """A measured number: integral values of counts stay integers elsewhere; here ``digits`` decimals,
    or 2 significant digits for small non-zero values (an HHI of 0.0012 is not 0.00)."""
    if missing(v):
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
    if missing(v):
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
    if missing(v):
        return "–"
    v = float(v)
    if math.isfinite(v) and v.is_integer() and (metric in COUNT_METRICS or abs(v) > 1):
        return f"{int(v):,}"
    return num(v, digits)


def interval(lo: Any, hi: Any, digits: int = 2) -> str:
    """``[lo, hi]`` or nothing when the row has no interval."""
    if missing(lo) or missing(hi):
        return ""
    return f"[{num(lo, digits)}, {num(hi, digits)}]"


def row_digits(row: pd.Series, digits: int) -> int:
    """Decimals for a value and its interval together: ``digits``, or enough to give the smallest
    non-zero of them 2 significant digits, so ``0.013 [0.0095, 0.018]`` is not ``0.01 [0.0095, 0.02]``."""
    small = [
        abs(float(v)) for v in (row["value"], row["ci_low"], row["ci_high"]) if not missing(v) and v != 0
    ]
    small = [v for v in small if v < 10**-digits and not math.isinf(v)]
    return min(max([digits, *(1 - math.floor(math.log10(v)) for v in small)]), 8)


def with_ci(row: pd.Series, digits: int = 3) -> str:
    digits = row_digits(row, digits)
    value = fmt_value(row.get("metric"), row["value"], digits)
    ci = interval(row["ci_low"], row["ci_high"], digits)
    return f"{value} <span class='ci'>{ci}</span>" if ci else value


def said(row: pd.Series, digits: int = 2) -> str:
    """One measurement in a sentence: ``0.62 [0.55, 0.69], n=48``."""
    digits = row_digits(row, digits)
    ci = interval(row["ci_low"], row["ci_high"], digits)
    value = fmt_value(row.get("metric"), row["value"], digits)
    return f"{value}{' ' + ci if ci else ''}, n={n_text(row['n'])}"


def n_text(v: Any) -> str:
    return "–" if missing(v) else f"{int(v):,}"


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
            cells += f"<td class='num'>{with_ci(r)}</td><td class='num'>{n_text(r['n'])}</td>"
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
            n = n_text(r["n"])
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


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


PLAIN_CHARS = 60  # a chart label longer than this is cut: a 5,000-character word made a 35,000 px chart


def plain(value: Any) -> str:
    """A data value (file name, host, label) as matplotlib text: its '$' is a dollar, not mathtext,
    and at most ``PLAIN_CHARS`` characters (the tables beside the chart show it whole).

    Only data is escaped: matplotlib's own log-axis tick labels are mathtext and must stay so.
    """
    text = str(value)
    text = text if len(text) <= PLAIN_CHARS else text[: PLAIN_CHARS - 1] + "…"
    return text.replace("$", r"\$")


def _errors(df: pd.DataFrame) -> list[np.ndarray]:
    lo = (df["value"] - df["ci_low"]).clip(lower=0).fillna(0)
    hi = (df["ci_high"] - df["value"]).clip(lower=0).fillna(0)
    # arrays, not Series: matplotlib calls float() on one-element Series, which pandas deprecates
    return [lo.to_numpy(float), hi.to_numpy(float)]


def bars(df: pd.DataFrame, label: str, title: str, ylabel: str, marked: pd.Series | None = None) -> str:
    """Bar chart of value with CI error bars, one bar per ``label``; ``marked`` bars grey."""
    plt = pyplot()
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
    plt = pyplot()
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


def with_columns(df: pd.DataFrame, *cols: str, optional: tuple[str, ...] = ()) -> pd.DataFrame:
    """``df`` with the slice columns a renderer reads, which a table of skip rows only lacks.

    A table with measurements but without its audit's slices is foreign: the KeyError it raises
    becomes the one-line ``not a table the ... audit writes`` error.
    """
    missing = [c for c in cols if c not in df.columns]
    if missing and (df["metric"] != SKIPPED).any():
        raise KeyError(missing[0])
    missing += [c for c in optional if c not in df.columns]  # slices only some runs write
    return df.assign(**dict.fromkeys(missing)) if missing else df
