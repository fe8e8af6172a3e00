"""The report section of the ``quality`` audit: findings, the quality-vs-adherence trade-off plot
across the CFG grid (like the Stable Diffusion v1 model card's FID-vs-CLIP-score curves), the
aesthetic distributions, pivot tables and the full tidy table, collapsed.
"""

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
from t2iscope.evaluate.tables import SKIPPED

ALL = "(all)"
REFERENCE = "(reference)"
SET_METRICS = ("clip_score", "fd", "kid", "cmmd", "precision", "recall", "density", "coverage", "vendi")
SETTINGS = ("cfg_scale", "steps", "sampler", "language")
# KID is the raw unbiased MMD^2 (not the x10^3 some papers print); the column says so
SHOWN = {"kid": "kid (raw MMD², unscaled)"}


def _shown(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(metric=df["metric"].replace(SHOWN))


def _with_interval(df: pd.DataFrame) -> pd.DataFrame:
    """Rows a finding may be built from: a value and a finite 95% interval."""
    return df.dropna(subset=["value", "ci_low", "ci_high"])


def _errors(g: pd.DataFrame, value: str = "value", low: str = "ci_low", high: str = "ci_high") -> list:
    lo = (g[value] - g[low]).clip(lower=0).fillna(0).to_numpy(float)
    hi = (g[high] - g[value]).clip(lower=0).fillna(0).to_numpy(float)
    return [lo, hi]


def tradeoff_points(df: pd.DataFrame, distance: str) -> pd.DataFrame:
    """The trade-off curves' points (the report's figure and the dashboard's Quality page): one row
    per ``run``, ``curve`` and ``cfg_scale`` (float, ascending within a curve) where both
    ``distance`` (``fd`` or ``cmmd``) and ``clip_score`` were measured, with ``clip_score``,
    ``clip_score_low``, ``clip_score_high``, ``distance``, ``distance_low``, ``distance_high`` and
    ``n`` (the images at that level). Empty when no run varies cfg_scale.
    """
    columns = ["run", "curve", "cfg_scale", "clip_score", "clip_score_low", "clip_score_high"]
    columns += ["distance", "distance_low", "distance_high", "n"]
    cfg = df[(df["by"] == "cfg_scale") & df["metric"].isin([distance, "clip_score"])].dropna(subset=["value"])
    curves = []
    for (run, curve), g in cfg.groupby(["run", "curve"], sort=False):
        wide = g.pivot_table(
            index="level", columns="metric", values=["value", "ci_low", "ci_high", "n"], aggfunc="first"
        )
        if distance not in wide["value"] or "clip_score" not in wide["value"]:
            continue
        wide = wide.loc[sorted(wide.index, key=lambda v: float(v))]
        part = {"run": run, "curve": curve, "cfg_scale": [float(v) for v in wide.index]}
        for name, metric in (("clip_score", "clip_score"), ("distance", distance)):
            part |= {name: wide["value"][metric].to_numpy(float)}
            part |= {f"{name}_low": wide["ci_low"][metric].to_numpy(float)}
            part |= {f"{name}_high": wide["ci_high"][metric].to_numpy(float)}
        curves.append(pd.DataFrame(part | {"n": wide["n"][distance].to_numpy()}))
    return pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=columns)


