"""Alarm records, their ISA-18.2 states, settings and errors.

States (ISA-18.2 alarm state transition diagram)::

            condition active                 acknowledge
    NORMAL ------------------> UNACK ------------------------> ACKED
      ^  ^                      |  ^                              |
      |  |  acknowledge         |  | condition active             | condition clear
      |  +------------ RTN_UNACK <--+ (re-raise)                   |
      |                 ^      condition clear                    |
      +-----------------+-----------------------------------------+

Shelving (by an operator, for a time) and suppression (by design, while the
machine is in a planned stop) take an alarm out of annunciation whatever its
state; the process condition is still followed, and when the alarm comes back
it is raised again if the condition is active, else it is normal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from edge_agent.errors import EdgeError
from edge_agent.model import Value
from edge_agent.profiles import Strict

__all__ = [
    "Alarm",
    "AlarmError",
    "AlarmNotFound",
    "AlarmRefused",
    "AlarmSettings",
    "AlarmSource",
    "AlarmState",
    "Priority",
]

Priority = Literal["urgent", "high", "medium", "low"]
AlarmSource = Literal["limit", "state", "connection", "anomaly"]
Category = Literal["running", "unplanned_stop", "planned_stop", "changeover", "excluded"]
_SUPPRESS_IN: tuple[Category, ...] = ("planned_stop",)
_SOURCES: tuple[AlarmSource, ...] = ("limit", "state", "connection", "anomaly")
_PRIORITIES: dict[str, Priority] = {
    "hihi": "high", "lolo": "high", "hi": "medium", "lo": "medium", "breakdown": "high",
    "connection_lost": "medium", "anomaly": "low",
}


class AlarmError(EdgeError):
    """An alarm operation that cannot be done."""


class AlarmNotFound(AlarmError, KeyError):
    """No alarm has this id."""


class AlarmRefused(AlarmError, ValueError):
    """The operation does not apply to the alarm in its state (nothing to acknowledge, already shelved...)."""


class AlarmState(StrEnum):
    NORMAL = "normal"
    UNACK = "unack"
    ACKED = "acked"
    RTN_UNACK = "rtn_unack"


class AlarmSettings(Strict):
    """The ``[alarms]`` table of the agent config.

    ```toml
    [alarms]
    breakdown_after_s = 300        # an unplanned stop longer than this raises a state alarm
    connection_after_s = 15        # a device unreachable this long raises a connection alarm
    suppress_in = ["planned_stop"] # machine states that suppress the device's alarms
    shelve_max_s = 28800           # longest shelving an operator may ask for
    chatter_raises = 3             # this many raises ...
    chatter_window_s = 60          # ... within this many seconds flag the alarm as chattering
    ```
    """

    breakdown_after_s: float = Field(default=300.0, gt=0)
    connection_after_s: float = Field(default=15.0, ge=0)
    suppress_in: list[Category] = Field(default_factory=lambda: list(_SUPPRESS_IN))
    suppress_sources: list[AlarmSource] = Field(default_factory=lambda: list(_SOURCES))
    shelve_max_s: float = Field(default=8 * 3600.0, gt=0)
    shelve_default_s: float = Field(default=3600.0, gt=0)
    chatter_raises: int = Field(default=3, ge=2)
    chatter_window_s: float = Field(default=60.0, gt=0)
    max_alarms: int = Field(default=5000, ge=10, description="alarm records kept (anomaly alarms are made on demand)")
    priorities: dict[str, Priority] = Field(
        default_factory=lambda: dict(_PRIORITIES),
        description="priority per condition",
    )


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm (a condition of one tag of one device) and where it stands in its lifecycle."""

    id: str
    device: str
    tag: str
    source: AlarmSource
    condition: str
    priority: Priority
    message: str
    state: AlarmState = AlarmState.NORMAL
    active: bool = False
    value: Value | None = None
    limit: float | None = None
    raised_at: float | None = None
    cleared_at: float | None = None
    acked_at: float | None = None
    acked_by: str | None = None
    ack_note: str = ""
    shelved_until: float | None = None
    shelved_by: str | None = None
    shelve_note: str = ""
    suppressed: bool = False
    raises: tuple[float, ...] = ()
    chattering: bool = False
    occurrences: int = 0
    updated_at: float | None = None

    @property
    def shelved(self) -> bool:
        return self.shelved_until is not None

    @property
    def status(self) -> str:
        """What an operator sees: shelved or suppressed first, else the lifecycle state."""
        if self.shelved:
            return "shelved"
        if self.suppressed:
            return "suppressed"
        return self.state.value

    @property
    def needs_attention(self) -> bool:
        """Shown in the active list: not normal, or shelved/suppressed with the condition present."""
        return self.state != AlarmState.NORMAL or self.shelved or (self.suppressed and self.active)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "device": self.device, "tag": self.tag, "source": self.source,
            "condition": self.condition, "priority": self.priority, "message": self.message,
            "state": self.state.value, "status": self.status, "active": self.active, "value": self.value,
            "limit": self.limit, "raised_at": self.raised_at, "cleared_at": self.cleared_at,
            "acked_at": self.acked_at, "acked_by": self.acked_by, "ack_note": self.ack_note,
            "shelved_until": self.shelved_until, "shelved_by": self.shelved_by, "shelve_note": self.shelve_note,
            "suppressed": self.suppressed, "chattering": self.chattering, "occurrences": self.occurrences,
            "updated_at": self.updated_at,
        }

    def summary(self) -> dict[str, Any]:
        """The short form a twin carries in ``derived.alarms``."""
        return {
            "id": self.id, "tag": self.tag, "condition": self.condition, "priority": self.priority,
            "status": self.status, "active": self.active, "message": self.message, "raised_at": self.raised_at,
            "chattering": self.chattering,
        }
