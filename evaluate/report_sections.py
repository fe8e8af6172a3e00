"""The report's section renderers, one per shipped audit (each audit's registration names its own:
``section="t2iscope.evaluate.report_sections:section_x"``). A renderer takes the tidy table only;
the judges' validity of the page being rendered is at hand through :func:`current_validity`.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

import pandas as pd

from t2iscope.evaluate.report_html import (
    bars,
    details,
    esc,
    figure,
    findings,
    fmt,
    grouped_bars,
    interval,
    missing,
    n_text,
    num,
    pivot,
    plain,
    pyplot,
    said,
    with_columns,
)
from t2iscope.evaluate.report_validity import ALL, current_validity, figure_attributes, stated
from t2iscope.evaluate.tables import SKIPPED
from t2iscope.evaluate.validity import USABLE_ACCURACY, VALID_ACCURACY, grade
from t2iscope.intervals import wilson


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


def _skip_sentence(df: pd.DataFrame) -> str:
    skips = df[df["metric"] == SKIPPED]
    total = int(skips["value"].fillna(0).sum()) if len(skips) else 0
    if not total:
        return ""
    reasons = "; ".join(f"{esc(r.note)} ({int(r.value):,})" for r in skips.itertuples() if r.value)
    return f"{total:,} inputs were left out: {reasons}."


def section_validity(df: pd.DataFrame) -> str:
    """Each judge's agreement with human labels, per attribute, label source and image domain."""
    df = with_columns(df, "attribute", "source", "domain")
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
            f"{esc(r.attribute)} {said(pd.Series(r._asdict()))} ({grade(r.value, r.ci_low, r.ci_high)})"
            for r in g.itertuples()
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
                # the label file's name on the axis (its path is in the tables below)
                acc.assign(
                    label=acc["attribute"].astype(str)
                    + " · "
                    + acc["source"].astype(str).map(lambda v: PurePath(v).name)
                ),
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
    df = with_columns(df, "dataset", "level", optional=("rank", "key", "stage"))
    plt = pyplot()
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
            place=top["rank"].map(lambda r: "–" if missing(r) else int(r)),
        )
        out.append(pivot(labelled.head(200), ["place", "domain"], "dataset", corner="domain", limit=15))
    lift = df[(df["metric"] == "pass_rate") & (df["level"] == "domain")]
    if not lift.empty:
        out.append("<h3>Which domains each filter favours (pass rate among rows reaching the stage)</h3>")
        out.append(pivot(lift, ["dataset", "key"], "stage", limit=20))
    out.append(details(df))
    return "".join(out)


def section_language_mix(df: pd.DataFrame) -> str:
    df = with_columns(df, "run", "column", "key", optional=("stage", "group"))
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
    """What a gap compares with, from its note: ``en on the same 24 prompts`` (the audit pairs prompts)."""
    hit = re.match(r"vs (.+?)(?: \(n=\d+\))?$", str(note or ""))
    return hit.group(1) if hit else "the reference language"


def section_language_bias(df: pd.DataFrame) -> str:
    df = with_columns(df, "language")
    validity = current_validity()
    marked = validity.marks(df)
    attrs = figure_attributes(df)
    sentences = []
    match = df[df["metric"] == "all_match"].dropna(subset=["value"])
    match = match[match["n"] > 0]
    if not match.empty:
        low = match.loc[match["value"].idxmin()]
        high = match.loc[match["value"].idxmax()]
        asked = attrs[low.name]
        s = f"Adherence (all attributes: {esc(', '.join(asked))}) is " + (
            f"lowest in {esc(low['language'])}: {said(low)}"
            if high["value"] > low["value"]
            else f"the same in every language ({n_text(len(match))}): {said(low)} in {esc(low['language'])}"
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
        if high["value"] > low["value"]:  # a flat table has no highest
            s += f"; highest in {esc(high['language'])}: {said(high)}"
        sentences.append(stated(validity, str(low["judge"]), asked, s))
        gaps = df[df["metric"] == "all_match_gap"].dropna(subset=["ci_low", "ci_high"])
        if len(gaps):
            clear = gaps[(gaps["ci_high"] < 0) | (gaps["ci_low"] > 0)]
            if clear.empty:
                s = (
                    "Every language's gap interval includes 0 (n per language "
                    f"{n_text(gaps['n'].min())}–{n_text(gaps['n'].max())}): "
                    "no evidence of a language gap at this n"
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
    df = with_columns(df, "attribute", "subject", "language", "source", "label")
    validity = current_validity()
    marked = validity.marks(df)
    plt = pyplot()
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
    df = with_columns(df, "attribute", "by", "level", "subject")
    validity = current_validity()
    marked = validity.marks(df)
    rates = df[df["metric"] == "failure_rate"]
    drawn = df[(df["metric"] == "subject_drawn") & (df["n"] > 0)].dropna(subset=["value"])
    sentences = []
    if not drawn.empty:
        fewest = drawn.loc[drawn["value"].idxmin()]
        sentences.append(
            stated(
                validity,
                str(drawn["judge"].iloc[0]),
                ["subject"],
                f"The judge sees the declared subject in {said(_pooled(drawn))} images, fewest for "
                f"{esc(fewest['subject'])}: {said(fewest)}; limbs are counted only on those",
            )
        )
    attributes = list(dict.fromkeys(rates["attribute"].dropna().astype(str)))
    on = ["subject"] if not drawn.empty else []  # limb counts read only where the subject was seen
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
        sentences.append(stated(validity, judge, [attribute, *on], s))
        spread = None
        for factor, f in g[(g["by"] != "subject") & (g["subject"] == ALL)].groupby("by", sort=False):
            f = f.dropna(subset=["value"])
            f = f[f["n"] > 0]
            if len(f) < 2:
                continue
            lo, hi = f.loc[f["value"].idxmin()], f.loc[f["value"].idxmax()]
            if spread is None or hi["value"] - lo["value"] > spread[2]:
                spread = (factor, (lo, hi), hi["value"] - lo["value"])
        if spread is not None and spread[2] > 0:  # settings that all fail alike say nothing
            factor, (lo, hi), _ = spread
            s = (
                f"Across settings it varies most with {esc(factor)}: {said(lo)} at {fmt(lo['level'])} "
                f"to {said(hi)} at {fmt(hi['level'])}"
            )
            sentences.append(stated(validity, judge, [attribute, *on], s))
    if not attributes:
        sentences.append(_skip_sentence(df) or "No limb count was judged.")
    out = [findings(sentences[:4])]
    if not drawn.empty:
        out.append(bars(drawn, "subject", "Declared subject seen by the judge", "share of images", marked))
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
