"""WAVES-level robustness: its TPR@FPR and AUC, the new attack families, and the audit end to end."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from t2iscope.evaluate.attacks import ATTACKS, COMBOS
from t2iscope.evaluate.audits.watermark import (
    ClipDistance,
    TreeRingSet,
    auc,
    empirical_threshold,
    generated_set,
    post_hoc_score,
    robustness_rows,
    tpr_at_fpr,
    treering_score,
)
from t2iscope.evaluate.images import skimage_photos
from t2iscope.evaluate.report_watermark import section_watermark
from t2iscope.evaluate.tables import tidy


def waves_low(null: np.ndarray, marked: np.ndarray, fpr_target: float) -> float:
    """WAVES dev/eval.py ``detection_perforamance``'s ``tpr[np.where(fpr < target)[0][-1]]``, with
    sklearn's ROC (thresholds at every distinct score, positive = score >= threshold) written out."""
    thresholds = np.unique(np.concatenate([null, marked, [np.inf]]))[::-1]
    fpr = np.array([(null >= t).mean() for t in thresholds])
    tpr = np.array([(marked >= t).mean() for t in thresholds])
    return float(tpr[np.where(fpr < fpr_target)[0][-1]])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tpr_at_fpr_and_auc_match_waves(seed: int) -> None:
    rng = np.random.default_rng(seed)
    null = rng.normal(0, 1, 1000).round(1)  # rounded: ties, as bit accuracies have
    marked = rng.normal(2.5, 1, 200).round(1)
    for target in (0.01, 0.001):
        k, fp, _ = tpr_at_fpr(marked, null, target)
        assert k / len(marked) == waves_low(null, marked, target)
        assert fp / len(null) < target
    pairs = (marked[:, None] > null[None, :]).mean() + 0.5 * (marked[:, None] == null[None, :]).mean()
    assert auc(marked, null) == pytest.approx(pairs)
    t = empirical_threshold(null, 0.01)
    assert (null >= t).mean() <= 0.01 < (null >= np.max(null[null < t])).mean()


def test_combined_and_regeneration_attacks() -> None:
    img = skimage_photos(64, 1)[0][1]
    for name in COMBOS:
        a, b = ATTACKS.get(name)(img, 0.5), ATTACKS.get(name)(img, 0.5)
        assert a.size == img.size and np.array_equal(np.asarray(a), np.asarray(b))  # seeded
        assert not np.array_equal(np.asarray(a), np.asarray(img))
    vae = ATTACKS.get("regen_vae")(img, 1)
    assert vae.size == img.size and not np.array_equal(np.asarray(vae), np.asarray(img))
    base = np.asarray(img, dtype=float)
    mild, strong = (np.asarray(ATTACKS.get("regen_diffusion")(img, s), dtype=float) for s in (0.1, 0.4))
    assert np.abs(strong - base).mean() > np.abs(mild - base).mean() > 0


def test_adversarial_embedding_stays_in_budget_and_beats_random_noise() -> None:
    img = skimage_photos(64, 1)[0][1]
    adv = ATTACKS.get("adv_embed")(img, 8)
    delta = np.asarray(adv, dtype=int) - np.asarray(img, dtype=int)
    assert np.abs(delta).max() <= 8 + 1  # eps = 8/255, one level of rounding
    rng = np.random.default_rng(0)
    noisy = np.clip(np.asarray(img, dtype=int) + rng.choice([-8, 8], size=delta.shape), 0, 255)
    clip = ClipDistance()
    emb = clip.embed([img])
    far = clip(emb, [adv])[0]
    near = clip(emb, [Image.fromarray(noisy.astype(np.uint8))])[0]
    assert far > 2 * near


