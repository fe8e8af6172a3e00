"""The quality metrics: exact cases, a reference implementation, and the right direction under
controlled degradations of real images (world renders) in the embedded tiny CLIP's features."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from scipy import linalg

from t2iscope.curate.world import spec
from t2iscope.evaluate import quality_metrics as Q
from t2iscope.evaluate.features import FeatureCache, ImageSet, clip_encoder, extract

FIXTURE = Path(__file__).parent / "fixtures" / "quality_reference.json"
N = 240  # images per set: enough for k-NN balls and stable FD in the 64-d tiny CLIP


# --- exact cases -----------------------------------------------------------------------------------


def test_fd_of_a_set_with_itself_is_zero() -> None:
    x = np.random.default_rng(0).normal(size=(200, 16)) @ np.random.default_rng(1).normal(size=(16, 16))
    assert Q.frechet_distance(x, x, n_boot=0).value == pytest.approx(0.0, abs=1e-8)


def test_fd_of_two_gaussians_matches_the_closed_form() -> None:
    rng = np.random.default_rng(3)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + np.eye(6), b @ b.T + 0.5 * np.eye(6)
    # the definition with scipy's matrix square root (pytorch-fid's formula)
    closed = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real))
    assert Q.frechet_from_stats(mu1, s1, mu2, s2) == pytest.approx(closed, rel=1e-9)
    # diagonal covariances: |mu1 - mu2|^2 + sum (sqrt(v1) - sqrt(v2))^2
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    mu = np.array([1.0, 0.0, 2.0])
    assert Q.frechet_from_stats(mu, np.diag(v1), 0 * mu, np.diag(v2)) == pytest.approx(5.0 + 1 + 1 + 4)
    # sampled: the estimate converges to the population value
    x = rng.multivariate_normal(mu1, s1, size=40_000)
    y = rng.multivariate_normal(mu2, s2, size=40_000)
    assert Q.frechet_distance(x, y, n_boot=0).value == pytest.approx(closed, rel=0.03)


@pytest.mark.parametrize("case", json.loads(FIXTURE.read_text())["cases"], ids=lambda c: c["name"])
def test_fd_kid_cmmd_match_the_reference_implementations(case: dict) -> None:
    x, y = np.array(case["x"]), np.array(case["y"])
    assert Q.frechet_distance(x, y, n_boot=0).value == pytest.approx(case["fd"], abs=1e-4)
    assert Q.kid(x, y, n_boot=0).value == pytest.approx(case["kid"], abs=1e-4)
    assert Q.cmmd(x, y, n_boot=0).value == pytest.approx(case["cmmd"], abs=1e-4)


def test_kid_averages_subsets_of_the_capped_size() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(300, 8)), rng.normal(0.5, 1.0, size=(90, 8))
    est = Q.kid(x, y, subsets=50, subset_size=1000, n_boot=50)
    whole = Q.kid(x[:90], y, n_boot=0).value  # one subset of 90 from each, as m = min(n_x, n_y)
    assert est.n == 300 and est.value == pytest.approx(whole, rel=0.5)
    assert est.ci[0] < est.value < est.ci[1]


def test_vendi_is_one_for_copies_and_n_for_orthogonal_rows() -> None:
    assert Q.vendi_score(np.tile([[1.0, 2.0, 3.0]], (7, 1))) == pytest.approx(1.0)
    assert Q.vendi_score(np.eye(5)) == pytest.approx(5.0)
    assert Q.vendi_score(np.eye(12)[:, :12]) == pytest.approx(12.0)  # N > D path and N <= D agree


def test_clip_score_is_w_times_clipped_cosine() -> None:
    img = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    txt = np.array([[1.0, 1.0], [-1.0, 0.0], [0.0, 5.0]])
    np.testing.assert_allclose(Q.clip_scores(img, txt), [2.5 / np.sqrt(2), 0.0, 2.5])


def test_prdc_matches_the_reference_formulas_on_a_small_case() -> None:
    rng = np.random.default_rng(9)
    real, fake = rng.normal(size=(40, 3)), rng.normal(0.4, 1.0, size=(30, 3))
    d_rr = np.linalg.norm(real[:, None] - real[None], axis=-1)
    d_ff = np.linalg.norm(fake[:, None] - fake[None], axis=-1)
    d = np.linalg.norm(real[:, None] - fake[None], axis=-1)
    r_r, r_f = np.sort(d_rr, axis=1)[:, 5], np.sort(d_ff, axis=1)[:, 5]
    got = Q.prdc(real, fake, k=5, n_boot=0)
    assert got["precision"].value == pytest.approx((d < r_r[:, None]).any(axis=0).mean())
    assert got["recall"].value == pytest.approx((d < r_f[None, :]).any(axis=1).mean())
    assert got["density"].value == pytest.approx((d < r_r[:, None]).sum(axis=0).mean() / 5)
    assert got["coverage"].value == pytest.approx((d.min(axis=1) < r_r).mean())


# --- controlled degradations of real images --------------------------------------------------------


def _scenes(seed: int, n: int, kinds: tuple[str, ...], colors: tuple[str, ...]) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        kind = kinds[int(rng.integers(len(kinds)))]
        rows.append(
            {
                "key": seed * 100_000 + i,
                "kind": kind,
                "color": colors[int(rng.integers(len(colors)))],
                "background": list(spec.BACKGROUNDS)[int(rng.integers(len(spec.BACKGROUNDS)))],
                "culture": "western" if kind in spec.CULTURE_KINDS else None,
                "legs": spec.KINDS[kind],
                "legs_expected": spec.KINDS[kind],
                "watermark": False,
                "unsafe": False,
                **dict.fromkeys(("blur", "noise", "low_contrast", "blockiness", "tiny"), 0.0),
            }
        )
    return rows


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _noisy(image: Image.Image, sigma: float, seed: int) -> Image.Image:
    a = np.asarray(image, dtype=np.float64)
    a = a + np.random.default_rng(seed).normal(0, sigma, a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def world_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Embedded-CLIP features (and captions) of world renders: a reference set, another clean set
    from the same distribution, that set blurred and noised, and a set of one kind and color."""
    from t2iscope.curate.world.render import render_scene

    kinds, colors = tuple(spec.KINDS), tuple(spec.COLORS)
    clean = [(render_scene(r), f"a {r['color']} {r['kind']}") for r in _scenes(2, N, kinds, colors)]
    sets = {
        "reference": [(render_scene(r), f"a {r['color']} {r['kind']}") for r in _scenes(1, N, kinds, colors)],
        "clean": clean,
        "blur": [(im.filter(ImageFilter.GaussianBlur(2.5)), t) for im, t in clean],
        "noise": [(_noisy(im, 60, i), t) for i, (im, t) in enumerate(clean)],
        "one_mode": [(render_scene(r), "a red ball") for r in _scenes(3, N, ("ball",), ("red",))],
    }
    encoder = clip_encoder()
    cache = FeatureCache(encoder, tmp_path_factory.mktemp("features"))
    out = {}
    for name, items in sets.items():
        blobs = [_png(im) for im, _ in items]
        images = ImageSet(name, tuple(f"{name}-{i}" for i in range(len(blobs))), lambda b=blobs: iter(b))
        feats = extract(images, encoder, cache, progress=False)
        assert feats.ok.all()
        out[name] = (feats.values.astype(np.float64), [t for _, t in items])
    return out


