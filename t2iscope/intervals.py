"""The Wilson interval every rate in t2iscope carries, from model cards to audit reports.

It lives in the core so that generate's training measurements and evaluate's audits (which
may not import each other upward) report identical intervals.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (good coverage near 0 and 1, unlike Wald).

    Returns (nan, nan) when n == 0: no data is not a rate of zero.
    """
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"wilson needs 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return math.nan, math.nan
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # at k = 0 (k = n) the bound is exactly 0 (1); rounding would leave it 1e-17 off, above the value
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high
