"""Image-quality and alignment metrics on encoder features, each with its n and a 95% interval.

Every function takes feature matrices (``N x D`` float arrays, one row per image, from
``evaluate.features``) and returns an :class:`Estimate` (value, n, interval); intervals are
seeded percentile bootstraps where the metric has no closed form. The formulas follow the papers
and the reference code named in each docstring, and ``tests/evaluate/test_quality_metrics.py``
checks them against torchmetrics (FD, KID) and google-research/cmmd (CMMD) on the same features.

- CLIPScore (Hessel et al. 2021): ``w * max(cos(image, text), 0)`` with ``w = 2.5``.
- Fréchet distance (Heusel et al. 2017): ``|mu_x - mu_y|^2 + Tr(S_x + S_y - 2 (S_x S_y)^1/2)``.
- KID (Bińkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets (100 of at most 1,000 per set).
- CMMD (Jayasumana et al. 2024): Gaussian RBF MMD on L2-normalised CLIP embeddings, sigma = 10,
  times 1,000 (google-research/cmmd ``distance.py``).
- Precision, recall, density, coverage (Naeem et al. 2020, clovaai/generative-evaluation-prdc), k = 5.
- Vendi score (Friedman & Dieng 2023): ``exp`` of the Shannon entropy of the eigenvalues of
  ``K / n``, ``K`` the cosine-similarity matrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from t2iscope.intervals import wilson

CLIP_SCORE_W = 2.5  # Hessel et al. 2021, section 3: rescales the cosine to roughly [0, 1] for ViT-B/32
KID_SUBSETS = 100  # Bińkowski et al. 2018 code, torchmetrics and clean-fid: 100 subsets ...
KID_SUBSET_SIZE = 1000  # ... of at most 1,000 images from each set
KID_DEGREE = 3  # the cubic polynomial kernel (x.y / d + 1)^3
CMMD_SIGMA = 10.0  # google-research/cmmd distance.py: _SIGMA = 10 (for L2-normalised CLIP embeddings)
CMMD_SCALE = 1000.0  # ... _SCALE = 1000, so values read like FID's magnitudes
# kernel means are of order 1 summed in float64 (relative error ~1e-16 per term), times 1,000: a
# set against itself leaves ~1e-13, which is 0 (the biased MMD^2 is a squared RKHS norm, >= 0)
CMMD_ROUNDING = 1e-9
PRDC_K = 5  # Naeem et al. 2020 recommend k = 5
BOOT_CAP = 2000  # generated images an interval resamples at most: bounds its N x N kernel matrix
LEVEL = 0.95


class Estimate(NamedTuple):
    """A metric's value over ``n`` (generated) images with its 95% interval ``ci`` (nan, nan if none)."""

    value: float
    n: int
    ci: tuple[float, float]


NO_CI = (math.nan, math.nan)


