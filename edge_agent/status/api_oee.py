"""``GET /api/v1/oee``: OEE per device over a window, split by hour, shift or day.

Figures come from the live OEE engines (the same code as ``edge-agent analyze oee``),
which keep about a week of state and counter history.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from datetime import time as dtime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from edge_agent.oee import ALWAYS, Calendar, OeeError
from edge_agent.status.auth import Session
from edge_agent.status.context import ctx_of, viewer

router = APIRouter()
Granularity = Literal["hour", "shift", "day", "none"]


def parse_time(text: str | None, default: float, name: str) -> float:
    if text is None or text == "":
        return default
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise HTTPException(400, f"{name}: not ISO 8601 or epoch seconds: {text!r}") from None
    if moment.tzinfo is None:
        raise HTTPException(400, f"{name}: give a UTC offset, e.g. {text}Z or {text}+01:00")
    return moment.timestamp()


def buckets(calendar: Calendar, start: float, end: float, granularity: Granularity) -> list[tuple[float, float]]:
    """The window cut into hours or days of the calendar's time zone, or into its shifts."""
    if granularity == "none":
        return [(start, end)]
    if granularity == "shift":
        return [(max(s.start, start), min(s.end, end)) for s in calendar.shifts(start, end)]
    tz = calendar.tz
    out = []
    if granularity == "hour":  # hours are absolute: a DST day has 23 or 25 of them
        edge = start - start % 3600.0
        while edge < end:
            lo, hi = max(edge, start), min(edge + 3600.0, end)
            out.append((lo, hi))
            edge += 3600.0
        return out
    day = datetime.fromtimestamp(start, tz).date()
    while True:
        lo_t = datetime.combine(day, dtime(0), tz).timestamp()
        if lo_t >= end:
            return out
        day = day + timedelta(days=1)
        hi_t = datetime.combine(day, dtime(0), tz).timestamp()
        lo, hi = max(lo_t, start), min(hi_t, end)
        if hi > lo:
            out.append((lo, hi))


@router.get("/api/v1/oee")
async def oee(
    request: Request,
    device: str | None = None,
    from_: str | None = Query(default=None, alias="from"),
    to: str | None = None,
    granularity: Granularity = "none",
    _: Session | None = Depends(viewer),
) -> dict[str, Any]:
    """OEE of one device (or every device with OEE signals) over [from, to) (default: the last hour)."""
    agent = ctx_of(request).agent
    engines = getattr(agent, "oee_engines", {})
    if device is not None and device not in engines:
        raise HTTPException(404, f"device '{device}' has no OEE signals (or does not exist)")
    now = time.time()
    end = parse_time(to, now, "to")
    start = parse_time(from_, end - 3600.0, "from")
    if end <= start:
        raise HTTPException(400, "from must be before to")
    if (end - start) / 3600.0 > 24 * 31:
        raise HTTPException(400, "the window is limited to 31 days")
    calendar: Calendar = getattr(agent.config, "calendar", ALWAYS)
    out: dict[str, list[dict[str, Any]]] = {}
    for name in [device] if device is not None else sorted(engines):
        rows = []
        engine = engines[name]
        for lo, hi in buckets(calendar, start, end, granularity):
            lo = max(lo, engine.history_from)  # the engine knows nothing before it started
            if hi <= lo:
                rows.append({"from": lo, "to": hi, "error": "before the history kept by the agent"})
                continue
            try:
                result = engine.result(lo, hi)
            except OeeError as exc:
                rows.append({"from": lo, "to": hi, "error": str(exc)})
                continue
            rows.append({"from": lo, "to": hi, **result.as_dict(calendar.tz)})
        out[name] = rows
    return {"granularity": granularity, "from": start, "to": end, "devices": out}
