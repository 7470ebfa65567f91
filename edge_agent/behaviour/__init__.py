"""Behaviour analytics at the edge: event kinds, sessions and behaviour profiles. Pure: no clock, no I/O.

Public API::

    validate_attributes(kind, attributes) -> model | None      # kinds.py, the catalogue of docs/events.md
    parse_event(data) -> EventEnvelope                         # envelope.py, schema version 1
    SessionTracker(options).feed(event) / .advance(now) / .flush(now) -> [summary events]
    sessions(events, now, options=None) -> [summary events]
    machine_profile(events, period, options=None, energy=None) -> MachineProfile
    alarm_kpis(events, period, options=None, shift_of=None, positions=()) -> [AlarmKpis]
    periods("hour" | "day", start, end, tz=UTC) -> [Period];  shift_periods(calendar.shifts(a, b))
    rollup(events, periods, machines=..., energy=..., ...) -> [machine_profile and alarm_kpis events]
    BehaviourRecorder(RecorderOptions(...), started).on_event(e) / .on_sample(s) / .tick(now) -> [events]

Definitions: docs/events.md.
"""

from edge_agent.behaviour.alarms import DEFAULT_POSITION, AlarmOptions, Occurrence, alarm_kpis, occurrences
from edge_agent.behaviour.attributes import AlarmKpis, Distribution, MachineProfile, ParetoEntry
from edge_agent.behaviour.envelope import EventEnvelope, InvalidEvent, envelope_of, event_of, parse_event
from edge_agent.behaviour.kinds import EVENT_SCHEMA_VERSION, KINDS, InvalidAttributes, validate_attributes
from edge_agent.behaviour.machine import EnergyReading, MachineOptions, energy_used, machine_profile
from edge_agent.behaviour.periods import Period, periods, shift_periods
from edge_agent.behaviour.recorder import BehaviourRecorder, RecorderOptions
from edge_agent.behaviour.rollup import profile_id, rollup
from edge_agent.behaviour.sessions import SessionOptions, SessionTracker, sessions, summary_id
from edge_agent.behaviour.stats import percentile

__all__ = [
    "DEFAULT_POSITION",
    "EVENT_SCHEMA_VERSION",
    "KINDS",
    "AlarmKpis",
    "AlarmOptions",
    "BehaviourRecorder",
    "Distribution",
    "EnergyReading",
    "EventEnvelope",
    "InvalidAttributes",
    "InvalidEvent",
    "MachineOptions",
    "MachineProfile",
    "Occurrence",
    "ParetoEntry",
    "Period",
    "RecorderOptions",
    "SessionOptions",
    "SessionTracker",
    "alarm_kpis",
    "energy_used",
    "envelope_of",
    "event_of",
    "machine_profile",
    "occurrences",
    "parse_event",
    "percentile",
    "periods",
    "profile_id",
    "rollup",
    "sessions",
    "shift_periods",
    "summary_id",
    "validate_attributes",
]
