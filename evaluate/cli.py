"""`t2iscope evaluate ...` commands: thin wrappers over run_audits and build_report, and `list`."""

from __future__ import annotations

from pathlib import Path

import click

from t2iscope.listing import Table, add_list_command, parameters, summary


@click.group(
    epilog=(
        "Example (after `make demo`, which makes the runs the demo config names):\n\n\b\n"
        "  t2iscope evaluate list audits\n"
        "  t2iscope evaluate run evaluate/audits/demo.yaml --out runs/audit\n"
        "  t2iscope evaluate report runs/audit"
    )
)
def evaluate() -> None:
    """Run audits over curated data and generations; write reports."""


@evaluate.command(
    epilog=(
        "Example (the shipped demo config, after `make demo` made its runs; then the report):\n\n"
        "\b\n"
        "  t2iscope evaluate run evaluate/audits/demo.yaml --out runs/audit\n"
        "  t2iscope evaluate report runs/audit\n\n"
        "Judge real generations with a real CLIP instead of the embedded tiny one:\n\n"
        "\b\n"
        "  t2iscope evaluate run AUDIT.yaml --out runs/audit --judge clip \\\n"
        "      --clip-config ViT-L-14 --clip-checkpoint ~/weights/vit-l-14.safetensors"
    )
)
@click.argument("config", metavar="AUDIT.yaml", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Audit folder to write.")
@click.option("--judge", default=None, help="Override the config's judge (world or clip).")
@click.option("--clip-config", default=None, help="open_clip model name or config .json (clip judge).")
@click.option("--clip-checkpoint", default=None, help="Local weights file for --clip-config (clip judge).")
@click.option("--overwrite", is_flag=True, help="Replace a different audit run already in --out.")
def run(
    config: str,
    out: str,
    judge: str | None,
    clip_config: str | None,
    clip_checkpoint: str | None,
    overwrite: bool,
) -> None:
    """Run the audits AUDIT.yaml names; write one tidy <audit>.parquet each into OUT.

    Paths inside AUDIT.yaml are relative to the current directory. OUT then holds exactly this
    run: a rerun of the same config replaces it, a different one needs --overwrite; either way the
    previous run stays until every audit of the new one has succeeded.
    """
    from t2iscope.evaluate.config import load_config
    from t2iscope.evaluate.runner import run_audits

    cfg = load_config(config)
    options = {k: v for k, v in (("clip_config", clip_config), ("clip_checkpoint", clip_checkpoint)) if v}
    if judge or options:
        cfg = cfg.with_judge(judge, options)
    written = run_audits(cfg, out, overwrite=overwrite)
    for name, path in written.items():
        click.echo(f"{name}: {path}")


@evaluate.command(
    epilog=(
        "Example (360 generations of the embedded model labelled by hand, shipped with the tests):"
        "\n\n\b\n"
        "  t2iscope evaluate validity tests/evaluate/fixtures/human_labels/labels.csv --judge clip\n"
        "  t2iscope evaluate validity labels.csv --judge clip --clip-config ViT-L-14 \\\n"
        "      --clip-checkpoint ~/weights/vit-l-14.safetensors --out validity.parquet"
    )
)
@click.argument("labels", metavar="LABELS", type=click.Path(dir_okay=False))
@click.option("--judge", default="clip", show_default=True, help="Judge to validate (clip or world).")
@click.option("--clip-config", default=None, help="open_clip model name or config .json (clip judge).")
@click.option("--clip-checkpoint", default=None, help="Local weights file for --clip-config (clip judge).")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Also write the tidy table here.")
def validity(
    labels: str, judge: str, clip_config: str | None, clip_checkpoint: str | None, out: str | None
) -> None:
    """How far a judge agrees with human labels of the same images (accuracy, Wilson CI, kappa).

    LABELS is a CSV or parquet file: an `image` column (paths relative to the file), an optional
    `model_id` (the model that drew them), and any attribute as a column (subject, color, legs,
    fingers, count, culture, gender, watermark, present), written by people who looked at each
    image ('unclear' or empty: could not tell). The judge is asked with the words the labels use.
    A judge is trusted on an attribute at accuracy >= 0.9 on the same image domain; in an audit run,
    the `validity` audit does the same and the report marks figures of judges below 0.8.
    """
    from t2iscope.errors import ConfigError, DataError
    from t2iscope.evaluate.judges import make_judge
    from t2iscope.evaluate.validity import (
        VALID_ACCURACY,
        grade,
        judge_validity,
        read_labels,
    )
    from t2iscope.fileio import write_parquet
    from t2iscope.generate.attributes import ATTRIBUTES, UNCLEAR, spelled

    if out and Path(out).suffix != ".parquet":
        raise ConfigError(f"--out {out}: the table is parquet; name a .parquet file")
    options = {k: v for k, v in (("clip_config", clip_config), ("clip_checkpoint", clip_checkpoint)) if v}
    written = read_labels(labels)
    table = judge_validity(make_judge(judge, options, where="--judge"), written, labels)
    if not (table["n"] > 0).any():
        raise DataError(
            f"{labels}: no label to compare with judge {judge!r} (every cell blank or unclear, "
            "or only attributes the judge does not answer)"
        )
    if out:
        write_parquet(out, table)
    columns = [a for a in ATTRIBUTES if a in written.columns]
    blank = [a for a in columns if written[a].map(spelled).isin([None, UNCLEAR]).all()]
    unanswered = [a for a in columns if a not in set(table["attribute"]) and a not in blank]
    if blank:
        click.echo(f"no label in {', '.join(blank)} (every cell blank or unclear): not measured")
    if unanswered:
        click.echo(f"judge {judge} does not answer {', '.join(unanswered)}: not measured")
    for row in table[table["metric"] == "accuracy"].itertuples():
        kappa = table[(table["attribute"] == row.attribute) & (table["metric"] == "kappa")]["value"].iloc[0]
        verdict = grade(row.value, row.ci_low, row.ci_high)
        interval = f"[{row.ci_low:.3f}, {row.ci_high:.3f}]"
        click.echo(
            f"{row.judge:<6} {row.attribute:<8} accuracy {row.value:.3f} {interval}"
            f"  kappa {kappa:.3f}  n={row.n}  {verdict} (bar {VALID_ACCURACY})"
        )


@evaluate.command(
    epilog="Example:\n\n\b\n  t2iscope evaluate report runs/audit\n  xdg-open runs/audit/report.html"
)
@click.argument("audit_dir", metavar="AUDIT_DIR", type=click.Path(file_okay=False))
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Default: AUDIT_DIR/report.html.")
def report(audit_dir: str, out: str | None) -> None:
    """Write one self-contained HTML report (plots inline, no network) for an audit folder.

    It shows exactly the audits its run.json lists.
    """
    from t2iscope.evaluate.report import build_report

    click.echo(str(build_report(audit_dir, out)))


def audits_table() -> Table:
    """Every audit in report order: its report title, whether it judges images, its parameters."""
    from t2iscope.evaluate.audits import AUDITS

    rows = [
        (a.name, a.title, "yes" if a.judged else "no", parameters(a.fn, data_args=1))
        for a in AUDITS.in_report_order()
    ]
    return ("audit", "title", "judged", "parameters"), rows


def judges_table() -> Table:
    """Every judge: its options (AUDIT.yaml's judge_options) and what it does."""
    from t2iscope.evaluate.judges import JUDGES, load_all

    load_all()
    rows = [(j.name, parameters(j.make), summary(j.make)) for j in map(JUDGES.get, JUDGES)]
    return ("judge", "options", "summary"), rows


def attacks_table() -> Table:
    """Every image attack of the watermark audit: what its strength means, the default grid's."""
    from t2iscope.evaluate.attacks import ATTACKS, DEFAULT_GRID

    rows = []
    for name in ATTACKS:
        attack = ATTACKS.get(name)
        strength = parameters(attack, data_args=1)
        grid = ", ".join(f"{s:g}" for s in DEFAULT_GRID.get(name, ()))
        rows.append((name, strength, grid, summary(attack)))
    return ("attack", "strength", "default grid", "summary"), rows


add_list_command(
    evaluate, "evaluate", {"audits": audits_table, "judges": judges_table, "attacks": attacks_table}
)
