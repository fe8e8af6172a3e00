"""Language bias, culture and limb audits on a rendered 'generation' whose truth we know.

Expected values are computed here from the fixture's truth columns (t_*), not copied from the
code: the audit must agree with what a person would count by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from t2iscope.curate.world import spec
from t2iscope.evaluate import stats
from t2iscope.evaluate.audits import AUDITS
from t2iscope.evaluate.context import AuditContext, Inputs


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
    j = ctx.judged().set_index("image_path").loc[truth["image_path"]]
    assert (j["j_color"].to_numpy() == truth["t_color"].to_numpy()).all()
    assert (j["j_subject"].to_numpy() == truth["t_kind"].to_numpy()).all()
    limbed = truth["t_kind"].isin(spec.LIMBED_KINDS).to_numpy()
    assert (j["j_legs"].to_numpy()[limbed] == truth["t_legs"].to_numpy()[limbed]).all()
    assert (ctx.out / "judgments.parquet").is_file()


def test_language_bias(ctx: AuditContext, truth: pd.DataFrame) -> None:
    t = AUDITS.get("language_bias").fn(ctx)
    req = pd.DataFrame([json.loads(e) for e in truth["expect"]])
    # limb counts are the limbs audit's: the fixture's extra legs do not count against adherence
    hit = (req["color"] == truth["t_color"]) & (req["subject"] == truth["t_kind"])
    for lang in ("en", "de", "zh"):
        k, n = int(hit[truth["language"] == lang].sum()), int((truth["language"] == lang).sum())
        row = one(t, metric="all_match", language=lang)
        assert (row["value"], row["n"]) == (k / n, n)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(stats.wilson(k, n))
    en = truth["language"] == "en"
    color = one(t, metric="color_match", language="en")
    assert color["value"] == (req["color"] == truth["t_color"])[en].mean()
    assert one(t, metric="subject_other", language="de")["value"] == 0  # the world judge never says other
    gap = one(t, metric="all_match_gap", language="zh")
    assert gap["value"] == pytest.approx(19 / 20 - 1.0)  # one zh prompt asked red and got blue
    assert gap["note"] == "vs en on the same 20 prompts (n=20)"
    assert not (t["metric"] == "legs_match").any()
    skips = t[t["metric"] == "skipped"].set_index("note")["value"]
    assert skips["image missing"] == 1 and skips["image corrupt"] == 1
    assert one(t, metric="text_score")["n"] == 0  # the world judge has no text scores, and says so


def test_culture(ctx: AuditContext, truth: pd.DataFrame, world_dir: Path) -> None:
    t = AUDITS.get("culture").fn(ctx, n_boot=200)
    houses = truth[truth["t_kind"] == "house"]["t_culture"]
    for c in spec.CULTURES:
        row = one(t, metric="share", source="generated", subject="house", language="(all)", label=c)
        assert (row["value"], row["n"]) == ((houses == c).sum() / len(houses), len(houses))
    imb = one(t, metric="imbalance", source="generated", subject="(all)", language="(all)")
    both = truth[truth["t_kind"].isin(spec.CULTURE_KINDS)]["t_culture"]
    assert imb["value"] == pytest.approx(stats.imbalance([(both == c).sum() for c in spec.CULTURES]))
    assert imb["ci_low"] <= imb["value"] <= imb["ci_high"]
    assert set(t["attribute"].dropna()) == {"culture"}  # gender is in no vocabulary here
    train = one(t, metric="share", source="training", subject="(all)", label="western")
    assert 0.5 < train["value"] < 0.9  # the world's prior: western dominates the data
    parity = one(t, metric="share", source="parity", subject="house", label="western")
    assert parity["value"] == pytest.approx(1 / 3)


def test_limbs(ctx: AuditContext, truth: pd.DataFrame) -> None:
    limbed = truth[truth["t_kind"].isin(spec.LIMBED_KINDS)]
    wrong = limbed["t_legs"] != limbed["t_kind"].map(spec.KINDS)
    t = AUDITS.get("limbs").fn(ctx)
    for kind in ("dog", "spider", "person"):
        sel = limbed["t_kind"] == kind
        row = one(t, metric="failure_rate", by="subject", subject=kind, attribute="legs")
        assert (row["value"], row["n"]) == (wrong[sel].mean(), sel.sum())
    seed3 = one(t, metric="failure_rate", by="seed", level="3", subject="(all)")
    assert seed3["value"] == wrong[limbed["seed"] == 3].mean() > 0


def test_validity_against_labels_stored_in_the_audit_folder(ctx: AuditContext, truth: pd.DataFrame) -> None:
    """Labels people stored from the dashboard: matched to this run's images, per attribute; a verdict
    (ok/wrong) for legs compares with the judge's verdict; a label for another image is a counted skip."""
    from t2iscope.evaluate.labels import add_label

    limbed = truth[truth["t_kind"].isin(spec.LIMBED_KINDS)].reset_index(drop=True)
    for i, r in limbed.head(6).iterrows():
        add_label(ctx.out, r["image_path"], str(r["t_legs"]), "ann", attribute="legs")
        add_label(ctx.out, r["image_path"], "green" if i == 0 else r["t_color"], "ann", attribute="color")
    add_label(ctx.out, limbed["image_path"][6], "ok", "bob", attribute="legs")  # a verdict
    add_label(ctx.out, "images/elsewhere.png", "2", "ann", attribute="legs")
    t = AUDITS.get("validity").fn(ctx)
    legs = one(t, metric="accuracy", attribute="legs")
    verdict = "ok" if limbed["t_legs"][6] == spec.KINDS[limbed["t_kind"][6]] else "wrong"
    assert legs["n"] == 7 and legs["value"] == (1.0 if verdict == "ok" else 6 / 7)
    color = one(t, metric="accuracy", attribute="color")
    first_is_green = limbed["t_color"][0] == "green"
    assert (color["n"], color["value"]) == (6, 1.0 if first_is_green else 5 / 6)
    assert set(t["domain"].dropna()) == {"render"} and set(t["source"].dropna()) == {"labels.sqlite"}
    assert one(t, metric="skipped")["value"] == 1


