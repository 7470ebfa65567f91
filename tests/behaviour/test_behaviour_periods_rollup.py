"""Periods of the rollup (hours, days across a DST change, shifts) and profile events with stable ids."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from edge_agent.behaviour import MachineOptions, Period, periods, rollup, shift_periods, validate_attributes
from edge_agent.model import Event

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_complete_hours_only() -> None:
    hours = periods("hour", at("2025-11-19T00:30:00+00:00"), at("2025-11-19T03:10:00+00:00"))
    assert [(p.start, p.end) for p in hours] == [
        (at("2025-11-19T01:00:00+00:00"), at("2025-11-19T02:00:00+00:00")),
        (at("2025-11-19T02:00:00+00:00"), at("2025-11-19T03:00:00+00:00")),
    ]


def test_days_in_a_time_zone_across_the_dst_change() -> None:
    days = periods("day", at("2025-10-25T00:00:00+02:00"), at("2025-10-28T00:00:00+01:00"), BERLIN)
    assert [p.end - p.start for p in days] == [86_400, 90_000, 86_400]  # 26 October has 25 hours
    assert days[0].start == at("2025-10-25T00:00:00+02:00")
    assert periods("day", 0, 3600, UTC) == []


@dataclass
class Span:
    name: str
    start: float
    end: float


def test_shift_periods() -> None:
    spans = [Span("late", 200.0, 300.0), Span("early", 100.0, 200.0)]
    assert shift_periods(spans) == [Period("shift", 100.0, 200.0, "early"), Period("shift", 200.0, 300.0, "late")]


def test_rollup_emits_valid_profile_events_with_stable_ids() -> None:
    t = at("2025-11-19T00:00:00+00:00")
    events = [
        Event("cnc-1", "state_changed", {"state": "running"}, t - 10, "a"),
        Event("cnc-1", "part_count", {"good": 1, "scrap": 0, "cycle_time_s": 30.0}, t + 100, "b"),
        Event("cnc-1", "alarm_raised", {"alarm_id": "o1", "alarm": "temp.hi", "position": "c1"}, t + 5, "c"),
        Event("cnc-1", "device_connected", {"previous": "starting"}, t, "d"),  # not a profile input
    ]
    hours = periods("hour", t, t + 7200)
    out = rollup(events, hours, machines={"cnc-2": MachineOptions(site="s")})
    assert [(x.kind, x.device, x.ts) for x in out] == [
        ("machine_profile", "cnc-1", t + 3600),
        ("machine_profile", "cnc-2", t + 3600),
        ("alarm_kpis", "_gateway", t + 3600),
        ("machine_profile", "cnc-1", t + 7200),
        ("machine_profile", "cnc-2", t + 7200),
    ]
    assert out[0].attributes["run_s"] == 3600.0 and out[0].attributes["good"] == 1
    assert out[2].attributes["position"] == "c1" and out[2].attributes["alarms"] == 1
    for x in out:
        validate_attributes(x.kind, x.attributes)
    again = rollup(list(reversed(events)), hours, machines={"cnc-2": MachineOptions(site="s")})
    assert [x.id for x in again] == [x.id for x in out]
    assert len({x.id for x in out}) == len(out)