def tradeoff_figure(df: pd.DataFrame, distance: str) -> str:
    """``distance`` (fd or cmmd) against CLIPScore, one line per run and curve across cfg levels,
    both with their 95% intervals; '' when no run varies cfg_scale."""
    points = tradeoff_points(df, distance)
    if points.empty:
        return ""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for (run, curve), g in points.groupby(["run", "curve"], sort=False):
        ax.errorbar(
            g["clip_score"],
            g["distance"],
            xerr=_errors(g, "clip_score", "clip_score_low", "clip_score_high"),
            yerr=_errors(g, "distance", "distance_low", "distance_high"),
            marker="o",
            capsize=2,
            label=plain(f"{run} · {curve}" if curve != ALL else run),
        )
        for level, xv, yv in zip(g["cfg_scale"], g["clip_score"], g["distance"], strict=True):
            ax.annotate(f"cfg {level:g}", (xv, yv), fontsize=6, xytext=(3, 3), textcoords="offset points")
    encoder = df.loc[df["metric"] == distance, "encoder"].dropna()
    ax.set_xlabel(plain(f"CLIPScore ({df.loc[df['metric'] == 'clip_score', 'encoder'].dropna().iloc[0]})"))
    ax.set_ylabel(plain(f"{distance.upper()} ({encoder.iloc[0] if len(encoder) else ''}) - lower is closer"))
    ax.set_title(
        plain(f"{distance.upper()} vs CLIPScore across guidance scales (95% intervals)"), fontsize=10
    )
    ax.legend(fontsize=7)
    return figure(fig)


def _aesthetic_figure(df: pd.DataFrame) -> str:
    q = df[df["metric"] == "aesthetic_q"].dropna(subset=["value"])
    if q.empty:
        return ""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3))
    for run, g in q.groupby("run", sort=False):
        g = g.sort_values("q")
        ax.errorbar(
            g["q"],
            g["value"],
            yerr=_errors(g),
            marker=".",
            capsize=2,
            label=plain(run),
            linestyle="--" if run == REFERENCE else "-",
        )
    ax.set_xlabel("quantile")
    ax.set_ylabel(plain(f"aesthetic score ({q['encoder'].iloc[0]})"))
    ax.set_title("Aesthetic-score deciles: generations vs the reference set", fontsize=10)
    ax.legend(fontsize=7)
    return figure(fig)


def _sentences(df: pd.DataFrame) -> list[str]:
    out = []
    whole = _with_interval(df[(df["by"] == "all") & (df["run"] != REFERENCE)])
    cmmd = whole[whole["metric"] == "cmmd"]
    if len(cmmd):
        best = cmmd.loc[cmmd["value"].idxmin()]
        n_ref = int(best["n_reference"])
        s = f"Closest to the reference set (n={n_ref:,}) by CMMD: {esc(best['run'])}, {said(best)}"
        if len(cmmd) > 1:
            worst = cmmd.loc[cmmd["value"].idxmax()]
            s += f"; farthest {esc(worst['run'])}, {said(worst)}"
        out.append(s + ".")
    ref = _with_interval(df[(df["run"] == REFERENCE) & (df["metric"] == "clip_score")])
    scores = whole[whole["metric"] == "clip_score"]
    if len(scores):
        top = scores.loc[scores["value"].idxmax()]
        s = f"CLIPScore of generations with their prompts: up to {said(top)} ({esc(top['run'])})"
        if len(ref):
            s += f"; the reference's own captions score {said(ref.iloc[0])}"
        out.append(s + ".")
    cfg = _with_interval(df[(df["by"] == "cfg_scale") & (df["curve"] == ALL)])
    for run, g in cfg.groupby("run", sort=False):
        c = g[g["metric"] == "clip_score"]
        d = g[g["metric"] == "cmmd"]
        if len(c) > 1 and len(d) > 1:
            hi_c, lo_d = c.loc[c["value"].idxmax()], d.loc[d["value"].idxmin()]
            out.append(
                f"{esc(run)}: CLIPScore peaks at cfg {fmt(hi_c['level'])} ({said(hi_c)}), CMMD is lowest at "
                f"cfg {fmt(lo_d['level'])} ({said(lo_d)})"
                + (
                    ": adherence and closeness to the data pull the guidance scale apart."
                    if hi_c["level"] != lo_d["level"]
                    else "."
                )
            )
    gap = whole[whole["metric"] == "aesthetic_gap"]
    if len(gap):
        g = gap.loc[gap["value"].abs().idxmax()]
        if g["ci_low"] <= 0 <= g["ci_high"]:  # the interval covers 0: no measurable difference
            where = "no difference from the data's mean at 95%"
        else:
            where = "below the data's mean" if g["value"] < 0 else "above the data's mean"
        out.append(f"Aesthetic score of {esc(g['run'])} vs the reference: {said(g)} ({where}).")
    return out[:5]


