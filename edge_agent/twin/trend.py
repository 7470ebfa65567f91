"""Recent points of every numeric tag, for sparklines and as a history when the buffer cannot answer.

Bounded: ``points`` per tag (a ring), tags as bounded by the twins.
"""

from __future__ import annotations

import math
from collections import deque

from edge_agent.model import Quality, Sample

__all__ = ["TrendCache"]


class TrendCache:
    """The last ``points`` (ts, value) pairs of each numeric (device, tag); booleans count as 0/1."""

    def __init__(self, points: int = 240) -> None:
        self.points = points
        self._rings: dict[tuple[str, str], deque[tuple[float, float]]] = {}

    def add(self, sample: Sample) -> None:
        if sample.quality == Quality.BAD:
            return
        value = sample.value
        if isinstance(value, bool):
            number = 1.0 if value else 0.0
        elif isinstance(value, int | float) and math.isfinite(value):
            number = float(value)
        else:
            return
        ring = self._rings.get((sample.device, sample.tag))
        if ring is None:
            ring = self._rings[(sample.device, sample.tag)] = deque(maxlen=self.points)
        if ring and sample.ts <= ring[-1][0]:
            return
        ring.append((sample.ts, number))

    def get(self, device: str, tag: str, start: float = -math.inf, end: float = math.inf) -> list[tuple[float, float]]:
        ring = self._rings.get((device, tag), ())
        return [(ts, v) for ts, v in ring if start <= ts <= end]

    def tags(self, device: str) -> list[str]:
        return sorted(tag for dev, tag in self._rings if dev == device)

    def forget(self, device: str) -> None:
        for key in [k for k in self._rings if k[0] == device]:
            del self._rings[key]
