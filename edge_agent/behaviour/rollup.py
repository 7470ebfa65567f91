"""Behaviour profiles as events: one ``machine_profile`` per machine and one ``alarm_kpis`` per operator
position for each period, ready to be recorded by the agent and synced.

Event ids are derived from what they describe (kind, device or position, period), so a
profile computed again -- after a restart, say -- has the same id and the collector's
analytics count it once.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

from edge_agent.behaviour import kinds as k
from edge_agent.behaviour.alarms import AlarmOptions, alarm_kpis
from edge_agent.behaviour.machine import EnergyReading, MachineOptions, machine_profile
from edge_agent.behaviour.periods import Period
from edge_agent.model import Event

__all__ = ["MACHINE_KINDS", "profile_id", "rollup"]

MACHINE_KINDS = frozenset({k.STATE_CHANGED, k.STOP_ENDED, k.PART_COUNT})
"""The kinds a machine profile is computed from; a device with any of them gets a profile."""

_NAMESPACE = uuid.UUID("0c6d1b8e-4a8f-4f62-9a49-2f3e3c7d5a01")


def profile_id(kind: str, subject: str, period: Period) -> str:
    """The id of a profile event: the same for the same kind, device or position, and period."""
    key = f"{kind}|{subject}|{period.kind}|{period.start!r}|{period.end!r}|{period.shift or ''}"
    return uuid.uuid5(_NAMESPACE, key).hex


def rollup(
    events: Iterable[Event],
    periods: Sequence[Period],
    *,
    machines: Mapping[str, MachineOptions] | None = None,
    energy: Mapping[str, Sequence[EnergyReading]] | None = None,
    alarm_options: AlarmOptions | None = None,
    shift_of: Callable[[float], str | None] | None = None,
    positions: Iterable[str] = (),
) -> list[Event]:
    """Profile events of every period: per machine (``machines`` gives options such as the location and
    ideal cycle time; devices without an entry get the defaults) and per alarm position.

    ``events`` should reach back before the first period far enough for the state in force at its start
    and for stale alarms (24 h). Each event's ``ts`` is its period's end.
    """
    by_device: dict[str, list[Event]] = defaultdict(list)
    alarm_events: list[Event] = []
    for e in events:
        if e.kind in MACHINE_KINDS:
            by_device[e.device].append(e)
        elif e.kind in k.ALARM_KINDS:
            alarm_events.append(e)
    options = machines or {}
    readings = energy or {}
    out: list[Event] = []
    known_positions = list(positions)
    for period in periods:
        for device in sorted(set(by_device) | set(options)):
            profile = machine_profile(by_device.get(device, []), period, options.get(device), readings.get(device))
            attributes = profile.model_dump(mode="json")
            out.append(
                Event(device, k.MACHINE_PROFILE, attributes, period.end, profile_id(k.MACHINE_PROFILE, device, period))
            )
        for kpis in alarm_kpis(alarm_events, period, alarm_options, shift_of, known_positions):
            out.append(
                Event(
                    k.GATEWAY_DEVICE,
                    k.ALARM_KPIS,
                    kpis.model_dump(mode="json"),
                    period.end,
                    profile_id(k.ALARM_KPIS, kpis.position, period),
                )
            )
    return out
