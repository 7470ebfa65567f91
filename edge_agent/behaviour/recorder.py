"""What the agent keeps for behaviour analytics: recent events, open sessions, and which periods are rolled up.

:class:`BehaviourRecorder` has no clock and does no I/O. The agent passes it every event
it records and the samples of energy tags, and calls :meth:`~BehaviourRecorder.tick` now
and then (say every minute) with the time; both return the events to record in turn:
session summaries as sessions close, and ``machine_profile`` / ``alarm_kpis`` events for
every hour, day or shift that has ended since the last tick.

Memory is bounded: events older than ``keep_s`` are dropped (except raises of alarms whose
condition has not gone since, which the stale-alarm KPI needs), and at most ``max_events`` are kept
(the oldest go first; :attr:`~BehaviourRecorder.dropped` counts them).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from typing import Literal

from edge_agent.behaviour import kinds as k
from edge_agent.behaviour.alarms import AlarmOptions
from edge_agent.behaviour.machine import EnergyReading, MachineOptions
from edge_agent.behaviour.periods import Period, ShiftLike, periods, shift_periods
from edge_agent.behaviour.rollup import MACHINE_KINDS, rollup
from edge_agent.behaviour.sessions import SessionOptions, SessionTracker
from edge_agent.model import Event, Sample

__all__ = ["BehaviourRecorder", "RecorderOptions"]

_KEPT = MACHINE_KINDS | k.ALARM_KINDS


@dataclass(frozen=True)
class RecorderOptions:
    """How the agent's behaviour analytics run.

    ``rollups``: the calendar periods to roll up; ``shifts(start, end)``: the shift occurrences
    (``Calendar.shifts``) to roll up per shift as well; ``machines``: per device, its location,
    ideal cycle time and micro-stop limit; ``energy_tags``: per device, its cumulative kWh tag.
    """

    sessions: SessionOptions = field(default_factory=SessionOptions)
    rollups: tuple[Literal["hour", "day"], ...] = ("hour", "day")
    tz: tzinfo = UTC
    shifts: Callable[[float, float], Sequence[ShiftLike]] | None = None
    machines: Mapping[str, MachineOptions] = field(default_factory=dict)
    energy_tags: Mapping[str, str] = field(default_factory=dict)
    alarms: AlarmOptions = field(default_factory=AlarmOptions)
    positions: tuple[str, ...] = ()
    keep_s: float = 2 * 86_400.0
    max_events: int = 200_000
    delay_s: float = 0.0
    """A period is rolled up once it ended ``delay_s`` ago, so that events about its end (a stop's late
    reason, parts held back) are in."""


class BehaviourRecorder:
    """Sessions and behaviour profiles of one gateway, fed by the agent (module docstring)."""

    def __init__(self, options: RecorderOptions, started: float) -> None:
        self.options = options
        self.sessions = SessionTracker(options.sessions)
        self.dropped = 0
        self._events: deque[Event] = deque()
        self._energy: dict[str, deque[EnergyReading]] = {}
        self._gone: dict[str, float] = {}  # per alarm (or occurrence): when its condition last went
        # periods are rolled up from the first one that starts after the agent started
        self._done: dict[str, float] = {kind: started for kind in (*options.rollups, "shift")}

    def on_event(self, event: Event) -> list[Event]:
        """Take a recorded event; return the session summaries it closed, to record (feeding them back is harmless)."""
        if event.kind in _KEPT:
            self._events.append(event)
            if event.kind in (k.ALARM_CLEARED, k.ALARM_RETURNED):
                key = _alarm_key(event)
                self._gone[key] = max(self._gone.get(key, event.ts), event.ts)
            while len(self._events) > self.options.max_events:
                self._events.popleft()
                self.dropped += 1
        return self.sessions.feed(event)

    def on_sample(self, sample: Sample) -> None:
        """Take one sample; those of a machine's energy tag are kept for energy per good part."""
        tag = self.options.energy_tags.get(sample.device)
        if tag == sample.tag and isinstance(sample.value, int | float) and not isinstance(sample.value, bool):
            readings = self._energy.setdefault(sample.device, deque(maxlen=self.options.max_events))
            readings.append((sample.ts, float(sample.value)))

    def tick(self, now: float) -> list[Event]:
        """Close timed-out sessions and roll up every period that ended by ``now - delay_s``; return the new events."""
        out = self.sessions.advance(now)
        until = now - self.options.delay_s
        due: list[Period] = []
        for kind in self.options.rollups:
            ended = periods(kind, self._done[kind], until, self.options.tz)
            if ended:
                self._done[kind] = ended[-1].end
            due += ended
        if self.options.shifts is not None and until > self._done["shift"]:
            spans = [p for p in shift_periods(self.options.shifts(self._done["shift"], until)) if p.end <= until]
            spans = [p for p in spans if p.start >= self._done["shift"]]
            if spans:
                self._done["shift"] = max(p.end for p in spans)
            due += spans
        if due:
            energy = {device: list(readings) for device, readings in self._energy.items()}
            out += rollup(
                self._events,
                due,
                machines=self.options.machines,
                energy=energy,
                alarm_options=self.options.alarms,
                shift_of=self._shift_name if self.options.shifts is not None else None,
                positions=self.options.positions,
            )
        self._prune(now)
        return out

    def flush(self, now: float) -> list[Event]:
        """The agent stops: close every open session at ``now`` (runs end with ``end_of_data``)."""
        return self.sessions.flush(now)

    def _active_raise(self, event: Event) -> bool:
        """A raise whose condition has not gone since (the stale-alarm KPI needs it, however old)."""
        return event.kind == k.ALARM_RAISED and event.ts > self._gone.get(_alarm_key(event), float("-inf"))

    def _shift_name(self, ts: float) -> str | None:
        assert self.options.shifts is not None
        names = [s.name for s in self.options.shifts(ts, ts + 1.0) if s.start <= ts < s.end]
        return names[-1] if names else None

    def _prune(self, now: float) -> None:
        horizon = now - self.options.keep_s
        kept: Iterable[Event] = (e for e in self._events if e.ts >= horizon or self._active_raise(e))
        self._events = deque(kept)
        raised = {_alarm_key(e) for e in self._events if e.kind == k.ALARM_RAISED}
        self._gone = {key: ts for key, ts in self._gone.items() if key in raised}
        for readings in self._energy.values():
            while readings and readings[0][0] < horizon:
                readings.popleft()


def _alarm_key(event: Event) -> str:
    occurrence = event.attributes.get("occurrence_id")
    return occurrence if isinstance(occurrence, str) else str(event.attributes.get("alarm_id"))
