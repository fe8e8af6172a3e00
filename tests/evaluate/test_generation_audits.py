"""Language bias, culture and limb audits on a rendered 'generation' whose truth we know.

Expected values are computed here from the fixture's truth columns (t_*), not copied from the
code: the audit must agree with what a person would count by hand.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from t2iscope.curate.world import spec
from t2iscope.evaluate import stats
from t2iscope.evaluate.audits import AUDITS
from t2iscope.evaluate.context import AuditContext, Inputs
from t2iscope.evaluate.labels import add_label, latest_labels, load_labels
from t2iscope.evaluate.vocab import requested


@pytest.fixture(scope="module")
def ctx(gen_dir: Path, world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AuditContext:
    out = tmp_path_factory.mktemp("audit")
    return AuditContext(Inputs(generation=(gen_dir,), world=world_dir), "world", {}, out)


@pytest.fixture(scope="module")
def truth(gen_dir: Path) -> pd.DataFrame:
    m = pd.read_parquet(gen_dir / "manifest.parquet")
    return m[~m["prompt_id"].isin(["missing", "corrupt"])].reset_index(drop=True)


def one(t: pd.DataFrame, **eq: object) -> pd.Series:
    sel = np.ones(len(t), bool)
    for k, v in eq.items():
        sel &= (t[k] == v).to_numpy()
    assert sel.sum() == 1, eq
    return t[sel].iloc[0]


def test_judge_agrees_with_truth_on_the_fixture(ctx: AuditContext, truth: pd.DataFrame) -> None:
    j = ctx.judged().set_index("prompt_id").loc[truth["prompt_id"]]
    assert (j["j_color"].to_numpy() == truth["t_color"].to_numpy()).all()
    assert (j["j_kind"].to_numpy() == truth["t_kind"].to_numpy()).all()
    limbed = truth["t_kind"].isin(spec.LIMBED_KINDS).to_numpy()
    assert (j["j_legs"].to_numpy()[limbed] == truth["t_legs"].to_numpy()[limbed]).all()
    assert (ctx.out / "judgments.parquet").is_file()


def test_language_bias(ctx: AuditContext, truth: pd.DataFrame) -> None:
    t = AUDITS.get("language_bias").fn(ctx)
    req = pd.DataFrame(
        [requested(p, lang) for p, lang in zip(truth["prompt"], truth["language"], strict=True)]
    )
    hit = (req["color"] == truth["t_color"]) & (req["kind"] == truth["t_kind"])
    for lang in ("en", "de", "zh"):
        k, n = int(hit[truth["language"] == lang].sum()), int((truth["language"] == lang).sum())
        row = one(t, metric="both_match", language=lang)
        assert (row["value"], row["n"]) == (k / n, n)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(stats.wilson(k, n))
    gap = one(t, metric="both_match_gap", language="zh")
    assert gap["value"] == pytest.approx(19 / 20 - 1.0)  # one zh prompt asked red and got blue
    skips = t[t["metric"] == "skipped"].set_index("note")["value"]
    assert skips["image missing"] == 1 and skips["image corrupt"] == 1
    assert one(t, metric="text_score")["n"] == 0  # the world judge has no text scores, and says so


def test_culture(ctx: AuditContext, truth: pd.DataFrame, world_dir: Path) -> None:
    t = AUDITS.get("culture").fn(ctx, n_boot=200)
    houses = truth[truth["t_kind"] == "house"]["t_culture"]
    for c in spec.CULTURES:
        row = one(t, metric="share", source="generated", kind="house", language="(all)", culture=c)
        assert (row["value"], row["n"]) == ((houses == c).sum() / len(houses), len(houses))
    imb = one(t, metric="imbalance", source="generated", kind="(all)", language="(all)")
    both = truth[truth["t_kind"].isin(spec.CULTURE_KINDS)]["t_culture"]
    assert imb["value"] == pytest.approx(stats.imbalance([(both == c).sum() for c in spec.CULTURES]))
    assert imb["ci_low"] <= imb["value"] <= imb["ci_high"]
    train = one(t, metric="share", source="training", kind="(all)", culture="western")
    assert 0.5 < train["value"] < 0.9  # the world's prior: western dominates the data
    assert one(t, metric="share", source="parity", kind="house", culture="western")["value"] == pytest.approx(
        1 / 3
    )


def test_limbs_and_human_agreement(ctx: AuditContext, truth: pd.DataFrame) -> None:
    limbed = truth[truth["t_kind"].isin(spec.LIMBED_KINDS)]
    wrong = limbed["t_legs"] != limbed["t_kind"].map(spec.KINDS)
    t = AUDITS.get("limbs").fn(ctx)
    for kind in ("dog", "spider", "person"):
        sel = limbed["t_kind"] == kind
        row = one(t, metric="failure_rate", by="subject", subject=kind)
        assert (row["value"], row["n"]) == (wrong[sel].mean(), sel.sum())
    seed3 = one(t, metric="failure_rate", by="seed", level="3", subject="(all)")
    assert seed3["value"] == wrong[limbed["seed"] == 3].mean() > 0
    assert one(t, metric="kappa", annotator="(all)")["n"] == 0  # no labels yet: said, not hidden

    # two reviewers label concurrently; one changes their mind
    paths = list(limbed["image_path"][:6])
    verdicts = ["wrong" if w else "ok" for w in wrong[:6]]

    def review(who: str) -> None:
        for p, v in zip(paths, verdicts, strict=False):
            add_label(ctx.out, p, v if who == "ann" else "ok", who)

    threads = [threading.Thread(target=review, args=(w,)) for w in ("ann", "bob")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    add_label(ctx.out, paths[0], "4", "bob")  # a leg count is a label too
    assert len(load_labels(ctx.out)) == 13 and len(latest_labels(ctx.out)) == 12
    t = AUDITS.get("limbs").fn(ctx)
    assert one(t, metric="kappa", annotator="ann")["value"] == pytest.approx(1.0)
    judge_v = ["wrong" if w else "ok" for w in wrong[:6]]
    bob = ["ok" if limbed["t_kind"].iloc[0] == "dog" else "wrong"] + ["ok"] * 5
    bob_row = one(t, metric="kappa", annotator="bob")
    assert bob_row["n"] == 6
    assert bob_row["value"] == pytest.approx(stats.cohen_kappa(judge_v, bob), nan_ok=True)
