"""One self-contained HTML report from an audit folder: plots inline, no network, mailable.

Each audit gets a section with its headline numbers (every rate with n and a 95% interval), a
matplotlib figure embedded as base64 PNG, and its detail tables; counted skips from every audit
are listed together near the top, so a reader sees what was left out before reading results.
Which audits, in which order, with which title, headline and section renderer: each audit's
registration says (``AUDITS.audit``); the renderers of the shipped audits are the ``section_*``
functions below.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import math
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
import pandas as pd

from t2iscope import __version__, fileio
from t2iscope.errors import DataError
from t2iscope.evaluate.audits import Audit
from t2iscope.evaluate.folder import REPORT, FinishedRun, read_record, read_run, table_name
from t2iscope.evaluate.tables import SKIPPED
from t2iscope.locks import output_lock

# ---- formatting -----------------------------------------------------------------------------------


def fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (int, np.integer)):
        return f"{v:,}"
    if isinstance(v, (float, np.floating)):
        return f"{v:.{digits}f}" if abs(v) < 1e5 else f"{v:,.0f}"
    return html.escape(str(v))


def with_ci(row: pd.Series, digits: int = 3) -> str:
    ci = ""
    if not (math.isnan(row["ci_low"]) or math.isnan(row["ci_high"])):
        ci = f' <span class="ci">[{fmt(row["ci_low"], digits)}, {fmt(row["ci_high"], digits)}]</span>'
    return f"{fmt(row['value'], digits)}{ci}"


def table(df: pd.DataFrame, cols: list[str], value: bool = True, limit: int = 60) -> str:
    """An HTML table of ``cols`` plus value [CI] and n."""
    if df.empty:
        return "<p class='lede'>No rows.</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    head += "<th>value [95% CI]</th><th>n</th>" if value else ""
    body = []
    for _, r in df.head(limit).iterrows():
        cells = "".join(f"<td>{fmt(r.get(c))}</td>" for c in cols)
        if value:
            cells += f"<td class='num'>{with_ci(r)}</td><td class='num'>{int(r['n']):,}</td>"
        body.append(f"<tr>{cells}</tr>")
    more = f"<p class='lede'>{len(df) - limit} more rows in the parquet.</p>" if len(df) > limit else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def card(label: str, value: str) -> str:
    return f"<div class='card'><b>{value}</b><span>{html.escape(label)}</span></div>"


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


def bars(df: pd.DataFrame, label: str, title: str, ylabel: str) -> str:
    """Bar chart of value with CI error bars, one bar per ``label``."""
    plt = _plt()
    df = df.dropna(subset=["value"])
    if df.empty:
        return ""
    fig, ax = plt.subplots(figsize=(min(11, 1.2 + 0.55 * len(df)), 3.0))
    lo = (df["value"] - df["ci_low"]).clip(lower=0).fillna(0)
    hi = (df["ci_high"] - df["value"]).clip(lower=0).fillna(0)
    # arrays, not Series: matplotlib calls float() on one-element Series, which pandas deprecates
    ax.bar(df[label].map(plain), df["value"], yerr=[lo.to_numpy(), hi.to_numpy()], color="#3b6ea5", capsize=3)
    ax.set_title(plain(title), fontsize=10)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    return figure(fig)


# ---- sections ----------------------------------------------------------------------------------------


def section_domains(df: pd.DataFrame) -> str:
    plt = _plt()
    out = []
    cov = df[df["metric"] == "coverage"]
    if not cov.empty:
        fig, ax = plt.subplots(figsize=(7, 3.2))
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
    out.append("<h3>Concentration (hosts and registrable domains)</h3>")
    out.append(table(summary, ["dataset", "level", "metric"]))
    top = df[(df["metric"] == "share") & (df["level"] == "domain")]
    out.append("<h3>Top registrable domains</h3>")
    out.append(table(top, ["dataset", "rank", "key"], limit=40))
    lift = df[(df["metric"] == "pass_rate") & (df["level"] == "domain")]
    if not lift.empty:
        out.append("<h3>Which domains each filter favours (pass rate among rows reaching the stage)</h3>")
        out.append(table(lift, ["dataset", "stage", "key"], limit=80))
    return "".join(out)


def section_language_mix(df: pd.DataFrame) -> str:
    out = []
    for (run, column), g in df.groupby(["run", "column"], sort=False):
        keep = g[g["metric"] == "keep_rate"]
        out.append(bars(keep, "key", f"{run}: keep rate by {column}", "kept / input"))
        shares = g[g["metric"].isin(["share_in", "share_out"])]
        out.append(
            f"<h3>{html.escape(str(run))}: share of input and output by {html.escape(str(column))}</h3>"
        )
        out.append(table(shares, ["key", "metric"]))
        stages = g[g["metric"] == "pass_rate"]
        out.append(f"<h3>{html.escape(str(run))}: pass rate per stage</h3>")
        out.append(table(stages, ["stage", "key"], limit=80))
    return "".join(out)


def section_language_bias(df: pd.DataFrame) -> str:
    both = df[df["metric"] == "both_match"]
    out = [bars(both, "language", "Prompt adherence (color and kind both right)", "rate")]
    out.append("<h3>Adherence and gap to English</h3>")
    out.append(table(df[df["metric"].str.contains("match", na=False)], ["metric", "language", "note"]))
    scores = df[df["metric"] == "text_score"]
    out.append("<h3>Text-image score</h3>")
    out.append(table(scores, ["language", "note"]))
    return "".join(out)


def section_culture(df: pd.DataFrame) -> str:
    plt = _plt()
    share = df[(df["metric"] == "share") & (df["language"] == "(all)")]
    out = []
    if not share.empty:
        kinds = list(dict.fromkeys(share["kind"]))
        fig, axes = plt.subplots(1, len(kinds), figsize=(3.4 * len(kinds), 3), squeeze=False)
        for ax, kind in zip(axes[0], kinds, strict=False):
            g = share[share["kind"] == kind].pivot_table(index="source", columns="culture", values="value")
            g = g.rename(index=plain, columns=plain)
            g.plot.bar(stacked=True, ax=ax, legend=ax is axes[0][-1], rot=0)
            ax.set_title(plain(kind), fontsize=10)
            ax.set_ylim(0, 1)
        out.append(figure(fig))
    out.append("<h3>Imbalance (HEIM: mean |f_k - 1/K|; 0 = parity)</h3>")
    out.append(table(df[df["metric"] == "imbalance"], ["source", "kind", "language"]))
    out.append("<h3>Shares</h3>")
    out.append(table(df[df["metric"] == "share"], ["source", "kind", "language", "culture"], limit=80))
    return "".join(out)


def section_limbs(df: pd.DataFrame) -> str:
    subj = df[(df["metric"] == "failure_rate") & (df["by"] == "subject")]
    out = [bars(subj, "subject", "Wrong leg count by subject", "failure rate")]
    out.append("<h3>By generation setting (all subjects)</h3>")
    out.append(table(df[(df["metric"] == "failure_rate") & (df["subject"] == "(all)")], ["by", "level"]))
    kappa = df[df["metric"].isin(["kappa", "agreement"])]
    out.append("<h3>Judge vs human labels</h3>")
    out.append(table(kappa, ["metric", "annotator", "note"]))
    return "".join(out)


def section_watermark(df: pd.DataFrame) -> str:
    from t2iscope.evaluate.audits.watermark import readme_comparison

    plt = _plt()
    out = []
    det = df[df["metric"] == "detection_rate"].copy()
    if not det.empty:
        det["attack_s"] = det["attack"] + " " + det["strength"].map(lambda s: f"{float(s):g}")
        for source, g in det.groupby("source", sort=False):
            grid = g.pivot_table(index="method", columns="attack_s", values="value", sort=False)
            fig, ax = plt.subplots(figsize=(min(14, 1 + 0.3 * grid.shape[1]), 0.6 + 0.45 * grid.shape[0]))
            ax.imshow(grid.to_numpy(), vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
            ax.set_xticks(range(grid.shape[1]), grid.columns.map(plain), rotation=90, fontsize=7)
            ax.set_yticks(range(grid.shape[0]), grid.index.map(plain), fontsize=8)
            ax.set_title(plain(f"Detection rate at measured-FPR threshold: {source}"), fontsize=10)
            out.append(figure(fig))
    quality = df[df["metric"].isin(["psnr", "ssim", "threshold", "fpr"])]
    out.append("<h3>Image quality of the marked image, threshold and false-positive rate</h3>")
    out.append(table(quality, ["source", "method", "metric", "note"]))
    cmp = readme_comparison(df)
    if not cmp.empty:
        agree = int(cmp["agrees"].sum())
        out.append(f"<h3>Beside the invisible-watermark README ({agree} of {len(cmp)} agree)</h3>")
        rows = "".join(
            f"<tr><td>{html.escape(r.readme_attack)}</td><td>{html.escape(r.attack)} {r.strength:g}</td>"
            f"<td>{html.escape(r.source)}</td><td>{html.escape(r.method)}</td><td>{r.readme}</td>"
            f"<td class='num'>{r.detection_rate:.2f} "
            f"<span class='ci'>[{r.ci_low:.2f}, {r.ci_high:.2f}]</span> "
            f"n={int(r.n)}</td><td class='{'ok' if r.agrees else 'bad'}'>{r.ours}</td></tr>"
            for r in cmp.itertuples()
        )
        out.append(
            "<table><tr><th>README attack</th><th>ours</th><th>source</th><th>method</th><th>README</th>"
            f"<th>detection [95% CI]</th><th>our verdict</th></tr>{rows}</table>"
        )
    out.append("<h3>Bit accuracy per attack</h3>")
    out.append(
        table(df[df["metric"] == "bit_accuracy"], ["source", "method", "attack", "strength"], limit=80)
    )
    return "".join(out)


def headline(audit: Audit, df: pd.DataFrame) -> str:
    """The first-screen card of one audit: its headline number with n (and who it is about)."""
    if audit.headline is None:
        return ""
    metric, where, pick, label = audit.headline
    g = df[df["metric"] == metric].dropna(subset=["value"])
    for col, val in where.items():
        if col in g.columns:
            g = g[g[col] == val]
    if g.empty:
        return ""
    if pick == "mean":
        return card(label, f"{g['value'].mean():.2f} <span class='ci'>{len(g)} cells</span>")
    if pick == "min":
        g = g[~g.get("key", pd.Series("", index=g.index)).isin(["(none)"])]  # unlabelled rows are no group
    r = g.iloc[0] if pick == "first" else g.loc[g["value"].idxmin() if pick == "min" else g["value"].idxmax()]
    who = next(
        (str(r[c]) for c in ("language", "key", "subject", "dataset") if c in r and pd.notna(r[c])), ""
    )
    return card(f"{label} ({who})", f"{r['value']:.2f} <span class='ci'>n={int(r['n']):,}</span>")


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
    skips, cards, sections = [], [], []
    for audit, df in tables:
        with _table_problems(root, audit):
            skipped = df[df["metric"] == SKIPPED]
            skips.append(skipped.assign(count=skipped["value"].astype(int)))  # a skip counts inputs
            cards.append(headline(audit, df))
            judge = ", ".join(sorted(set(df["judge"].astype(str))))
            sections.append(
                f"<section id='{audit.name}'><h2>{html.escape(audit.title)}</h2><p class='lede'>judge: "
                f"{html.escape(judge)}; {len(df):,} measurements in <code>{audit.name}.parquet</code></p>"
                f"{audit.render(df)}</section>"
            )
    body = ["<section><h2>Summary</h2><div class='cards'>" + "".join(cards) + "</div>"]
    counts = pd.concat(skips, ignore_index=True)
    if counts.empty:
        body.append("<p class='lede ok'>No inputs were skipped.</p>")
    else:
        body.append(f"<h3 class='skip'>Counted skips ({int(counts['count'].sum()):,} inputs left out)</h3>")
        body.append(table(counts, ["audit", "note", "count"], value=False))
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
            f"Every rate carries n and a 95% interval (Wilson; bootstrap where noted). Source: {root}"
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
