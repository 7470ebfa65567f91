"""Machine behaviour profiles and alarm KPIs over hand-built event sets, expected figures written out."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from edge_agent.behaviour import (
    AlarmOptions,
    MachineOptions,
    Period,
    alarm_kpis,
    energy_used,
    machine_profile,
    occurrences,
    validate_attributes,
)
from edge_agent.model import Event

T = 1_763_510_400.0  # 2025-11-19T00:00:00Z
HOUR = Period("hour", T, T + 3600)
_ids = itertools.count(1)


def e(kind: str, at: float, device: str = "cnc-1", **attributes: Any) -> Event:
    return Event(device, kind, attributes, T + at, f"ev-{next(_ids)}")


def stop(end: float, duration: float, reason: str, category: str = "unplanned_stop") -> Event:
    return e("stop_ended", end, started_at=T + end - duration, duration_s=duration, category=category, reason=reason)


CYCLES = [40, 42, 44, 46, 48, 50, 52, 54, 56, 100]
MACHINE = [
    e("state_changed", -600, state="running"),  # in force when the hour starts
    e("state_changed", 600, state="unplanned_stop"),
    e("state_changed", 660, state="running"),
    stop(660, 60, "jam"),  # micro-stop
    e("state_changed", 1200, state="unplanned_stop"),
    e("state_changed", 1500, state="running"),
    stop(1500, 300, "tool_break"),  # failure
    e("state_changed", 2000, state="planned_stop"),
    e("state_changed", 2300, state="running"),
    stop(2300, 300, "break", "planned_stop"),
    e("state_changed", 3000, state="unplanned_stop"),
    e("state_changed", 3030, state="running"),
    stop(3030, 30, "jam"),  # micro-stop
    e("state_changed", 3300, state="unplanned_stop"),  # goes on past the hour
    stop(3900, 600, "tool_break"),  # ends in the next hour: counted there
    *[e("part_count", 100 + 300 * i, good=int(i < 9), scrap=int(i == 9), cycle_time_s=c) for i, c in enumerate(CYCLES)],
]
ENERGY = [(T - 10, 100.0), (T + 1800, 105.5), (T + 3599, 112.0), (T + 3700, 113.0)]


def test_machine_profile() -> None:
    options = MachineOptions(ideal_cycle_time_s=40.0, site="plant-a", area="machining", line="cell-1")
    p = machine_profile(MACHINE + MACHINE[:3], HOUR, options, ENERGY)  # duplicates count once
    assert (p.run_s, p.unplanned_stop_s, p.planned_s) == (2610.0, 690.0, 3300.0)
    assert (p.failures, p.micro_stops) == (1, 2)
    assert p.mtbf_s == 2610.0
    assert p.mttr_s == 300.0
    assert p.micro_stops_per_h == pytest.approx(2 * 3600 / 2610)
    assert [(r.reason, r.count, r.duration_s) for r in p.stop_reasons] == [("tool_break", 1, 300.0), ("jam", 2, 90.0)]
    assert [r.share for r in p.stop_reasons] == pytest.approx([300 / 390, 90 / 390])
    assert [r.cumulative_share for r in p.stop_reasons] == pytest.approx([300 / 390, 1.0])
    assert p.cycles == 10
    assert (p.cycle_time_p50_s, p.cycle_time_p90_s, p.cycle_time_p99_s) == pytest.approx((49.0, 60.4, 96.04))
    assert (p.good, p.scrap) == (9, 1)
    assert p.energy_kwh == pytest.approx(12.0)
    assert p.energy_per_good_part_kwh == pytest.approx(12.0 / 9)
    assert p.availability == pytest.approx(2610 / 3300)
    assert p.performance == pytest.approx(40 * 10 / 2610)
    assert p.quality == pytest.approx(0.9)
    assert (p.site, p.area, p.line, p.period, p.period_start, p.period_end) == (
        "plant-a",
        "machining",
        "cell-1",
        "hour",
        T,
        T + 3600,
    )
    validate_attributes("machine_profile", p.model_dump(mode="json"))


def test_machine_profile_without_data_is_empty_not_an_error() -> None:
    p = machine_profile([], HOUR)
    assert (p.run_s, p.planned_s, p.failures, p.cycles) == (0.0, 0.0, 0, 0)
    assert (p.mtbf_s, p.mttr_s, p.micro_stops_per_h, p.availability, p.quality, p.performance) == (None,) * 6
    assert p.stop_reasons == [] and p.energy_kwh is None


def test_energy_counter_reset() -> None:
    readings = [(T + 0, 50.0), (T + 100, 52.0), (T + 200, 1.5)]
    assert energy_used(readings, HOUR) == pytest.approx(3.5)
    assert energy_used(readings[:1], HOUR) is None


def alarm(kind: str, at: float, occurrence: str, point: str, position: str | None = "console-1") -> Event:
    attributes: dict[str, Any] = {"alarm_id": point, "occurrence_id": occurrence}
    if position is not None and kind == "alarm_raised":
        attributes["position"] = position
    return Event("cnc-1", kind, attributes, T + at, f"ev-{next(_ids)}")


def alarm_events() -> list[Event]:
    out = [
        alarm("alarm_raised", 10, "t1", "temp.hi"),
        alarm("alarm_raised", 30, "t2", "temp.hi"),
        alarm("alarm_raised", 50, "t3", "temp.hi"),  # 3 within 40 s: chattering
        *[alarm("alarm_raised", 100 + 50 * i, f"p{i}", "press.lo") for i in range(9)],  # 100..500
        alarm("alarm_raised", 700, "l1", "level.hi"),
        alarm("alarm_raised", 800, "f1", "flow.lo"),
        alarm("alarm_raised", 2500, "t4", "temp.hi"),
        alarm("alarm_raised", 1000, "u1", "pump.trip", "console-2"),
        alarm("alarm_raised", -90_000, "old", "valve.stuck"),  # 25 h before: stale at the end of the hour
        alarm("alarm_raised", -90_000, "old2", "valve.ok"),
        alarm("alarm_returned", -100, "old2", "valve.ok"),
        alarm("alarm_acknowledged", 70, "t1", "temp.hi"),  # 60 s
        alarm("alarm_acknowledged", 400, "p0", "press.lo"),  # 300 s
        alarm("alarm_acknowledged", 760, "l1", "level.hi"),  # 60 s
        alarm("alarm_acknowledged", 920, "f1", "flow.lo"),  # 120 s
        alarm("alarm_acknowledged", 3700, "t4", "temp.hi"),  # after the hour: unacknowledged in it
        alarm("alarm_cleared", 3000, "t4", "temp.hi"),
    ]
    return out


def shift_of(ts: float) -> str:
    return "early" if ts < T + 600 else "late"


def test_alarm_kpis() -> None:
    one, two, three = alarm_kpis(alarm_events(), HOUR, shift_of=shift_of, positions=["console-3"])
    assert (one.position, two.position, three.position) == ("console-1", "console-2", "console-3")
    assert (one.alarms, one.periods_10min, one.avg_per_10min) == (15, 6, 2.5)
    assert one.flood_share == pytest.approx(1 / 6)  # 12 alarms in the first 10 minutes
    assert one.peak_10min == 12
    assert [(t.alarm_id, t.count) for t in one.top] == [
        ("press.lo", 9),
        ("temp.hi", 4),
        ("flow.lo", 1),
        ("level.hi", 1),
    ]
    assert [t.share for t in one.top] == pytest.approx([0.6, 4 / 15, 1 / 15, 1 / 15])
    assert one.top10_share == pytest.approx(1.0)
    assert one.chattering == ["temp.hi"]
    assert one.stale == ["valve.stuck"]
    assert one.unacknowledged == 11
    tta = one.time_to_ack
    assert (tta.count, tta.p50_s, tta.p90_s, tta.p99_s, tta.max_s) == (
        4,
        90.0,
        pytest.approx(246.0),
        pytest.approx(294.6),
        300.0,
    )
    early, late = one.time_to_ack_by_shift["early"], one.time_to_ack_by_shift["late"]
    assert (early.count, early.p50_s, early.p90_s, early.max_s) == (2, 180.0, pytest.approx(276.0), 300.0)
    assert (late.count, late.p50_s, late.p90_s, late.max_s) == (2, 90.0, pytest.approx(114.0), 120.0)
    assert (two.alarms, two.avg_per_10min, two.flood_share, two.peak_10min, two.unacknowledged) == (
        1,
        pytest.approx(1 / 6),
        0.0,
        1,
        1,
    )
    assert (three.alarms, three.top, three.time_to_ack.count, three.time_to_ack.p50_s) == (0, [], 0, None)
    for kpis in (one, two, three):
        validate_attributes("alarm_kpis", kpis.model_dump(mode="json"))


def test_occurrences_without_occurrence_ids_follow_the_alarm() -> None:
    def point(kind: str, at: float) -> Event:
        return Event("cnc-1", kind, {"alarm_id": "cnc-1:temp:hi"}, T + at, f"ev-{next(_ids)}")

    events = [
        point("alarm_raised", 0),
        point("alarm_returned", 30),  # gone before anyone acknowledged it
        point("alarm_acknowledged", 40),
        point("alarm_raised", 100),  # the next occurrence
        point("alarm_acknowledged", 160),
        point("alarm_cleared", 200),
        point("alarm_cleared", 900),  # nothing left to clear
    ]
    occs = occurrences(events)
    assert [(o.raised - T, o.acknowledged - T, o.cleared - T) for o in occs if o.acknowledged and o.cleared] == [
        (0.0, 40.0, 30.0),
        (100.0, 160.0, 200.0),
    ]
    (kpis,) = alarm_kpis(events, HOUR)
    assert (kpis.alarms, kpis.unacknowledged, kpis.time_to_ack.p50_s) == (2, 0, 50.0)


def test_alarm_kpis_options_and_default_position() -> None:
    events = [alarm("alarm_raised", 10 * i, f"x{i}", "a.hi", None) for i in range(5)]
    (kpis,) = alarm_kpis(events, HOUR, AlarmOptions(flood_threshold=4, chatter_count=6))
    assert (kpis.position, kpis.flood_share, kpis.chattering) == ("default", pytest.approx(1 / 6), [])
    assert alarm_kpis([], HOUR) == []