def section_quality(df: pd.DataFrame) -> str:
    """The quality audit's section (see the module docstring)."""
    df = with_columns(
        df, "run", "by", "level", "curve", "encoder", "n_reference", optional=("q", "rank", "reference")
    )
    out = [findings(_sentences(df))]
    out.append(
        "<p class='lede'>n is the generated images a row measures; each row compares them with the "
        "reference set (n_reference images; recall and coverage are shares of those). FD, KID and "
        "PRDC move with n: compare only rows of equal n. KID is the raw unbiased MMD² (unscaled; "
        "negative near 0 is sampling noise). Intervals of FD and CMMD are clipped at 0.</p>"
    )
    out.append(tradeoff_figure(df, "fd"))
    out.append(tradeoff_figure(df, "cmmd"))
    out.append(_aesthetic_figure(df))
    whole = df[(df["by"] == "all") & df["metric"].isin([*SET_METRICS, "aesthetic", "aesthetic_gap"])]
    if not whole.empty:
        out.append("<h3>Each run against the reference set (metrics as columns)</h3>")
        out.append(pivot(_shown(whole), ["run"], "metric"))
    for setting in SETTINGS:
        g = df[(df["by"] == setting) & (df["curve"] == ALL) & df["metric"].isin(SET_METRICS)]
        if not g.empty:
            out.append(f"<h3>By {esc(setting)} (metrics as columns)</h3>")
            out.append(pivot(_shown(g), ["run", "level"], "metric", corner=setting))
    cells = df[
        (df["by"] == "cfg_scale") & (df["curve"] != ALL) & df["metric"].isin(["clip_score", "fd", "cmmd"])
    ]
    if not cells.empty:
        out.append("<h3>CFG x steps grid (metrics as columns)</h3>")
        out.append(
            pivot(
                _shown(cells).assign(cell=cells["curve"].astype(str)),
                ["run", "cell", "level"],
                "metric",
                corner="cfg_scale",
            )
        )
    prompts = df[(df["by"] == "prompt") & df["metric"].isin(["clip_score", "vendi"])]
    if not prompts.empty:
        if (prompts["metric"] == "vendi").any():
            out.append("<h3>Per prompt: CLIPScore and Vendi score of its images across seeds</h3>")
        else:
            out.append(
                "<h3>Per prompt: CLIPScore</h3><p class='lede'>No Vendi score: it needs &gt;= 2 images "
                "per prompt (seeds) and every prompt here has one.</p>"
            )
        if (prompts["n"] < 2).any():
            out.append("<p class='lede'>Cells with n=1 have no interval (a bootstrap needs &gt;= 2).</p>")
        out.append(pivot(prompts, ["run", "level"], "metric", corner="prompt · language", limit=30))
    missed = df[df["value"].isna() & (df["note"].fillna("") != "")]
    if len(missed):
        notes = missed.groupby("note", sort=False)["metric"].unique()
        out.append(
            findings(
                [
                    f"Not computed ({esc(', '.join(sorted(metrics)))}): {esc(note)}."
                    for note, metrics in list(notes.items())[:10]  # the full table has every row
                ]
            )
        )
    skips = df[df["metric"] == SKIPPED]
    if len(skips):
        out.append(
            findings(
                [
                    f"{int(skips['value'].sum()):,} images were left out: "
                    + "; ".join(esc(n) for n in skips["note"])
                    + "."
                ]
            )
        )
    out.append(
        details(
            df[df["metric"] != "nearest_reference"],
            "(nearest reference images: the dashboard's Quality page)",
        )
    )
    return "".join(out)
