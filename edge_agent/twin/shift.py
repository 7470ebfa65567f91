"""When the current shift started, from clock times of shift starts in the gateway's local time.

Used for "parts this shift" and the timeline when no OEE engine with its calendar is wired.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta, tzinfo

__all__ = ["shift_start"]


def shift_start(now: float, starts: Sequence[str], tz: tzinfo | None = None) -> float:
    """The latest shift start at or before ``now`` (epoch seconds); local midnight without starts."""
    local = datetime.fromtimestamp(now, tz) if tz is not None else datetime.fromtimestamp(now).astimezone()
    clock = sorted(time(int(h), int(m)) for h, m in (s.split(":") for s in starts)) or [time(0, 0)]
    best: datetime | None = None
    for day in (local.date(), local.date() - timedelta(days=1)):
        for at in clock:
            candidate = datetime.combine(day, at, tzinfo=local.tzinfo)
            if candidate <= local and (best is None or candidate > best):
                best = candidate
        if best is not None:
            break
    assert best is not None
    return best.timestamp()
