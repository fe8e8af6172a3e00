"""The statistics every audit reports: intervals for rates, concentration, imbalance, agreement.

Each function is small and checked in tests against values computed by hand, because a reviewer
trusts an audit only as far as its arithmetic. Rates always travel with their n and a 95% interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Annotated

import numpy as np

from t2iscope.config import Ge, Le
from t2iscope.intervals import Z95, wilson

# An audit's bootstrap resamples (n_boot): each draws n_boot x n indices at once, so a huge value
# would exhaust memory; 100,000 is far beyond what a 95% interval needs (scipy's default is 9,999).
NBoot = Annotated[int, Ge(1), Le(100_000)]


def imbalance(counts: Sequence[float] | np.ndarray, k: int | None = None) -> float:
    """HEIM-style imbalance: mean over K categories of |f_k - 1/K| (0 = parity).

    ``k`` counts categories that may be absent from ``counts`` (a culture never drawn still
    counts as a category); it defaults to ``len(counts)``.
    """
    c = np.asarray(counts, dtype=float)
    k = len(c) if k is None else k
    if k < len(c):
        raise ValueError(f"k={k} is smaller than the {len(c)} categories given")
    total = c.sum()
    if total <= 0 or k == 0:
        return math.nan
    f = np.concatenate([c / total, np.zeros(k - len(c))])
    return float(np.abs(f - 1.0 / k).sum() / k)


def bootstrap_ci(
    labels: Sequence[int] | np.ndarray,
    statistic: Callable[[np.ndarray], float],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over resampled observations (seeded)."""
    x = np.asarray(labels)
    if len(x) == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    stats = np.array([statistic(x[row]) for row in idx], dtype=float)
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(stats, [alpha, 1 - alpha])
    return float(lo), float(hi)


def imbalance_with_ci(
    codes: Sequence[int] | np.ndarray, k: int, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Imbalance of integer category codes in [0, k) with a Bayesian-bootstrap interval.

    The shares are drawn ``n_boot`` times from their Dirichlet posterior under Jeffreys' prior
    (counts + 1/2 each; Rubin 1981's Bayesian bootstrap with that prior), and the interval is the
    percentiles of the imbalance over the draws (widened to hold the observed value). Unlike
    resampling the observations, it does not
    collapse to a point when every image shows one category (13 of 13 feminine: the share's own
    Wilson interval is [0.77, 1], so the imbalance's cannot be [0.5, 0.5]). Seeded.
    """
    x = np.asarray(codes, dtype=np.int64)
    if not len(x) or k == 0:
        return math.nan, math.nan, math.nan
    counts = np.bincount(x, minlength=k)
    shares = np.random.default_rng(seed).dirichlet(counts + 0.5, size=n_boot)
    draws = np.abs(shares - 1.0 / k).sum(axis=1) / k
    alpha = (1 - level) / 2
    lo, hi = np.quantile(draws, [alpha, 1 - alpha])
    value = imbalance(counts, k)
    # all in one category is the statistic's maximum, which no draw with the prior reaches: the
    # interval is widened to hold the observed value
    return value, float(min(lo, value)), float(max(hi, value))


def hhi(counts: Sequence[float] | np.ndarray) -> float:
    """Herfindahl-Hirschman index: sum of squared shares, from 1/N (even) to 1 (one domain)."""
    c = np.asarray(counts, dtype=float)
    total = c.sum()
    if total <= 0:
        return math.nan
    s = c / total
    return float((s * s).sum())


def gini(counts: Sequence[float] | np.ndarray) -> float:
    """Gini coefficient of non-negative counts: 0 = all equal, -> 1 = one holds everything."""
    c = np.sort(np.asarray(counts, dtype=float))
    n = len(c)
    total = c.sum()
    if n == 0 or total <= 0:
        return math.nan
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * c).sum() / (n * total))


def top_share(counts: Sequence[float] | np.ndarray, k: int) -> float:
    """Share of all rows held by the ``k`` largest categories."""
    c = np.sort(np.asarray(counts, dtype=float))[::-1]
    total = c.sum()
    return float(c[:k].sum() / total) if total > 0 else math.nan


def coverage_curve(counts: Sequence[float] | np.ndarray) -> np.ndarray:
    """Cumulative share of rows covered by the top-1, top-2, ... categories."""
    c = np.sort(np.asarray(counts, dtype=float))[::-1]
    total = c.sum()
    return np.cumsum(c) / total if total > 0 else np.zeros(0)


def cohen_kappa(a: Sequence[object], b: Sequence[object]) -> float:
    """Cohen's kappa between two raters' labels of the same items: (p_o - p_e) / (1 - p_e).

    NaN when undefined: no items, or both raters used one and the same label (p_e = 1; sklearn's
    ``cohen_kappa_score`` gives NaN there too), however well they agree.
    """
    if len(a) != len(b):
        raise ValueError(f"kappa needs paired labels, got {len(a)} and {len(b)}")
    n = len(a)
    if n == 0:
        return math.nan
    cats = sorted({*a, *b}, key=str)
    po = sum(x == y for x, y in zip(a, b, strict=False)) / n
    pe = sum((list(a).count(c) / n) * (list(b).count(c) / n) for c in cats)
    if pe == 1.0:
        return math.nan
    return (po - pe) / (1 - pe)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images in dB (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def newcombe_diff(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, float, float]:
    """p1 - p2 with Newcombe's hybrid score interval (built from the two Wilson intervals)."""
    if n1 == 0 or n2 == 0:
        return math.nan, math.nan, math.nan
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
