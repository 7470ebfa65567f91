"""History of a tag for charts: downsampling to at most N points, and a query on the SQLite buffer.

Two downsamplers, both keeping the first and last instants:

* :func:`minmax` — buckets of equal time, each reported as (start, avg, min, max):
  spikes survive, good for dense data and band charts;
* :func:`lttb` — Largest-Triangle-Three-Buckets: N real points that keep the visual shape.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from edge_agent.model import Value

__all__ = ["SqliteHistory", "lttb", "minmax", "numeric"]


def numeric(points: Sequence[tuple[float, Value]]) -> list[tuple[float, float]]:
    """The numeric points (booleans as 0/1), in time order; text values are left out."""
    out = []
    for ts, value in points:
        if isinstance(value, bool):
            out.append((ts, 1.0 if value else 0.0))
        elif isinstance(value, int | float) and math.isfinite(value):
            out.append((ts, float(value)))
    out.sort(key=lambda p: p[0])
    return out


def minmax(points: Sequence[tuple[float, float]], n: int, start: float | None = None,
           end: float | None = None) -> list[tuple[float, float, float, float]]:
    """At most ``n`` buckets of equal time over ``[start, end]``: (bucket start, avg, min, max); empty ones left out."""
    if not points or n < 1:
        return []
    lo = points[0][0] if start is None else start
    hi = points[-1][0] if end is None else end
    if len(points) <= n:
        return [(t, v, v, v) for t, v in points]
    width = (hi - lo) / n if hi > lo else 1.0
    buckets: dict[int, list[float]] = {}
    first_ts: dict[int, float] = {}
    for t, v in points:
        i = min(n - 1, max(0, int((t - lo) / width)))
        acc = buckets.get(i)
        if acc is None:
            buckets[i] = [v, v, v, 1.0]
            first_ts[i] = t
        else:
            acc[0] += v
            acc[1] = min(acc[1], v)
            acc[2] = max(acc[2], v)
            acc[3] += 1
    return [(first_ts[i], s / c, mn, mx) for i, (s, mn, mx, c) in sorted(buckets.items())]


def lttb(points: Sequence[tuple[float, float]], n: int) -> list[tuple[float, float]]:
    """``n`` of the points chosen by Largest-Triangle-Three-Buckets (all of them if there are fewer)."""
    size = len(points)
    if n >= size:
        return list(points)
    if n < 3:
        return [points[0], points[-1]][: max(n, 0)]
    out = [points[0]]
    every = (size - 2) / (n - 2)
    a = 0
    for i in range(n - 2):
        lo, hi = int(i * every) + 1, int((i + 1) * every) + 1
        nxt_lo, nxt_hi = hi, min(int((i + 2) * every) + 1, size)
        if nxt_lo >= nxt_hi:
            nxt_lo, nxt_hi = size - 1, size
        avg_t = sum(p[0] for p in points[nxt_lo:nxt_hi]) / (nxt_hi - nxt_lo)
        avg_v = sum(p[1] for p in points[nxt_lo:nxt_hi]) / (nxt_hi - nxt_lo)
        at, av = points[a]
        best, best_area = lo, -1.0
        for j in range(lo, hi):
            t, v = points[j]
            area = abs((at - avg_t) * (v - av) - (at - t) * (avg_v - av))
            if area > best_area:
                best, best_area = j, area
        out.append(points[best])
        a = best
    out.append(points[-1])
    return out


class SqliteHistory:
    """A :class:`~edge_agent.status.providers.HistoryQuery` reading the buffer file through its own
    read-only connection (WAL lets it read while the writer writes), in a worker thread.

    Fast with an index on ``samples(device, tag, ts)``; without one each query scans the table.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    async def __call__(self, device: str, tag: str, start: float, end: float,
                       limit: int) -> Sequence[tuple[float, Value]]:
        return await asyncio.to_thread(self._query, device, tag, start, end, limit)

    def _query(self, device: str, tag: str, start: float, end: float, limit: int) -> list[tuple[float, Value]]:
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        try:
            cur = conn.execute(
                "SELECT ts, value FROM samples WHERE device = ? AND tag = ? AND ts >= ? AND ts <= ? "
                "ORDER BY ts LIMIT ?", (device, tag, start, end, limit),
            )
            return [(float(ts), value) for ts, value in cur]
        finally:
            conn.close()
