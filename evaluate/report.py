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
functions of ``report_sections``. A renderer takes the tidy table only; the judges' validity of the
page being rendered is at hand through ``report_validity.current_validity``.

This module holds the first screen (headline cards, the validity panel) and the page assembly
(:func:`build_report`, :func:`render`); ``report_html`` formats tables and charts, and
``report_validity`` grades the judges.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from string import Template

import pandas as pd

from t2iscope import __version__, fileio
from t2iscope.errors import DataError
from t2iscope.evaluate.audits import Audit
from t2iscope.evaluate.folder import (
    REPORT,
    FinishedRun,
    read_record,
    read_run,
    table_name,
)
from t2iscope.evaluate.report_html import card, esc, fmt_value, interval, missing, n_text, num, table
from t2iscope.evaluate.report_validity import (
    ALL,
    CURRENT_VALIDITY,
    VALIDITY_AUDIT,
    Validity,
    figure_attributes,
    run_domain,
)
from t2iscope.evaluate.tables import SKIPPED
from t2iscope.evaluate.validity import USABLE_ACCURACY, VALID_ACCURACY
from t2iscope.locks import output_lock


def _headline_row(audit: Audit, df: pd.DataFrame) -> pd.Series | None:
    """The row a headline card shows (None when no row matches)."""
    if audit.headline is None:
        return None
    metric, where, pick, _ = audit.headline
    g = df[df["metric"] == metric].dropna(subset=["value"])
    for col, val in where.items():
        if col in g.columns:
            g = g[g[col] == val]
    if g.empty:
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
    label = audit.headline.label
    r = _headline_row(audit, df)
    if r is None:
        return ""
    parts = []
    if "attribute" in r and not missing(r["attribute"]):
        parts.append(str(r["attribute"]))
    who = next(
        (
            str(r[c])
            for c in ("language", "key", "subject", "dataset", "method")
            if c in r and not missing(r[c])
        ),
        "",
    )
    if who and who != ALL:
        parts.append(who)
    ci = interval(r["ci_low"], r["ci_high"])
    value = fmt_value(r["metric"], r["value"], 2)
    text = f"{value} <span class='ci'>{ci + ' ' if ci else ''}n={n_text(r['n'])}</span>"
    return card(f"{label} ({', '.join(parts)})" if parts else label, text)


def _marked_card(card_html: str, problem: str) -> str:
    return f"<div class='card-marked'>{card_html}<p><b>not a finding:</b> {problem}</p></div>"


def _judged_card(card_html: str, support: str) -> str:
    """A finding's card with the measured validity of the judge it rests on."""
    return f"<div class='card-judged'>{card_html}<p>{support}</p></div>"


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
        cls = {"valid": "ok", "usable": "warn", "NOT valid": "bad", "too few labels": "bad"}.get(
            v.status, "unk"
        )
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
    token = CURRENT_VALIDITY.set(validity)
    try:
        return _page(run, validity)
    finally:
        CURRENT_VALIDITY.reset(token)


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
                elif attrs.loc[row.name]:
                    c = _judged_card(c, validity.support(str(row["judge"]), attrs.loc[row.name]))
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