def _as_matrix(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected an N x D feature matrix, got shape {a.shape}")
    return a


def _normalized(x: np.ndarray) -> np.ndarray:
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def _percentiles(draws: np.ndarray) -> tuple[float, float]:
    draws = draws[np.isfinite(draws)]
    if not len(draws):
        return NO_CI
    alpha = (1 - LEVEL) / 2
    lo, hi = np.quantile(draws, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _resample(
    n: int,
    estimate: float,
    statistic: Callable[[np.ndarray], float],
    n_boot: int,
    seed: int,
    floor: float | None = None,
) -> tuple[float, float]:
    """95% interval of ``statistic(indices)`` over ``n`` generated images drawn with replacement.

    Percentile bootstrap re-centred on ``estimate``: drawing with replacement repeats images, which
    shifts FD and CMMD upwards at small n, so the draws are moved by their median's distance from
    the estimate (Efron & Tibshirani 1993, ch. 10, bias correction). The shift can carry the lower
    bound below what the metric can take (FD and CMMD of a set near the reference: draws all
    above a near-zero estimate move down past 0); ``floor`` (0 for metrics that cannot be
    negative) clips both bounds to it.
    """
    if n_boot <= 0 or n < 2 or not math.isfinite(estimate):
        return NO_CI
    rng = np.random.default_rng(seed)
    draws = np.array([statistic(rng.integers(0, n, n)) for _ in range(n_boot)], dtype=float)
    draws = draws[np.isfinite(draws)]
    if not len(draws):
        return NO_CI
    shift = float(np.median(draws)) - estimate
    lo, hi = _percentiles(draws)
    if floor is None:
        return lo - shift, hi - shift
    return max(lo - shift, floor), max(hi - shift, floor)


def _capped(x: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """At most ``cap`` rows of ``x``, a seeded random choice (all of them, in order, when fewer)."""
    if len(x) <= cap:
        return x
    return x[np.sort(np.random.default_rng(seed).choice(len(x), cap, replace=False))]


# --- CLIPScore -------------------------------------------------------------------------------------


def clip_scores(image_emb: np.ndarray, text_emb: np.ndarray, w: float = CLIP_SCORE_W) -> np.ndarray:
    """Per image: ``w * max(cos(image_i, text_i), 0)``, float64 ``N`` in [0, w] (Hessel et al. 2021).

    ``image_emb`` and ``text_emb`` are ``N x D`` CLIP embeddings of each image and its own prompt
    (any scale: both are L2-normalised here). Raises ValueError when the shapes differ.
    """
    img, txt = _as_matrix(image_emb, "image_emb"), _as_matrix(text_emb, "text_emb")
    if img.shape != txt.shape:
        raise ValueError(f"image_emb {img.shape} and text_emb {txt.shape} must have the same shape")
    cos = (_normalized(img) * _normalized(txt)).sum(axis=1)
    return w * np.maximum(cos, 0.0)


def mean_estimate(values: np.ndarray, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Mean of per-image (or per-prompt) values with a percentile bootstrap interval."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return Estimate(math.nan, 0, NO_CI)
    if len(v) < 2 or n_boot <= 0:
        return Estimate(float(v.mean()), len(v), NO_CI)
    rng = np.random.default_rng(seed)
    draws = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    return Estimate(float(v.mean()), len(v), _percentiles(draws))


def clip_score(
    image_emb: np.ndarray, text_emb: np.ndarray, w: float = CLIP_SCORE_W, n_boot: int = 1000, seed: int = 0
) -> Estimate:
    """Mean CLIPScore of image-prompt pairs (:func:`clip_scores`) with a bootstrap interval."""
    return mean_estimate(clip_scores(image_emb, text_emb, w), n_boot, seed)


# --- Fréchet distance ------------------------------------------------------------------------------
# Intervals of the two-sample metrics resample the generated images and hold the reference fixed:
# every row of an audit compares with the same reference set, and they are cheap for a 10k one.


def gaussian_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``D`` and unbiased covariance ``D x D`` of ``N x D`` features (pytorch-fid's ``np.cov``)."""
    a = _as_matrix(x, "features")
    return a.mean(axis=0), np.atleast_2d(np.cov(a, rowvar=False))


def frechet_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2), >= 0 (squared units of the features).

    ``Tr((S1 S2)^1/2)`` is the sum of the square roots of the eigenvalues of ``S1 S2`` (real and
    non-negative: ``S1 S2`` is similar to the PSD ``S1^1/2 S2 S1^1/2``), as torchmetrics computes it;
    it equals scipy's ``sqrtm`` formula of pytorch-fid and clean-fid and avoids its complex parts.
    """
    diff = np.asarray(mu1, float) - np.asarray(mu2, float)
    eig = np.linalg.eigvals(np.asarray(sigma1, float) @ np.asarray(sigma2, float))
    tr_sqrt = np.sqrt(np.clip(eig.real, 0.0, None)).sum()
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_sqrt)
    return max(value, 0.0)  # rounding can leave a set's distance to itself at -1e-12


def frechet_distance(
    x: np.ndarray,
    y: np.ndarray,
    n_boot: int = 100,
    seed: int = 0,
    y_stats: tuple[np.ndarray, np.ndarray] | None = None,
) -> Estimate:
    """Fréchet distance between features ``x`` (generated, ``n``) and ``y`` (reference).

    ``y_stats``: ``gaussian_stats(y)`` computed once by a caller comparing many sets with ``y``.
    FD is biased upwards at small n (Chong & Forsyth 2020): compare values at equal n only.
    """
    x, y = _as_matrix(x, "x"), _as_matrix(y, "y")
    if len(x) < 2 or len(y) < 2:
        return Estimate(math.nan, len(x), NO_CI)
    mu_y, s_y = y_stats if y_stats is not None else gaussian_stats(y)
    value = frechet_from_stats(*gaussian_stats(x), mu_y, s_y)
    ci = _resample(
        len(x), value, lambda ix: frechet_from_stats(*gaussian_stats(x[ix]), mu_y, s_y), n_boot, seed, 0.0
    )
    return Estimate(value, len(x), ci)


# --- KID -------------------------------------------------------------------------------------------


def polynomial_kernel(a: np.ndarray, b: np.ndarray, degree: int = KID_DEGREE) -> np.ndarray:
    """``(a.b / d + 1)^degree`` for every pair: ``len(a) x len(b)`` (Bińkowski et al. 2018, eq. 6)."""
    return (a @ b.T / a.shape[1] + 1.0) ** degree


def _off_diagonal_mean(k: np.ndarray) -> float:
    m = k.shape[0]
    return float((k.sum() - np.trace(k)) / (m * (m - 1)))


def kid(
    x: np.ndarray,
    y: np.ndarray,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    n_boot: int = 100,
    seed: int = 0,
) -> Estimate:
    """Kernel (Inception) distance of features ``x`` (generated, ``n``) and ``y`` (reference).

    The mean over ``subsets`` random subsets of ``m = min(n_x, n_y, subset_size)`` images from each
    set of the unbiased MMD^2, within-set means leaving out i = j (Bińkowski et al. 2018
    ``polynomial_mmd_averages``; torchmetrics' ``KernelInceptionDistance``; clean-fid's
    ``kernel_distance``). When both sets have ``m`` images every subset is the whole set, so one
    is computed. Unbiased, so it can be slightly negative. Interval: the unbiased MMD^2 of at most
    ``subset_size`` images per set, generated ones resampled (pairs of an image with a copy of
    itself left out, like the diagonal).
    """
    x, y = _as_matrix(x, "x"), _as_matrix(y, "y")
    m = min(len(x), len(y), subset_size)
    if m < 2:
        return Estimate(math.nan, len(x), NO_CI)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(1 if len(x) == len(y) == m else subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        k_xy = polynomial_kernel(a, b)
        within = _off_diagonal_mean(polynomial_kernel(a, a)) + _off_diagonal_mean(polynomial_kernel(b, b))
        values.append(within - 2.0 * float(k_xy.mean()))
    xs, ys = _capped(x, subset_size, seed), _capped(y, subset_size, seed + 1)
    k_xx, yy = polynomial_kernel(xs, xs), _off_diagonal_mean(polynomial_kernel(ys, ys))
    cross = polynomial_kernel(xs, ys).mean(axis=1)  # per generated image: mean kernel to the reference

    def stat(ix: np.ndarray) -> float:
        distinct = ix[:, None] != ix[None, :]
        if not distinct.any():  # one image drawn n times: no pair to measure within the set
            return math.nan
        return float(k_xx[np.ix_(ix, ix)][distinct].mean()) + yy - 2.0 * float(cross[ix].mean())

    value = float(np.mean(values))
    return Estimate(value, len(x), _resample(len(xs), value, stat, n_boot, seed))


# --- CMMD ------------------------------------------------------------------------------------------


def _rbf(a: np.ndarray, b: np.ndarray, sigma: float) -> np.ndarray:
    """``exp(-|a_i - b_j|^2 / (2 sigma^2))`` for every pair: ``len(a) x len(b)``."""
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.exp(-sq / (2.0 * sigma**2))


def _rbf_means(a: np.ndarray, b: np.ndarray, sigma: float, block: int = 2048) -> np.ndarray:
    """Per row of ``a``: mean over ``b`` of the RBF kernel, ``block`` rows at a time."""
    parts = [_rbf(a[i : i + block], b, sigma).mean(axis=1) for i in range(0, len(a), block)]
    return np.concatenate(parts) if parts else np.zeros(0)


def cmmd_mmd(x: np.ndarray, y: np.ndarray, sigma: float = CMMD_SIGMA, scale: float = CMMD_SCALE) -> float:
    """google-research/cmmd ``distance.mmd``: ``scale * (mean k_xx + mean k_yy - 2 mean k_xy)``.

    ``k(a, b) = exp(-|a - b|^2 / (2 sigma^2))``; the means include the diagonal, as that code does.
    ``x``, ``y``: ``N x D`` embeddings as given (CMMD passes L2-normalised CLIP embeddings).
    """
    k_xx, k_yy = _rbf_means(x, x, sigma).mean(), _rbf_means(y, y, sigma).mean()
    return float(scale * (k_xx + k_yy - 2.0 * _rbf_means(x, y, sigma).mean()))


def cmmd(
    x: np.ndarray, y: np.ndarray, n_boot: int = 100, seed: int = 0, y_self: float | None = None
) -> Estimate:
    """CMMD (:func:`cmmd_mmd`) of CLIP embeddings ``x`` (generated, ``n``) and ``y`` (reference),
    both L2-normalised here as cmmd's ``embedding.py`` does. ``y_self``: the reference's mean
    kernel to itself, computed once by a caller comparing many sets with ``y``. Interval: at most
    ``BOOT_CAP`` generated images resampled, reference fixed, clipped at 0 (the means include the
    diagonal, so the value is a squared norm: >= 0; rounding below ``CMMD_ROUNDING`` is 0)."""
    x, y = _normalized(_as_matrix(x, "x")), _normalized(_as_matrix(y, "y"))
    if len(x) < 1 or len(y) < 1:
        return Estimate(math.nan, len(x), NO_CI)
    yy = float(_rbf_means(y, y, CMMD_SIGMA).mean()) if y_self is None else y_self
    cross = _rbf_means(x, y, CMMD_SIGMA)
    value = CMMD_SCALE * (float(_rbf_means(x, x, CMMD_SIGMA).mean()) + yy - 2.0 * float(cross.mean()))
    value = value if abs(value) > CMMD_ROUNDING else 0.0
    pick = _capped(np.arange(len(x)), BOOT_CAP, seed)
    k_xx, cross = _rbf(x[pick], x[pick], CMMD_SIGMA), cross[pick]

    def stat(ix: np.ndarray) -> float:
        return CMMD_SCALE * (float(k_xx[np.ix_(ix, ix)].mean()) + yy - 2.0 * float(cross[ix].mean()))

    return Estimate(value, len(x), _resample(len(pick), value, stat, n_boot, seed, 0.0))


def reference_self_kernel(y: np.ndarray) -> float:
    """The reference's mean CMMD kernel to itself (the ``y_self`` of :func:`cmmd`)."""
    y = _normalized(_as_matrix(y, "y"))
    return float(_rbf_means(y, y, CMMD_SIGMA).mean())


# --- precision, recall, density, coverage ----------------------------------------------------------


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances ``len(a) x len(b)`` (sklearn's ``pairwise_distances`` as prdc uses it)."""
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(sq, 0.0, None))


def knn_radii(x: np.ndarray, k: int = PRDC_K, block: int = 1024) -> np.ndarray:
    """Distance of each row of ``x`` to its k-th nearest other row (prdc's
    ``compute_nearest_neighbour_distances``: the (k+1)-th smallest, itself being the first),
    ``block`` rows at a time so a 10k reference needs no 10k x 10k matrix."""
    x = _as_matrix(x, "x")
    return np.concatenate(
        [np.partition(_distances(x[i : i + block], x), k, axis=1)[:, k] for i in range(0, len(x), block)]
    )


def prdc(
    real: np.ndarray,
    fake: np.ndarray,
    k: int = PRDC_K,
    n_boot: int = 1000,
    seed: int = 0,
    real_radii: np.ndarray | None = None,
) -> dict[str, Estimate]:
    """Precision, recall, density and coverage of ``fake`` (generated) against ``real`` features.

    Naeem et al. 2020 (clovaai/generative-evaluation-prdc ``compute_prdc``), with each set's k-NN
    balls: precision = share of fakes inside some real ball; recall = share of reals inside some
    fake ball; density = mean over fakes of (real balls containing it) / k; coverage = share of
    reals whose ball contains a fake. Each is a mean of per-image values given the other set, so
    precision, recall and coverage carry Wilson intervals and density a bootstrap one, conditional
    on the balls. ``real_radii``: ``knn_radii(real, k)`` computed once by a caller. Needs more
    than ``k`` images in each set (else every value is nan).
    Returns ``{"precision", "recall", "density", "coverage"}``; ``n`` is the images averaged over.
    """
    real, fake = _as_matrix(real, "real"), _as_matrix(fake, "fake")
    if len(real) <= k or len(fake) <= k:
        empty = Estimate(math.nan, 0, NO_CI)
        return dict.fromkeys(("precision", "recall", "density", "coverage"), empty)
    real_r = knn_radii(real, k) if real_radii is None else real_radii
    fake_r = knn_radii(fake, k)
    d = _distances(real, fake)  # real x fake
    inside_real = d < real_r[:, None]
    in_some_real = inside_real.any(axis=0)  # per fake
    in_some_fake = (d < fake_r[None, :]).any(axis=1)  # per real
    covered = d.min(axis=1) < real_r  # per real
    per_fake_density = inside_real.sum(axis=0) / k

    def share(flags: np.ndarray) -> Estimate:
        hits = int(flags.sum())
        return Estimate(hits / len(flags), len(flags), wilson(hits, len(flags)))

    return {
        "precision": share(in_some_real),
        "recall": share(in_some_fake),
        "density": mean_estimate(per_fake_density, n_boot, seed),
        "coverage": share(covered),
    }


# --- Vendi score -----------------------------------------------------------------------------------


def vendi_score(x: np.ndarray) -> float:
    """Vendi score of ``N x D`` embeddings, in [1, N]: ``exp(-sum l log l)``, ``l`` the eigenvalues
    of ``K / N`` with ``K`` the cosine similarities (Friedman & Dieng 2023, order q = 1; the
    ``vendi_score`` package's ``score_dual`` with normalised rows). 1 = all alike, N = all orthogonal.
    """
    a = _normalized(_as_matrix(x, "x"))
    if not len(a):
        return math.nan
    # the non-zero eigenvalues of K / N = A A^T / N equal those of A^T A / N (D x D, cheaper for N > D)
    gram = a.T @ a if len(a) > a.shape[1] else a @ a.T
    lam = np.clip(np.linalg.eigvalsh(gram / len(a)), 0.0, None)
    lam = lam[lam > 1e-12]
    return float(np.exp(-(lam * np.log(lam)).sum()))
