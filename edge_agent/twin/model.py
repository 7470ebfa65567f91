"""The values a twin holds and the change sets its updates return.

All are frozen and JSON-ready through ``as_dict``; instants are epoch seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from edge_agent.model import Quality, Value

__all__ = [
    "CATEGORIES",
    "ChangeSet",
    "ConnectionInfo",
    "HealthFigures",
    "MachineState",
    "OeeFigures",
    "Parts",
    "ReportedValue",
    "Setpoint",
    "SetpointStatus",
]

CATEGORIES = ("running", "unplanned_stop", "planned_stop", "changeover", "excluded", "unknown")
SetpointStatus = Literal["requested", "written", "confirmed", "failed", "refused"]


@dataclass(frozen=True, slots=True)
class ReportedValue:
    """The latest value of one tag, with its unit, quality and rate of change (per second)."""

    value: Value
    ts: float
    quality: Quality = Quality.GOOD
    unit: str = ""
    rate: float | None = None
    stale: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value, "unit": self.unit, "ts": self.ts, "quality": self.quality.name.lower(),
            "rate": self.rate, "stale": self.stale,
        }


@dataclass(frozen=True, slots=True)
class MachineState:
    """The machine's state category since when, and the reason of a stop."""

    category: str = "unknown"
    code: str | None = None
    since: float | None = None
    reason: str | None = None
    reason_text: str | None = None
    stale: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "category": self.category, "code": self.code, "since": self.since, "reason": self.reason,
            "reason_text": self.reason_text, "stale": self.stale,
        }


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """The connector's view of the device: starting, connected, disconnected or stopped."""

    state: str = "starting"
    since: float | None = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "since": self.since, "last_error": self.last_error}


@dataclass(frozen=True, slots=True)
class OeeFigures:
    """Live OEE of the current shift (from the OEE engine), ratios 0..1 and losses in seconds."""

    availability: float
    performance: float
    quality: float
    oee: float
    good: int = 0
    scrap: int = 0
    target: int | None = None
    window_from: float | None = None
    losses: Mapping[str, float] = field(default_factory=dict)
    mtbf_s: float | None = None
    mttr_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "availability": self.availability, "performance": self.performance, "quality": self.quality,
            "oee": self.oee, "good": self.good, "scrap": self.scrap, "target": self.target,
            "window_from": self.window_from, "losses": dict(self.losses), "mtbf_s": self.mtbf_s,
            "mttr_s": self.mttr_s,
        }


@dataclass(frozen=True, slots=True)
class HealthFigures:
    """Predictive maintenance view: a health index 0..100 and whether an anomaly is showing."""

    index: float | None = None
    anomaly: bool = False
    score: float | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "anomaly": self.anomaly, "score": self.score, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Parts:
    """Parts made this shift: from OEE when present, else counted from the counters since ``since``."""

    good: int = 0
    scrap: int = 0
    target: int | None = None
    since: float | None = None
    source: str = "counters"

    def as_dict(self) -> dict[str, Any]:
        return {
            "good": self.good, "scrap": self.scrap, "target": self.target, "since": self.since,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class Setpoint:
    """A setpoint requested through the guarded write path, and how far it got."""

    id: str
    tag: str
    value: Value
    user: str
    requested_at: float
    status: SetpointStatus = "requested"
    detail: str = ""
    updated_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "tag": self.tag, "value": self.value, "user": self.user,
            "requested_at": self.requested_at, "status": self.status, "detail": self.detail,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """What one update changed: ``{path: new value}`` with paths like ``reported.spindle_temp``."""

    device: str
    ts: float
    changes: Mapping[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def merge(self, other: ChangeSet) -> ChangeSet:
        if not other.changes:
            return self
        return ChangeSet(self.device, max(self.ts, other.ts), {**self.changes, **other.changes})

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "ts": self.ts, "changes": dict(self.changes)}
