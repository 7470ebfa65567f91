"""Small statistics shared by the behaviour analytics: linear percentiles and ratios."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["percentile", "ratio"]


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) of already sorted values by linear interpolation, ``None`` when empty.

    The same definition as ``numpy.percentile(..., method="linear")`` and PostgreSQL's
    ``percentile_cont``: position ``h = (n - 1) * q``, interpolated between its neighbours.
    """
    n = len(sorted_values)
    if n == 0:
        return None
    h = (n - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, n - 1)
    low = float(sorted_values[lo])
    return low + (h - lo) * (float(sorted_values[hi]) - low)


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or ``None`` when the denominator is not positive."""
    return numerator / denominator if denominator > 0 else None
