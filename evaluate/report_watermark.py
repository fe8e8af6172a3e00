"""The watermark audit's report section: TPR at 0.1% FPR per attack x method, detection against
quality loss (WAVES' plot), quality and thresholds, throughput, and the invisible-watermark README."""

from __future__ import annotations

import pandas as pd

from t2iscope.evaluate.report_html import (
    details,
    esc,
    figure,
    findings,
    fmt,
    pivot,
    plain,
    pyplot,
    said,
    with_columns,
)

HEADLINE = "tpr_at_0.1pct_fpr"
SURVIVES_AT = 0.9  # "survives" an attack setting: TPR@0.1%FPR at or above this (the README table's Pass)
# An attack "looks marked by itself" when its attacked unmarked images reach this AUC against the null
# (the attacked_null rows): 0.8, where Hosmer & Lemeshow (Applied Logistic Regression) call it "excellent".
LOOKS_MARKED_AT = 0.8


def _label(df: pd.DataFrame) -> pd.Series:
    return df["attack"].astype(str) + " " + df["strength"].map(lambda s: fmt(s))


def looks_marked(df: pd.DataFrame) -> pd.DataFrame:
    """The ``attacked_null_auc`` rows (attacked *unmarked* images vs the null) at or above
    ``LOOKS_MARKED_AT``: attacks that by themselves read as a mark (not the unattacked baseline)."""
    return df[
        (df["metric"] == "attacked_null_auc") & (df["value"] >= LOOKS_MARKED_AT) & (df["attack"] != "none")
    ]


def survival(df: pd.DataFrame) -> pd.DataFrame:
    """Per source and method: attack settings (not ``none``) whose TPR@0.1%FPR is >= ``SURVIVES_AT``,
    leaving out settings that look marked by themselves (``flagged``), and the weakest one."""
    det = df[(df["metric"] == HEADLINE) & (df["attack"] != "none")].dropna(subset=["value"])
    keys = ["source", "method", "attack", "strength"]
    fake = {tuple(r) for r in looks_marked(df)[keys].itertuples(index=False)}
    out = []
    for (source, method), g in det.groupby(["source", "method"], sort=False):
        flagged = g[[tuple(r) in fake for r in g[keys].itertuples(index=False)]]
        g = g.drop(flagged.index)
        if g.empty:
            continue
        worst = g.loc[g["value"].idxmin()]
        out.append(
            {
                "source": source,
                "method": method,
                "survived": int((g["value"] >= SURVIVES_AT).sum()),
                "attacks": len(g),
                "flagged": len(flagged),
                "worst": worst,
            }
        )
    return pd.DataFrame(out)


def throughput(df: pd.DataFrame) -> tuple[int, float]:
    """(image x attack pairs, seconds) summed over the ``seconds`` rows: attack plus read-back time."""
    sec = df[df["metric"] == "seconds"]
    return int(sec["n"].sum()), float(sec["value"].sum())


def unresolvable_nulls(df: pd.DataFrame) -> dict[str, int]:
    """Method -> null size (unmarked images) of its ``fpr_at_0.1pct_fpr`` rows where that null is too
    small to resolve a 0.1% FPR (< 1000; the largest such null when sources differ)."""
    from t2iscope.evaluate.audits.watermark import WAVES_FPRS

    fpr = df[df["metric"] == HEADLINE.replace("tpr_", "fpr_")]
    small = fpr[fpr["n"] * WAVES_FPRS[HEADLINE] < 1]
    return {str(m): int(g["n"].max()) for m, g in small.groupby("method", sort=False)}


def _detection_vs_quality(df: pd.DataFrame) -> str:
    """WAVES' plot: one point per attack x strength, detection (TPR@0.1%FPR) against the attacked
    image's PSNR to the marked one, one colour per method, one panel per source."""
    det = df[df["metric"] == HEADLINE][["source", "method", "attack", "strength", "value"]]
    q = df[df["metric"] == "attack_psnr"][["source", "method", "attack", "strength", "value"]]
    both = det.merge(q, on=["source", "method", "attack", "strength"], suffixes=("", "_psnr"))
    both = both[both["attack"] != "none"].dropna(subset=["value", "value_psnr"])
    if both.empty:
        return ""
    plt = pyplot()
    sources = list(dict.fromkeys(both["source"]))
    fig, axes = plt.subplots(1, len(sources), figsize=(5 * len(sources), 3.6), squeeze=False)
    for ax, source in zip(axes[0], sources, strict=True):
        for method, g in both[both["source"] == source].groupby("method", sort=False):
            ax.scatter(g["value_psnr"].clip(upper=60), g["value"], s=14, alpha=0.75, label=plain(str(method)))
        ax.set_xlabel("attacked vs marked PSNR, dB (right = less quality loss)", fontsize=8)
        ax.set_ylabel("TPR at 0.1% FPR", fontsize=8)
        ax.set_ylim(-0.05, 1.05)
        ax.set_title(plain(f"Detection vs quality loss: {source}"), fontsize=10)
        ax.legend(fontsize=7)
    return figure(fig)