def test_a_label_file_of_the_runs_own_images(ctx: AuditContext, truth: pd.DataFrame, tmp_path: Path) -> None:
    """A label file naming this run's images by image_path is scored on the run's judgments; one
    naming an image the run does not have is a one-line error before any audit runs."""
    from t2iscope.errors import ConfigError

    rows = truth.head(5)
    good = tmp_path / "mine.csv"
    colors = ["purple", *rows["t_color"][1:]]  # a person saw purple on the first: the judge did not
    pd.DataFrame({"image_path": rows["image_path"], "color": colors}).to_csv(good, index=False)
    t = AUDITS.get("validity").fn(ctx, labels=(str(good),))
    color = one(t, metric="accuracy", source=str(good), attribute="color")  # the path as given
    purple_first = rows["t_color"].iloc[0] == "purple"
    assert (color["n"], color["value"]) == (5, 1.0 if purple_first else 4 / 5)
    assert color["domain"] == "render"
    bad = tmp_path / "other.csv"
    pd.DataFrame({"image_path": ["images/00000.png", "images/not-here.png"], "color": ["red", "red"]}).to_csv(
        bad, index=False
    )
    with pytest.raises(ConfigError, match=r"^a\.yaml: audits\.validity\.labels\[0\]: .*other\.csv: row 2: "):
        AUDITS.get("validity").check_inputs(ctx, {"labels": (str(bad),)}, "a.yaml", ("audits", "validity"))


def test_a_run_label_naming_an_image_of_two_generation_folders_is_refused(
    gen_dir: Path, world_dir: Path, truth: pd.DataFrame, tmp_path: Path
) -> None:
    """Two folders of the same suite hold the same relative image paths: a label by image_path
    cannot say whose image it judged, so it is refused instead of attached to one of them."""
    import shutil

    from t2iscope.errors import ConfigError

    twin = Path(shutil.copytree(gen_dir, tmp_path / "twin"))
    both = AuditContext(Inputs(generation=(gen_dir, twin), world=world_dir), "world", {}, tmp_path / "out")
    file = tmp_path / "mine.csv"
    pd.DataFrame({"image_path": truth["image_path"].head(1), "color": ["red"]}).to_csv(file, index=False)
    with pytest.raises(ConfigError, match=r"row 1: image_path .* is in 2 generation folders"):
        AUDITS.get("validity").check_inputs(both, {"labels": (str(file),)}, "a.yaml", ("audits", "validity"))


@pytest.mark.parametrize(
    ("twice", "message"), [(True, "listed twice"), (False, "a folder, not a label file")]
)
def test_label_files_listed_twice_or_folders_are_refused(tmp_path: Path, twice: bool, message: str) -> None:
    from t2iscope.errors import ConfigError
    from t2iscope.evaluate.config import parse_config

    file = tmp_path / "labels.csv"
    file.write_text("image,subject\n")
    labels = [str(file), str(tmp_path / "." / "labels.csv")] if twice else [str(tmp_path)]
    with pytest.raises(
        ConfigError, match=rf"^A\.yaml: audits\.validity\.labels\[{int(twice)}\]: .*{message}$"
    ):
        parse_config({"audits": {"validity": {"labels": labels}}}, "A.yaml")
