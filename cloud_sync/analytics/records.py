"""Events as the analytics see them, and the rules the pure and the SQL implementations share.

* **Matching a step**: same kind, and every ``where`` attribute present with an equal
  JSON value of the same JSON type (``"1"`` is not ``1``, ``true`` is not ``1``;
  ``1`` equals ``1.0``); a list means any of its values.
* **Entity key**: ``device`` is ``gateway_id/device``, ``gateway`` the gateway id;
  any other name is an attribute whose value is text or an integer (other values:
  the event has no entity and is left out).
* **Periods**: UTC days, ISO weeks (from Monday) and calendar months, numbered from
  the epoch; an instant's day is ``floor(ts / 86400)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cloud_sync.analytics.api_models import StepSpec

__all__ = [
    "COLUMN_KEYS",
    "StoredEvent",
    "day_index",
    "entity_of",
    "in_window",
    "matches",
    "period_index",
    "period_label",
    "period_start",
]

COLUMN_KEYS = ("device", "gateway")
"""Entity keys that name the event's own fields rather than an attribute."""
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of the collector's ``events`` table."""

    gateway_id: str
    event_id: str
    ts: float
    device: str
    kind: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    seq: int = 0


def _same(stored: Any, wanted: Any) -> bool:
    if isinstance(wanted, bool):
        return isinstance(stored, bool) and stored is wanted
    if isinstance(wanted, int | float):
        return isinstance(stored, int | float) and not isinstance(stored, bool) and stored == wanted
    return isinstance(stored, str) and stored == wanted


def matches(event: StoredEvent, step: StepSpec) -> bool:
    """Whether ``event`` is an event of ``step`` (kind and attribute filters)."""
    if event.kind != step.kind:
        return False
    for name, wanted in step.where.items():
        if name not in event.attributes:
            return False
        stored = event.attributes[name]
        options = wanted if isinstance(wanted, list) else [wanted]
        if not any(_same(stored, w) for w in options):
            return False
    return True


def entity_of(event: StoredEvent, key: str) -> str | None:
    """The entity ``event`` is about under ``key``, or ``None``."""
    if key == "device":
        return f"{event.gateway_id}/{event.device}"
    if key == "gateway":
        return event.gateway_id
    value = event.attributes.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def in_window(events: Iterable[StoredEvent], start: float | None, end: float, gateway: str | None) -> list[StoredEvent]:
    """Events with ``start <= ts < end`` (no lower bound for ``None``), of ``gateway`` when given."""
    return [
        e
        for e in events
        if (start is None or e.ts >= start) and e.ts < end and (gateway is None or e.gateway_id == gateway)
    ]


def day_index(ts: float) -> int:
    """The UTC day of ``ts``, counted from 1970-01-01."""
    return math.floor(ts / 86400.0)


def period_index(ts: float, period: str) -> int:
    """The day, ISO week (Monday first) or month of ``ts``, counted from the epoch."""
    day = day_index(ts)
    if period == "day":
        return day
    if period == "week":
        return (day + 3) // 7  # 1970-01-01 was a Thursday
    civil = _EPOCH + timedelta(days=day)
    return civil.year * 12 + civil.month - 1


def _first_day(index: int, period: str) -> date:
    if period == "day":
        return _EPOCH + timedelta(days=index)
    if period == "week":
        return _EPOCH + timedelta(days=7 * index - 3)
    return date(index // 12, index % 12 + 1, 1)


def period_start(index: int, period: str) -> float:
    """Epoch seconds at which period ``index`` starts."""
    first = _first_day(index, period)
    return datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()


def period_label(index: int, period: str) -> str:
    """``YYYY-MM-DD`` of the first day (day, week) or ``YYYY-MM`` (month)."""
    first = _first_day(index, period)
    return first.strftime("%Y-%m") if period == "month" else first.isoformat()