def section_watermark(df: pd.DataFrame) -> str:
    from t2iscope.evaluate.audits.watermark import readme_comparison

    df = with_columns(df, "source", "method", optional=("attack", "strength"))
    out = []
    sentences = []
    unresolved = unresolvable_nulls(df)
    for r in survival(df).itertuples():
        w = r.worst
        at = (
            f"at the strictest threshold of a null of {unresolved[r.method]} (0.1% FPR not resolvable)"
            if r.method in unresolved
            else "at 0.1% FPR"
        )
        left_out = f", {r.flagged} more left out (the attack alone looks marked)" if r.flagged else ""
        sentences.append(
            f"{esc(r.method)} on {esc(r.source)}: TPR &ge; {SURVIVES_AT} {at} in {r.survived} of "
            f"{r.attacks} attack settings{left_out}; weakest against {esc(w['attack'])} "
            f"{fmt(w['strength'])} ({said(w)})."
        )
    if unresolved:
        per_method = ", ".join(f"{esc(m)} (null of {n})" for m, n in unresolved.items())
        sentences.insert(
            0,
            f"TPR at 0.1% FPR is not resolvable for {per_method}: fewer than 1,000 unmarked images, "
            "so those cells are TPR at an FPR only known to be below 1/n (the fpr_at_0.1pct_fpr rows); "
            "null_images (post-hoc methods) or treering_null_images (Tree-Ring) of 1000 give the true "
            "figure.",
        )
    fake = looks_marked(df)
    if not fake.empty:
        cells = "; ".join(
            f"{esc(r.method)} {esc(r.attack)} {fmt(r.strength)} ({r.value:.2f})" for r in fake.itertuples()
        )
        sentences.insert(
            0,
            f"Attacks that by themselves look marked (attacked unmarked images vs the null, AUC &ge; "
            f"{LOOKS_MARKED_AT}): {cells}. Their detection cells are not evidence of a surviving mark.",
        )
    pairs, seconds = throughput(df)
    if pairs:
        sentences.append(
            f"Throughput: {pairs:,} image x attack pairs in {seconds:,.0f} s ({pairs / seconds:.1f}/s)."
        )
    out.append(findings(sentences[:8]))
    head = df[df["metric"] == HEADLINE].copy()
    if not head.empty:
        head["attack_s"] = _label(head)
        plt = pyplot()
        for source, g in head.groupby("source", sort=False):
            grid = g.pivot_table(index="method", columns="attack_s", values="value", sort=False)
            fig, ax = plt.subplots(figsize=(min(16, 1 + 0.3 * grid.shape[1]), 0.6 + 0.45 * grid.shape[0]))
            ax.imshow(grid.to_numpy(), vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
            ax.set_xticks(range(grid.shape[1]), grid.columns.map(plain), rotation=90, fontsize=7)
            ax.set_yticks(range(grid.shape[0]), grid.index.map(plain), fontsize=8)
            ax.set_title(plain(f"TPR at 0.1% FPR per attack: {source}"), fontsize=10)
            out.append(figure(fig))
        out.append(_detection_vs_quality(df))
        out.append("<h3>TPR at 0.1% FPR per attack (methods as columns)</h3>")
        head["at"] = head["source"].astype(str)
        out.append(pivot(head, ["at", "attack_s"], "method", corner="attack", limit=80))
    per_method = df[df["metric"].isin(["psnr", "ssim", "threshold", "fpr"])]
    if not per_method.empty:
        out.append(
            "<h3>Image quality of the marked image, threshold and false-positive rate on the null</h3>"
        )
        out.append(pivot(per_method, ["source", "method"], "metric"))
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
