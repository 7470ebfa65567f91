"""Sliding-window order statistics and running means for streaming detectors.

``RollingQuantiles`` keeps the last ``size`` values twice, in arrival order (a ring) and sorted, both in
typed arrays: 16 bytes per value as doubles, 8 as floats (``typecode="f"``; values are then rounded to
float32, which order statistics of sensor data do not mind). Adding a value is a binary search and a
``memmove`` of at most ``size`` items (about a microsecond for a few thousand values); a quantile is one
index.
"""

from __future__ import annotations

import bisect
import math
from array import array

__all__ = ["RollingMean", "RollingQuantiles"]


class RollingQuantiles:
    """The last ``size`` values of a stream with exact order statistics (nearest rank)."""

    __slots__ = ("_count", "_head", "_ring", "_size", "_sorted")

    def __init__(self, size: int, typecode: str = "d") -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        if typecode not in ("d", "f"):
            raise ValueError("typecode must be 'd' or 'f'")
        self._size = size
        self._ring: array[float] = array(typecode, [0.0]) * size
        self._sorted: array[float] = array(typecode, [])
        self._head = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def size(self) -> int:
        return self._size

    @property
    def ordered(self) -> array[float]:
        """The window's values in ascending order (a live view: do not modify)."""
        return self._sorted

    def push(self, value: float) -> None:
        """Add ``value``, dropping the oldest one when the window is full (NaN is ignored)."""
        if math.isnan(value):
            return
        ordered = self._sorted
        if self._count == self._size:
            del ordered[bisect.bisect_left(ordered, self._ring[self._head])]
        else:
            self._count += 1
        ring = self._ring
        ring[self._head] = value
        bisect.insort(ordered, ring[self._head])  # as stored (rounded when float32)
        self._head = (self._head + 1) % self._size

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (nearest rank, ``0 <= q <= 1``); NaN when the window is empty."""
        if not self._count:
            return math.nan
        return self._sorted[min(self._count - 1, max(0, round(q * (self._count - 1))))]

    def nbytes(self) -> int:
        """Bytes of the two value buffers."""
        return (len(self._ring) + len(self._sorted)) * self._ring.itemsize


class RollingMean:
    """Mean of the last ``size`` values (a running sum over a ring; NaN is ignored)."""

    __slots__ = ("_head", "_ring", "_size", "_sum", "count")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self._size = size
        self._ring: array[float] = array("d", [0.0]) * size
        self._head = 0
        self._sum = 0.0
        self.count = 0

    def push(self, value: float) -> float:
        """Add ``value`` and return the mean of the window."""
        if math.isnan(value):
            return self._sum / self.count if self.count else math.nan
        if self.count == self._size:
            self._sum -= self._ring[self._head]
        else:
            self.count += 1
        self._ring[self._head] = value
        self._head = (self._head + 1) % self._size
        self._sum += value
        if self._head == 0:  # once per lap, re-add exactly to stop rounding drift
            self._sum = math.fsum(self._ring[: self.count])
        return self._sum / self.count

    def nbytes(self) -> int:
        return self._size * 8
