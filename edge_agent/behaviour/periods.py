"""The periods behaviour profiles are rolled up over: hours, days (in a time zone) and shifts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Literal, Protocol

__all__ = ["Period", "PeriodKind", "ShiftLike", "periods", "shift_periods"]

PeriodKind = Literal["hour", "shift", "day"]


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open stretch ``[start, end)`` of epoch seconds; ``shift`` names the shift of a shift period."""

    kind: PeriodKind
    start: float
    end: float
    shift: str | None = None

    def __contains__(self, ts: float) -> bool:
        return self.start <= ts < self.end


class ShiftLike(Protocol):
    """A shift occurrence, as :meth:`edge_agent.oee.Calendar.shifts` returns them."""

    @property
    def name(self) -> str: ...

    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...


def periods(kind: Literal["hour", "day"], start: float, end: float, tz: tzinfo = UTC) -> list[Period]:
    """The complete hours or days (midnight to midnight in ``tz``) inside ``[start, end)``, in order.

    Hours start on the hour of ``tz``; a day over a DST change lasts 23 or 25 hours.
    """
    out: list[Period] = []
    local = datetime.fromtimestamp(start, tz)
    if kind == "hour":
        begin = local.replace(minute=0, second=0, microsecond=0).timestamp()
        while begin + 3600 <= end:
            if begin >= start:
                out.append(Period("hour", begin, begin + 3600))
            begin += 3600
        return out
    day = local.date()
    while True:
        begin = datetime.combine(day, time(0), tz).timestamp()
        following = datetime.combine(day + timedelta(days=1), time(0), tz).timestamp()
        if following > end:
            return out
        if begin >= start:
            out.append(Period("day", begin, following))
        day += timedelta(days=1)


def shift_periods(spans: Iterable[ShiftLike]) -> list[Period]:
    """One period per shift occurrence (``Calendar.shifts(start, end)``), in start order."""
    return sorted((Period("shift", s.start, s.end, s.name) for s in spans), key=lambda p: (p.start, p.end))