@pytest.mark.parametrize("metric", [Q.frechet_distance, Q.kid, Q.cmmd], ids=["fd", "kid", "cmmd"])
def test_distances_grow_with_blur_noise_and_fewer_modes(world_sets: dict, metric) -> None:
    ref = world_sets["reference"][0]
    clean = metric(world_sets["clean"][0], ref, n_boot=30)
    for worse in ("blur", "noise", "one_mode"):
        got = metric(world_sets[worse][0], ref, n_boot=30)
        assert got.value > clean.value, (worse, got, clean)
        assert got.ci[0] > clean.ci[1], (worse, got, clean)  # apart beyond their intervals


def _prdc(world_sets: dict, name: str) -> dict[str, Q.Estimate]:
    return Q.prdc(world_sets["reference"][0], world_sets[name][0], n_boot=200)


def test_precision_falls_when_images_leave_the_data_manifold(world_sets: dict) -> None:
    clean = _prdc(world_sets, "clean")["precision"]
    for worse in ("blur", "noise"):
        assert _prdc(world_sets, worse)["precision"].value < clean.value - 0.2, worse


def test_density_falls_when_images_leave_the_data_manifold(world_sets: dict) -> None:
    clean = _prdc(world_sets, "clean")["density"]
    for worse in ("blur", "noise"):
        got = _prdc(world_sets, worse)["density"]
        assert got.ci[1] < clean.ci[0], worse


def test_recall_falls_with_fewer_modes(world_sets: dict) -> None:
    clean, few = _prdc(world_sets, "clean")["recall"], _prdc(world_sets, "one_mode")["recall"]
    assert few.ci[1] < clean.ci[0]


def test_coverage_falls_with_fewer_modes(world_sets: dict) -> None:
    clean, few = _prdc(world_sets, "clean")["coverage"], _prdc(world_sets, "one_mode")["coverage"]
    assert few.ci[1] < clean.ci[0]


def test_vendi_falls_with_fewer_modes(world_sets: dict) -> None:
    clean, few = Q.vendi_score(world_sets["clean"][0]), Q.vendi_score(world_sets["one_mode"][0])
    assert few < clean / 1.5
    assert few >= 1.0 and clean <= N


def test_clip_score_falls_when_captions_do_not_match(world_sets: dict) -> None:
    encoder = clip_encoder()
    feats, texts = world_sets["clean"]
    matched = Q.clip_score(feats, encoder.encode_text(texts), n_boot=300)
    shuffled = Q.clip_score(feats, encoder.encode_text(texts[1:] + texts[:1]), n_boot=300)
    assert shuffled.ci[1] < matched.ci[0]
    blurred = Q.clip_score(world_sets["blur"][0], encoder.encode_text(texts), n_boot=300)
    assert blurred.value < matched.value


def test_intervals_of_non_negative_metrics_stay_at_or_above_zero() -> None:
    x = np.random.default_rng(3).normal(size=(40, 8))
    fd = Q.frechet_distance(x, x, n_boot=50, seed=0)
    cm = Q.cmmd(x, x, n_boot=50, seed=0)
    assert fd.value == 0.0 and cm.value == 0.0  # a set against itself; CMMD's 1e-13 rounding is 0
    for est in (fd, cm):
        assert 0.0 <= est.ci[0] <= est.ci[1] and est.ci[1] > 0
    # KID is unbiased: a set against itself is negative (the cross term keeps each image's pair
    # with itself, the within-set terms leave it out), so its interval is not clipped
    assert Q.kid(x, x, n_boot=20).value < 0