def test_audit_rows_and_report_on_generated_images() -> None:
    from t2iscope.evaluate.attacks import sd_model
    from t2iscope.generate.treering import TreeRingKey

    sd, key = sd_model(), TreeRingKey()
    images = generated_set(sd, 2, 256, steps=5)  # few steps: the rows' shape is under test here
    twins = generated_set(sd, 2, 256, key, steps=5)
    more = generated_set(sd, 1, 256, steps=5, first_seed=2)  # Tree-Ring's null: generations only
    assert more[0][0].startswith("seed 2:")
    null = [im for _, im in skimage_photos(256, 3)]
    grid = {"none": (0.0,), "jpeg": (50.0,), "combo_photometric": (0.5,)}
    rows = robustness_rows(
        images,
        ["dwtDctSvd", "treering"],
        grid,
        "generated",
        null=null,
        null_name="skimage",
        treering=TreeRingSet(twins, treering_score(sd, key, 2), key.spec(16), more),
        attacked_null=True,
    )
    t = tidy(rows, "watermark", "decoder")
    head = t[(t["metric"] == "tpr_at_0.1pct_fpr") & (t["method"] == "dwtDctSvd")].set_index("attack")
    assert head.loc["none", "value"] == 1.0 and head.loc["none", "n"] == 2
    assert "not resolvable with 5 null images" in head.loc["none", "note"]
    fpr = t[(t["metric"] == "fpr") & (t["method"] == "treering")].iloc[0]
    assert fpr["n"] == 3 and fpr["value"] <= 0.01  # twins + 1 generation, never the skimage photos
    assert fpr["note"] == "null: 2 unmarked generated + 1 unmarked generations"
    ring = t[(t["method"] == "treering") & (t["metric"] == "bit_accuracy")]
    assert ring["n"].eq(0).all()  # Tree-Ring has no bits: no bit accuracy, never a fake one
    assert set(t[t["metric"] == "attack_psnr"]["attack"]) == set(grid)
    # attacked unmarked images against the null: unattacked, that is the bases' own AUC
    svd = post_hoc_score("dwtDctSvd")
    bases = [im for _, im in images]
    own = auc(svd(bases)[0], svd(bases + null)[0])
    att = t[(t["metric"] == "attacked_null_auc") & (t["method"] == "dwtDctSvd")].set_index("attack")
    assert att.loc["none", "value"] == pytest.approx(own) and att.loc["none", "n"] == 2
    for method in ("dwtDctSvd", "treering"):
        cells = t[(t["metric"] == "attacked_null_fpr_at_1pct") & (t["method"] == method)]
        assert set(cells["attack"]) == set(grid) and cells["n"].eq(2).all()
    html = section_watermark(t)
    assert "TPR at 0.1% FPR per attack" in html and "Throughput" in html
    assert "TPR at 0.1% FPR is not resolvable for dwtDctSvd (null of 5), treering (null of 3)" in html
    fake = t.copy()
    cell = (
        (fake["metric"] == "attacked_null_auc") & (fake["method"] == "treering") & (fake["attack"] == "jpeg")
    )
    fake.loc[cell, "value"] = 0.97
    flagged = fake[
        (fake["metric"] == "attacked_null_auc") & (fake["value"] >= 0.8) & (fake["attack"] != "none")
    ]
    html = section_watermark(fake)
    assert (
        "Attacks that by themselves look marked (attacked unmarked images vs the null, AUC &ge; 0.8): "
        in html
    )
    assert "treering jpeg 50 (0.97)" in html
    sentence = html.split("look marked")[1].split("</")[0]
    assert sentence.count("); ") == len(flagged) - 1  # every attack x method at >= 0.8, no other
    assert all(f"{r.method} {r.attack}" in sentence for r in flagged.itertuples())
    # the survival count leaves those cells out, and says at which FPR it counts
    ring_flagged = int((flagged["method"] == "treering").sum())
    ring = html.split("treering on generated: ")[1].split("</")[0]
    assert ring.startswith("TPR &ge; 0.9 at the strictest threshold of a null of 3 (0.1% FPR not resolvable)")
    assert f"{ring_flagged} more left out (the attack alone looks marked)" in ring, ring
