"""The state timeline of each machine: stretches of one state category, for the shift's Gantt bar.

Bounded: at most ``max_segments`` per device (the oldest go first).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

__all__ = ["Segment", "StateTimeline"]


@dataclass(frozen=True, slots=True)
class Segment:
    """``[start, end)`` in one category; ``end`` is None while it lasts."""

    start: float
    end: float | None
    category: str
    code: str | None = None
    reason: str | None = None
    reason_text: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start, "end": self.end, "category": self.category, "code": self.code,
            "reason": self.reason, "reason_text": self.reason_text,
        }


class StateTimeline:
    """Change points of one device's state, closed into segments."""

    def __init__(self, max_segments: int = 2000) -> None:
        self._segments: deque[Segment] = deque(maxlen=max_segments)

    def record(self, start: float, category: str, code: str | None = None, reason: str | None = None,
               reason_text: str | None = None) -> None:
        """The state is ``category`` from ``start`` on (a new reason of the same stop updates the segment)."""
        if self._segments:
            last = self._segments[-1]
            if start < last.start:
                return
            if last.category == category and last.code == code:
                if (last.reason, last.reason_text) != (reason, reason_text):
                    self._segments[-1] = Segment(last.start, None, category, code, reason, reason_text)
                return
            self._segments[-1] = Segment(last.start, start, last.category, last.code, last.reason, last.reason_text)
        self._segments.append(Segment(start, None, category, code, reason, reason_text))

    def segments(self, start: float, end: float) -> list[Segment]:
        """The segments overlapping ``[start, end)``, clipped to it (an open one ends at ``end``)."""
        out = []
        for seg in self._segments:
            seg_end = end if seg.end is None else seg.end
            if seg_end <= start or seg.start >= end:
                continue
            out.append(Segment(max(seg.start, start), min(seg_end, end), seg.category, seg.code, seg.reason,
                               seg.reason_text))
        return out

    def __len__(self) -> int:
        return len(self._segments)
