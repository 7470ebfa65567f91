"""All alarms of a gateway: conditions detected from samples, machine state, connection and anomalies,
each alarm run through the ISA-18.2 lifecycle (:mod:`edge_agent.alarms.lifecycle`).

Every method takes the instant ``now`` (or the sample's) and returns the events
it caused, in order. No clock, no I/O. Memory is bounded by the configured
alarms plus at most ``max_alarms`` records in all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from edge_agent.alarms.conditions import DurationCheck, LevelCheck, levels_of
from edge_agent.alarms.lifecycle import (
    ChatterRule,
    Transition,
    acknowledge,
    activate,
    deactivate,
    expire,
    shelve,
    suppress,
    unshelve,
    unsuppress,
)
from edge_agent.alarms.model import Alarm, AlarmNotFound, AlarmRefused, AlarmSettings, AlarmSource
from edge_agent.model import Event, Quality, Sample, Value
from edge_agent.profiles import AlarmLimit

__all__ = ["PRIORITY_RANK", "AlarmEngine"]

PRIORITY_RANK = {"urgent": 0, "high": 1, "medium": 2, "low": 3}
_LABEL = {"hihi": "HI-HI", "hi": "HI", "lo": "LO", "lolo": "LO-LO"}
_UNITS = {"degC": "°C", "degF": "°F"}
STATE_TAG = "state"
CONNECTION_TAG = "connection"


class AlarmEngine:
    """Detects alarm conditions and keeps every alarm's lifecycle state (see the module docstring)."""

    def __init__(
        self,
        limits: Mapping[str, Sequence[AlarmLimit]],
        settings: AlarmSettings | None = None,
        units: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.settings = settings or AlarmSettings()
        self.rule = ChatterRule(self.settings.chatter_raises, self.settings.chatter_window_s)
        self.alarms: dict[str, Alarm] = {}
        self.refused = 0
        self._levels: dict[tuple[str, str], list[tuple[str, LevelCheck]]] = {}
        self._breakdown: dict[str, DurationCheck] = {}
        self._connection: dict[str, DurationCheck] = {}
        self._category: dict[str, str] = {}
        units = units or {}
        for device, entries in limits.items():
            self.add_device(device, entries, units.get(device, {}))

    def add_device(self, device: str, entries: Sequence[AlarmLimit], units: Mapping[str, str]) -> None:
        """Define the limit alarms of one device (at start, or when a reload adds it)."""
        for entry in entries:
            unit = units.get(entry.tag, "")
            unit = _UNITS.get(unit, unit)
            name = entry.tag.replace("_", " ").capitalize()
            for check in levels_of(entry):
                word = "above" if check.high else "below"
                suffix = f" {unit}" if unit else ""
                message = f"{name} {word} {_LABEL[check.condition]} limit {check.limit:g}{suffix}"
                alarm = self._define(device, entry.tag, "limit", check.condition, message, check.limit)
                self._levels.setdefault((device, entry.tag), []).append((alarm.id, check))

    def remove_device(self, device: str) -> None:
        """Forget a device a reload removed: its alarms, checks and state."""
        for alarm_id in [a for a, alarm in self.alarms.items() if alarm.device == device]:
            del self.alarms[alarm_id]
        for key in [k for k in self._levels if k[0] == device]:
            del self._levels[key]
        self._breakdown.pop(device, None)
        self._connection.pop(device, None)
        self._category.pop(device, None)

    # -- records ------------------------------------------------------------------------------

    def _define(self, device: str, tag: str, source: AlarmSource, condition: str, message: str,
                limit: float | None = None) -> Alarm:
        alarm_id = f"{device}:{tag}:{condition}"
        existing = self.alarms.get(alarm_id)
        if existing is not None:
            return existing
        priority = self.settings.priorities.get(condition, "medium")
        suppressed = self._suppressing(device) and source in self.settings.suppress_sources
        alarm = Alarm(alarm_id, device, tag, source, condition, priority, message, limit=limit,
                      suppressed=suppressed)
        self.alarms[alarm_id] = alarm
        return alarm

    def _suppressing(self, device: str) -> bool:
        return self._category.get(device) in self.settings.suppress_in

    def _apply(self, transition: Transition) -> list[Event]:
        self.alarms[transition.alarm.id] = transition.alarm
        return list(transition.events)

    def _set(self, alarm_id: str, active: bool, now: float, value: Value | None = None,
             limit: float | None = None) -> list[Event]:
        alarm = self.alarms[alarm_id]
        if active:
            return self._apply(activate(alarm, now, value, limit, self.rule))
        return self._apply(deactivate(alarm, now, value))

    def get(self, alarm_id: str) -> Alarm:
        alarm = self.alarms.get(alarm_id)
        if alarm is None:
            raise AlarmNotFound(alarm_id)
        return alarm

    # -- conditions ---------------------------------------------------------------------------

    def on_sample(self, sample: Sample) -> list[Event]:
        """A value of a tag with limits: each limit's condition may start or end."""
        checks = self._levels.get((sample.device, sample.tag))
        if not checks or sample.quality == Quality.BAD:
            return []
        value = sample.value
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return []
        events: list[Event] = []
        for alarm_id, check in checks:
            change = check.update(float(value), sample.ts)
            if change is not None:
                events += self._set(alarm_id, change, sample.ts, value, check.limit)
            elif check.active:
                self.alarms[alarm_id] = activate(self.alarms[alarm_id], sample.ts, value, None, self.rule).alarm
        return events

    def on_state(self, device: str, category: str, since: float, now: float) -> list[Event]:
        """The machine's state category (since ``since``): breakdown alarms and planned-stop suppression."""
        previous = self._category.get(device)
        self._category[device] = category
        events: list[Event] = []
        suppressing = category in self.settings.suppress_in
        if (previous in self.settings.suppress_in) != suppressing or previous is None:
            events += self._suppress_device(device, suppressing, category, now)
        check = self._breakdown.get(device)
        if check is None:
            check = self._breakdown[device] = DurationCheck(self.settings.breakdown_after_s)
            self._define(device, STATE_TAG, "state", "breakdown",
                         f"Stopped (unplanned) for more than {_duration(self.settings.breakdown_after_s)}")
        change = check.set(category == "unplanned_stop", since, now)
        if change is not None:
            events += self._set(f"{device}:{STATE_TAG}:breakdown", change, now, category)
        return events

    def _suppress_device(self, device: str, on: bool, category: str, now: float) -> list[Event]:
        events: list[Event] = []
        for alarm in list(self.alarms.values()):
            if alarm.device != device or alarm.source not in self.settings.suppress_sources:
                continue
            if on:
                events += self._apply(suppress(alarm, now, category))
            else:
                events += self._apply(unsuppress(alarm, now, self.rule))
        return events

    def on_connection(self, device: str, connected: bool, since: float, now: float) -> list[Event]:
        """The device's connection: lost for ``connection_after_s`` raises an alarm, back clears it."""
        check = self._connection.get(device)
        if check is None:
            check = self._connection[device] = DurationCheck(self.settings.connection_after_s)
            self._define(device, CONNECTION_TAG, "connection", "connection_lost",
                         f"No connection for more than {_duration(self.settings.connection_after_s)}")
        change = check.set(not connected, since, now)
        if change is None:
            return []
        return self._set(f"{device}:{CONNECTION_TAG}:connection_lost", change, now)

    def on_anomaly(self, device: str, tag: str, active: bool, now: float, score: float | None = None,
                   detail: str = "") -> list[Event]:
        """The anomaly detector's verdict on one tag (input hook of predictive maintenance)."""
        alarm_id = f"{device}:{tag}:anomaly"
        if alarm_id not in self.alarms:
            if not active:
                return []
            if len(self.alarms) >= self.settings.max_alarms:
                self.refused += 1
                return []
            name = tag.replace("_", " ").capitalize()
            self._define(device, tag, "anomaly", "anomaly", detail or f"{name}: unusual behaviour")
        return self._set(alarm_id, active, now, score)

    def tick(self, now: float) -> list[Event]:
        """Time passing: on-delays, stops and outages lasting long enough, shelving expiring, chatter ending."""
        events: list[Event] = []
        for checks in self._levels.values():
            for alarm_id, level in checks:
                if level.tick(now):
                    events += self._set(alarm_id, True, now, level.last_value, level.limit)
        for device, check in self._breakdown.items():
            if check.tick(now):
                events += self._set(f"{device}:{STATE_TAG}:breakdown", True, now, self._category.get(device))
        for device, check in self._connection.items():
            if check.tick(now):
                events += self._set(f"{device}:{CONNECTION_TAG}:connection_lost", True, now)
        for alarm in list(self.alarms.values()):
            if alarm.shelved or alarm.chattering:
                events += self._apply(expire(alarm, now, self.rule))
        return events

    # -- operator actions ---------------------------------------------------------------------

    def acknowledge(self, alarm_id: str, user: str, now: float, note: str = "") -> list[Event]:
        return self._apply(acknowledge(self.get(alarm_id), now, user, note))

    def shelve(self, alarm_id: str, user: str, now: float, duration_s: float | None = None,
               note: str = "") -> list[Event]:
        duration = self.settings.shelve_default_s if duration_s is None else duration_s
        if duration > self.settings.shelve_max_s:
            raise AlarmRefused(f"shelving is limited to {self.settings.shelve_max_s:g} s")
        return self._apply(shelve(self.get(alarm_id), now, user, duration, note))

    def unshelve(self, alarm_id: str, user: str, now: float) -> list[Event]:
        return self._apply(unshelve(self.get(alarm_id), now, user, self.rule))

    # -- views --------------------------------------------------------------------------------

    def select(self, state: str = "active", device: str | None = None) -> list[Alarm]:
        """Alarms needing attention (``active``) or all of them, most urgent and newest first."""
        chosen: Iterable[Alarm] = self.alarms.values()
        if device is not None:
            chosen = (a for a in chosen if a.device == device)
        if state == "active":
            chosen = (a for a in chosen if a.needs_attention)
        return sorted(chosen, key=_order)

    def summaries(self, device: str) -> list[dict[str, object]]:
        return [a.summary() for a in self.select("active", device)]


def _order(alarm: Alarm) -> tuple[int, int, float, str]:
    unacked = 0 if alarm.state.value in ("unack", "rtn_unack") else 1
    return (unacked, PRIORITY_RANK.get(alarm.priority, 9), -(alarm.raised_at or 0.0), alarm.id)


def _duration(seconds: float) -> str:
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"

