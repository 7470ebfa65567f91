"""Half-open time intervals ``(start, end)`` in epoch seconds: union, difference, overlap.

Every function takes and returns lists sorted by start whose intervals do not
overlap (except where a docstring says otherwise) and have ``start < end``.
"""

from __future__ import annotations

from collections.abc import Iterable

Interval = tuple[float, float]


def union(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, merged union of any intervals (touching intervals merge; empty ones vanish)."""
    out: list[Interval] = []
    for start, end in sorted(iv for iv in intervals if iv[1] > iv[0]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def subtract(base: list[Interval], holes: Iterable[Interval]) -> list[Interval]:
    """``base`` minus the union of ``holes``."""
    cuts = union(holes)
    if not cuts:
        return list(base)
    out: list[Interval] = []
    j = 0
    for start, end in base:
        while j < len(cuts) and cuts[j][1] <= start:
            j += 1
        k = j
        cursor = start
        while k < len(cuts) and cuts[k][0] < end:
            if cuts[k][0] > cursor:
                out.append((cursor, cuts[k][0]))
            cursor = max(cursor, cuts[k][1])
            k += 1
        if cursor < end:
            out.append((cursor, end))
    return out


def clip(intervals: list[Interval], start: float, end: float) -> list[Interval]:
    """The parts of ``intervals`` inside ``[start, end)``."""
    return [(max(a, start), min(b, end)) for a, b in intervals if b > start and a < end]


def total(intervals: Iterable[Interval]) -> float:
    """Summed length of disjoint intervals."""
    return sum(b - a for a, b in intervals)


class OverlapSweep:
    """Overlap of a disjoint sorted interval list with queries ``[a, b)`` given in increasing order of ``a``.

    Amortised O(1) per query when consecutive queries do not overlap, as the
    segments of a state timeline do.
    """

    def __init__(self, intervals: list[Interval]) -> None:
        self._intervals = intervals
        self._first = 0

    def overlap(self, start: float, end: float) -> float:
        ivs = self._intervals
        i = self._first
        while i < len(ivs) and ivs[i][1] <= start:
            i += 1
        self._first = i
        covered = 0.0
        while i < len(ivs) and ivs[i][0] < end:
            a, b = ivs[i]
            covered += min(b, end) - max(a, start)
            i += 1
        return covered
