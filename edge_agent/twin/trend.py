"""Recent points of every numeric tag, for sparklines and as a history when the buffer cannot answer.

Bounded: ``points`` per tag (a ring), tags as bounded by the twins. Compact: each ring is one
``array('d')`` of interleaved (ts, value) pairs, 16 bytes a point (a deque of tuples takes about
120), which matters at tens of thousands of tags. ``points = 0`` keeps nothing: the agent's status
page answers history from the buffer, so it keeps no trends (4 KB a tag at 240 points).
"""

from __future__ import annotations

import math
from array import array

from edge_agent.model import Quality, Sample

__all__ = ["TrendCache"]


class _Ring:
    """Up to ``points`` (ts, value) pairs; grows until full, then overwrites the oldest."""

    __slots__ = ("data", "last_ts", "start")

    def __init__(self) -> None:
        self.data = array("d")
        self.start = 0  # index (in pairs) of the oldest pair once full
        self.last_ts = -math.inf

    def append(self, ts: float, value: float, points: int) -> None:
        data = self.data
        if len(data) < 2 * points:
            data.append(ts)
            data.append(value)
        else:
            i = 2 * self.start
            data[i] = ts
            data[i + 1] = value
            self.start = (self.start + 1) % points
        self.last_ts = ts

    def pairs(self) -> list[tuple[float, float]]:
        data = self.data
        n = len(data) // 2
        order = range(self.start, self.start + n)
        return [(data[2 * (k % n)], data[2 * (k % n) + 1]) for k in order]


class TrendCache:
    """The last ``points`` (ts, value) pairs of each numeric (device, tag); booleans count as 0/1."""

    def __init__(self, points: int = 240) -> None:
        if points < 0:
            raise ValueError(f"trend points must be >= 0, not {points}")
        self.points = points
        self._rings: dict[tuple[str, str], _Ring] = {}

    def add(self, sample: Sample) -> None:
        if not self.points or sample.quality == Quality.BAD:
            return
        value = sample.value
        if isinstance(value, bool):
            number = 1.0 if value else 0.0
        elif isinstance(value, int | float) and math.isfinite(value):
            number = float(value)
        else:
            return
        key = (sample.device, sample.tag)
        ring = self._rings.get(key)
        if ring is None:
            ring = self._rings[key] = _Ring()
        if sample.ts <= ring.last_ts:
            return
        ring.append(sample.ts, number, self.points)

    def get(self, device: str, tag: str, start: float = -math.inf, end: float = math.inf) -> list[tuple[float, float]]:
        ring = self._rings.get((device, tag))
        if ring is None:
            return []
        return [(ts, v) for ts, v in ring.pairs() if start <= ts <= end]

    def tags(self, device: str) -> list[str]:
        return sorted(tag for dev, tag in self._rings if dev == device)

    def forget(self, device: str) -> None:
        for key in [k for k in self._rings if k[0] == device]:
            del self._rings[key]
