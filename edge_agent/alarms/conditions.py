"""Detectors of alarm conditions: limits with deadband and on-delay, and conditions lasting too long.

Each detector is fed values or facts with their instants and answers ``True``
(the condition became active), ``False`` (it cleared) or ``None`` (no change).
No clock: ``tick(now)`` lets time pass without new data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edge_agent.profiles import AlarmLimit

__all__ = ["DurationCheck", "LevelCheck", "levels_of"]

_LEVELS = (("hihi", True), ("hi", True), ("lo", False), ("lolo", False))


@dataclass
class LevelCheck:
    """One limit of a tag (``hi``: value above ``limit``; ``lo``: below).

    Becomes active once the value has been past the limit for ``on_delay_s``
    (measured from the first sample past it); clears once the value is back
    inside the limit by more than ``deadband``.
    """

    condition: str
    limit: float
    high: bool
    deadband: float = 0.0
    on_delay_s: float = 0.0
    active: bool = False
    pending_since: float | None = None
    last_value: float | None = None

    def _beyond(self, value: float) -> bool:
        return value > self.limit if self.high else value < self.limit

    def _back(self, value: float) -> bool:
        return value < self.limit - self.deadband if self.high else value > self.limit + self.deadband

    def update(self, value: float, ts: float) -> bool | None:
        if not math.isfinite(value):
            return None
        self.last_value = value
        if self.active:
            if self._back(value):
                self.active = False
                return False
            return None
        if not self._beyond(value):
            self.pending_since = None
            return None
        if self.pending_since is None:
            self.pending_since = ts
        return self._due(ts)

    def tick(self, now: float) -> bool | None:
        """The value has not changed since the last sample: an on-delay may have run out."""
        if self.active or self.pending_since is None:
            return None
        return self._due(now)

    def _due(self, now: float) -> bool | None:
        assert self.pending_since is not None
        if now - self.pending_since >= self.on_delay_s:
            self.active = True
            self.pending_since = None
            return True
        return None


def levels_of(limit: AlarmLimit) -> list[LevelCheck]:
    """The checks of one ``[[alarms]]`` entry of a profile, most severe first."""
    out = []
    for name, high in _LEVELS:
        value = getattr(limit, name)
        if value is not None:
            out.append(LevelCheck(name, float(value), high, limit.deadband, limit.on_delay_s))
    return out


@dataclass
class DurationCheck:
    """A fact that is an alarm once it has lasted ``after_s`` (a stop, a lost connection)."""

    after_s: float
    present_since: float | None = None
    active: bool = False

    def set(self, present: bool, since: float, now: float) -> bool | None:
        """The fact is (``present``) or is not, since ``since``; ``now`` is the current instant."""
        if not present:
            self.present_since = None
            if self.active:
                self.active = False
                return False
            return None
        if self.present_since is None or since != self.present_since:
            self.present_since = since
        return self.tick(now)

    def tick(self, now: float) -> bool | None:
        if self.active or self.present_since is None:
            return None
        if now - self.present_since >= self.after_s:
            self.active = True
            return True
        return None
