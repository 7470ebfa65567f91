"""``health_rollup`` events: a device's health index, anomaly scores and RUL per completed hour and day (pure).

:class:`HealthPeriods` takes each evaluation of the index with its time (the newest sample behind it) and
returns the rollup of every period that evaluation closed: a period closes at the first evaluation at or
after its end, so a device that stops sending keeps its last period open until it speaks again. Hours
start on the hour and days at midnight of the time zone given (the shift calendar's).

Figures of a period: ``health_min``, ``health_mean`` (over the evaluations in the period, one per batch of
samples that changed the index) and ``health_last``; ``anomaly_max``, the highest smoothed anomaly score;
``anomaly_active_s``, how long an anomaly alarm was up (each evaluation's state holds until the next one);
``rul_last`` and ``rul_unit``, the last RUL estimate. Event ids come from device and period (as behaviour
profiles do), so a rollup computed again has the same id and the collector keeps one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

from edge_agent.behaviour import kinds as k
from edge_agent.behaviour.attributes import HealthRollup
from edge_agent.behaviour.periods import Period, PeriodKind
from edge_agent.behaviour.rollup import profile_id
from edge_agent.maintenance.health import HealthIndex
from edge_agent.model import Event

__all__ = ["HealthPeriods", "period_at"]


def period_at(kind: PeriodKind, ts: float, tz: tzinfo = UTC) -> Period:
    """The hour (on the hour of ``tz``) or day (midnight to midnight in ``tz``) holding ``ts``."""
    local = datetime.fromtimestamp(ts, tz)
    if kind == "hour":
        start = local.replace(minute=0, second=0, microsecond=0).timestamp()
        return Period("hour", start, start + 3600.0)
    if kind == "day":
        day = local.date()
        start = datetime.combine(day, time(0), tz).timestamp()
        return Period("day", start, datetime.combine(day + timedelta(days=1), time(0), tz).timestamp())
    raise ValueError(f"no period kind {kind!r} here (hour or day)")


@dataclass
class _Totals:
    period: Period
    count: int = 0
    total: float = 0.0
    low: float = 100.0
    last: float | None = None
    anomaly_max: float | None = None
    active_s: float = 0.0
    rul: float | None = None
    rul_unit: str | None = None

    def add(self, health: HealthIndex) -> None:
        self.count += 1
        self.total += health.index
        self.low = min(self.low, health.index)
        self.last = health.index
        if health.score is not None:
            self.anomaly_max = health.score if self.anomaly_max is None else max(self.anomaly_max, health.score)
        if health.rul is not None:
            self.rul, self.rul_unit = health.rul.value, health.rul.unit

    def event(self, device: str) -> Event:
        p = self.period
        attributes = HealthRollup.model_validate({
            "period": p.kind, "period_start": p.start, "period_end": p.end,
            "health_min": round(self.low, 1) if self.count else None,
            "health_mean": round(self.total / self.count, 2) if self.count else None,
            "health_last": self.last,
            "anomaly_max": None if self.anomaly_max is None else round(self.anomaly_max, 4),
            "anomaly_active_s": round(self.active_s, 3),
            "rul_last": None if self.rul is None else round(max(self.rul, 0.0), 2),
            "rul_unit": self.rul_unit,
        }).model_dump(mode="json")
        return Event(device, k.HEALTH_ROLLUP, attributes, p.end, profile_id(k.HEALTH_ROLLUP, device, p))


class HealthPeriods:
    """Open periods of one device and their running figures (bounded: one per period kind)."""

    def __init__(self, device: str, tz: tzinfo = UTC, kinds: Sequence[PeriodKind] = ("hour", "day")) -> None:
        self.device = device
        self.tz = tz
        self.kinds = tuple(kinds)
        self.open: dict[PeriodKind, _Totals] = {}
        self._last_ts: float | None = None
        self._active = False

    def add(self, ts: float, health: HealthIndex, anomaly_active: bool = False) -> list[Event]:
        """One evaluation at ``ts``; returns the rollups of the periods it closed (hours before days)."""
        if self._last_ts is not None and ts < self._last_ts:
            ts = self._last_ts  # a late sample counts in the period in progress
        out: list[Event] = []
        for kind in self.kinds:
            totals = self.open.get(kind)
            if totals is not None and ts >= totals.period.end:
                if self._active and self._last_ts is not None:
                    totals.active_s += max(0.0, totals.period.end - self._last_ts)
                out.append(totals.event(self.device))
                totals = None
            if totals is None:
                totals = self.open[kind] = _Totals(period_at(kind, ts, self.tz))
                if self._active and self._last_ts is not None:
                    totals.active_s += max(0.0, ts - max(self._last_ts, totals.period.start))
            elif self._active and self._last_ts is not None:
                totals.active_s += ts - self._last_ts
            totals.add(health)
        self._last_ts = ts
        self._active = anomaly_active
        return out
