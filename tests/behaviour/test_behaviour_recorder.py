"""The agent-side recorder: sessions as events arrive, profiles for each period that ended, bounded memory."""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.behaviour import BehaviourRecorder, MachineOptions, RecorderOptions, validate_attributes
from edge_agent.model import Event, Sample

T = 1_763_510_400.0  # 2025-11-19T00:00:00Z


@dataclass
class Span:
    name: str
    start: float
    end: float


def shifts(start: float, end: float) -> list[Span]:
    day = T + ((start - T) // 86_400) * 86_400
    spans = []
    while day < end:
        spans += [Span("early", day + 6 * 3600, day + 14 * 3600), Span("late", day + 14 * 3600, day + 22 * 3600)]
        day += 86_400
    return [s for s in spans if s.end > start and s.start < end]


def test_sessions_and_rollups() -> None:
    options = RecorderOptions(
        shifts=shifts,
        machines={"cnc-1": MachineOptions(site="a", ideal_cycle_time_s=30.0)},
        energy_tags={"cnc-1": "energy_kwh"},
        positions=("console-1",),
    )
    rec = BehaviourRecorder(options, started=T + 5 * 3600 + 1800)  # 05:30
    out = rec.on_event(Event("cnc-1", "state_changed", {"state": "running"}, T + 5 * 3600 + 1900, "e1"))
    out += rec.on_event(
        Event("cnc-1", "part_count", {"good": 1, "scrap": 0, "cycle_time_s": 31.0}, T + 6 * 3600 + 5, "e2")
    )
    rec.on_sample(Sample("cnc-1", "energy_kwh", T + 6 * 3600, 10.0))
    rec.on_sample(Sample("cnc-1", "energy_kwh", T + 6 * 3600 + 600, 12.5))
    rec.on_sample(Sample("cnc-1", "spindle_temp", T + 6 * 3600 + 600, 40.0))
    out += rec.on_event(Event("cnc-1", "state_changed", {"state": "planned_stop"}, T + 6 * 3600 + 900, "e3"))
    assert [e.kind for e in out] == ["run_session"]
    assert rec.tick(T + 5 * 3600 + 3599) == []  # the first hour after the start has not ended
    hour = rec.tick(T + 7 * 3600)  # 06:00-07:00 ended
    assert [(e.kind, e.device) for e in hour] == [("machine_profile", "cnc-1"), ("alarm_kpis", "_gateway")]
    profile = hour[0].attributes
    assert (profile["period"], profile["good"], profile["run_s"], profile["energy_kwh"]) == ("hour", 1, 900.0, 2.5)
    assert profile["site"] == "a" and profile["performance"] == 30.0 / 900.0
    day = rec.tick(T + 2 * 86_400)  # the other hours, both days' shifts, and 11-20 (the first whole day)
    kinds = [(e.kind, e.attributes["period"]) for e in day]
    assert kinds.count(("machine_profile", "day")) == 1
    assert kinds.count(("machine_profile", "shift")) == 4  # early and late of both days
    assert rec.tick(T + 2 * 86_400 + 60) == []  # nothing is rolled up twice
    for e in out + hour + day:
        validate_attributes(e.kind, e.attributes)


def test_memory_is_bounded_but_open_alarms_are_kept() -> None:
    rec = BehaviourRecorder(RecorderOptions(keep_s=3600, max_events=10, rollups=()), started=T)
    rec.on_event(Event("m", "alarm_raised", {"alarm_id": "a1"}, T - 100, "r0"))
    rec.on_event(Event("m", "alarm_returned", {"alarm_id": "a1"}, T - 50, "g0"))
    rec.on_event(Event("m", "alarm_raised", {"alarm_id": "a1"}, T, "r1"))  # raised again, still active
    rec.on_event(Event("m", "alarm_raised", {"alarm_id": "a2"}, T, "r2"))
    rec.on_event(Event("m", "alarm_cleared", {"alarm_id": "a2"}, T + 10, "c2"))
    rec.on_event(Event("m", "device_connected", {"previous": "x"}, T + 20, "d"))  # not kept
    rec.tick(T + 7200)
    assert [e.id for e in rec._events] == ["r1"]  # the old and the cleared are gone; a1's active raise is kept
    for i in range(12):
        rec.on_event(Event("m", "part_count", {"good": 1, "scrap": 0}, T + 7300 + i, f"p{i}"))
    assert len(rec._events) == 10 and rec.dropped == 3


def test_periods_wait_for_the_delay_and_sessions_end_at_shutdown() -> None:
    options = RecorderOptions(rollups=("hour",), machines={"cnc-1": MachineOptions()}, delay_s=300.0)
    rec = BehaviourRecorder(options, started=T)
    rec.on_event(Event("cnc-1", "state_changed", {"state": "running"}, T + 10, "s1"))
    rec.on_event(Event("cnc-1", "state_changed", {"state": "unplanned_stop"}, T + 3000, "s2"))
    rec.on_event(Event("cnc-1", "state_changed", {"state": "running"}, T + 3400, "s3"))
    assert rec.tick(T + 3600 + 299) == []
    # the stop ended in the hour; its reason came after the restart, so its event is recorded late
    rec.on_event(Event("cnc-1", "stop_ended", {"started_at": T + 3000, "duration_s": 400.0,
                                                "category": "unplanned_stop", "reason": "7"}, T + 3400, "e1"))
    [profile] = rec.tick(T + 3600 + 300)
    attributes = profile.attributes
    assert (profile.kind, attributes["period_end"], attributes["run_s"], attributes["failures"]) == (
        "machine_profile", T + 3600, 3190.0, 1)
    assert attributes["stop_reasons"][0]["reason"] == "7"
    assert rec.tick(T + 3600 + 301) == []
    [run] = rec.flush(T + 4000)  # the agent stops while the machine runs
    assert run.kind == "run_session" and run.attributes["end_reason"] == "end_of_data"
    assert run.attributes["started_at"] == T + 3400
