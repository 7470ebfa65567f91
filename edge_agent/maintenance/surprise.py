"""Building blocks of the streaming detectors: tail surprise of a value and the period of a series.

Surprise is measured in *decades of tail probability*. Against a sliding window of its own history, a
value at the window's 99th percentile (``body``) has surprise 2, at the 99.9th (``tail``) 3, and each
further ``tail - body`` beyond adds one: an exponential tail fitted to the window's own top order
statistics, so a heavy-tailed series (tweets) and a quiet one (a temperature) get comparable scales.
Both sides are treated alike (the low tail mirrors the high one).
"""

from __future__ import annotations

import math
from array import array

import numpy as np

from edge_agent.maintenance.rolling import RollingQuantiles

__all__ = ["TailSurprise", "find_period"]

_MIN_HISTORY = 30


class TailSurprise:
    """Surprise of values against a sliding window of the values seen before them.

    ``floor`` keeps the tail scale at least ``floor`` times the body range (so a few outliers in the
    window do not make everything beyond them infinitely surprising); ``clip`` bounds what enters the
    window at ``clip`` decades beyond the body, so one anomaly does not hide the next (0: no clip).
    """

    __slots__ = ("_body", "_cast", "_clip", "_cut", "_floor", "_ranks", "_ranks_for", "_tail", "window")

    def __init__(
        self,
        size: int,
        body: float = 0.99,
        tail: float = 0.999,
        floor: float = 0.1,
        clip: float = 5.0,
        typecode: str = "f",
    ) -> None:
        if not 0.5 < body < tail < 1.0:
            raise ValueError("need 0.5 < body < tail < 1")
        self.window = RollingQuantiles(size, typecode)
        self._cast: array[float] = array(typecode, [0.0])  # rounds values like the window stores them
        self._body = body
        self._tail = tail
        self._floor = floor
        self._clip = clip
        self._cut = (-math.inf, math.inf)
        self._ranks: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
        self._ranks_for = -1

    def _order_statistics(self, n: int) -> tuple[float, float, float, float, float]:
        """Low tail, low body, median, high body and high tail of a window holding ``n`` values."""
        if n != self._ranks_for:
            last = n - 1
            self._ranks = tuple(  # type: ignore[assignment]
                min(last, max(0, round(q * last)))
                for q in (1.0 - self._tail, 1.0 - self._body, 0.5, self._body, self._tail)
            )
            self._ranks_for = n
        ordered = self.window.ordered
        a, b, c, d, e = self._ranks
        return ordered[a], ordered[b], ordered[c], ordered[d], ordered[e]

    def surprise(self, x: float) -> float:
        """Surprise of ``x`` in decades (0 until the window holds 30 values)."""
        n = len(self.window)
        if n < _MIN_HISTORY:
            self._cut = (-math.inf, math.inf)
            return 0.0
        self._cast[0] = x
        x = self._cast[0]
        lo_tail, lo_body, med, hi_body, hi_tail = self._order_statistics(n)
        least = max(self._floor * (hi_body - lo_body), 1e-6 * (abs(med) + 1e-3))
        hi_scale = max(hi_tail - hi_body, least)
        lo_scale = max(lo_body - lo_tail, least)
        if self._clip:
            self._cut = (lo_body - self._clip * lo_scale, hi_body + self._clip * hi_scale)
        if x > hi_body:
            return 2.0 + (x - hi_body) / hi_scale
        if x < lo_body:
            return 2.0 + (lo_body - x) / lo_scale
        if x > med:
            return 2.0 * (x - med) / (hi_body - med)
        if x < med:
            return 2.0 * (med - x) / (med - lo_body)
        return 0.0

    def push(self, x: float) -> None:
        """Add ``x`` to the window (clipped against the window as :meth:`surprise` last saw it)."""
        lo, hi = self._cut
        self.window.push(lo if x < lo else hi if x > hi else x)

    def nbytes(self) -> int:
        return self.window.nbytes()


def find_period(values: np.ndarray, min_autocorrelation: float = 0.3, min_lag: int = 4) -> int:
    """The dominant period of ``values`` in samples, or 0 when the series is not periodic enough.

    After the first zero crossing of the autocorrelation, the first local maximum that reaches 90% of the
    highest one (so a multiple of the period does not win by noise), kept when its autocorrelation is at
    least ``min_autocorrelation``; lags up to half the series are considered.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 4 * min_lag:
        return 0
    x = x - x.mean()
    if not np.any(x):
        return 0
    spectrum = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[: n // 2 + 1]
    acf = acf / acf[0] * n / (n - np.arange(len(acf)))  # unbiased
    negative = np.flatnonzero(acf < 0)
    if not negative.size:
        return 0
    start = max(int(negative[0]), min_lag)
    if start >= len(acf) - 2:
        return 0
    tail = acf[start:]
    peaks = np.flatnonzero((tail[1:-1] >= tail[:-2]) & (tail[1:-1] >= tail[2:])) + 1
    if not peaks.size:
        return 0
    best = float(np.max(tail[peaks]))
    lag = start + int(peaks[np.argmax(tail[peaks] >= 0.9 * best)])
    return lag if acf[lag] >= min_autocorrelation else 0
