"""The pure plant model: determinism, plausible behaviour over a shift, a degrading bearing."""

from __future__ import annotations

import bisect
import re
import statistics
from datetime import UTC, datetime
from itertools import pairwise

import pytest

from simulators.cnc import CNC_ALARMS, CncMachine, CncState
from simulators.machine import UINT32
from simulators.packaging import LineState, PackagingLine
from simulators.plant import Plant, VibrationSensor

SHIFT_S = 8 * 3600


def run(plant: Plant, seconds: float, dt: float) -> None:
    for _ in range(round(seconds / dt)):
        plant.step(dt)


def closed_log(machine: CncMachine | PackagingLine) -> list[dict[str, object]]:
    return [iv.as_dict() for iv in machine.log if iv.end is not None]


@pytest.fixture(scope="module")
def shift() -> Plant:
    """Three CNC machines, two lines and two sensors after one simulated 8-hour shift."""
    plant = Plant(seed=42, cnc=3, lines=2, sensors=2)
    run(plant, SHIFT_S, 5.0)
    return plant


def test_names_and_lookup() -> None:
    plant = Plant(seed=1, cnc=2, lines=1, sensors=3)
    assert list(plant.machines) == ["cnc-1", "cnc-2", "pack-1", "vib-1", "vib-2", "vib-3"]
    assert plant["pack-1"] is plant.lines[0]
    with pytest.raises(KeyError):
        plant["cnc-9"]


def test_same_seed_same_history_different_seed_differs() -> None:
    a, b, c = Plant(seed=7), Plant(seed=7), Plant(seed=8)
    for plant in (a, b, c):
        run(plant, 2 * 3600, 10.0)
    for name in ("cnc-1", "cnc-2", "pack-1"):
        assert closed_log(a[name]) == closed_log(b[name])  # type: ignore[arg-type]
        assert list(a[name].good_times) == list(b[name].good_times)  # type: ignore[union-attr]
        assert closed_log(a[name]) != closed_log(c[name])  # type: ignore[arg-type]
    assert a.sensors[0].telemetry(0.0) == b.sensors[0].telemetry(0.0)


def test_history_does_not_depend_on_step_size() -> None:
    coarse, fine = Plant(seed=3), Plant(seed=3)
    run(coarse, 3600, 30.0)
    run(fine, 3600, 0.5)
    for name in ("cnc-1", "cnc-2", "pack-1", "vib-1"):
        assert closed_log(coarse[name]) == closed_log(fine[name])  # type: ignore[arg-type]
    assert coarse.cnc[0].good_count == fine.cnc[0].good_count
    assert coarse.lines[0].scrap_count == fine.lines[0].scrap_count


def test_every_machine_changes_state_within_30_seconds() -> None:
    plant = Plant(seed=42, cnc=4, lines=2)
    run(plant, 30, 0.5)
    for machine in [*plant.cnc, *plant.lines]:
        assert len(machine.log) >= 2, machine.name
        assert machine.log[1].state == 2 and machine.log[1].reason != 0


def test_log_is_contiguous_and_matches_counters(shift: Plant) -> None:
    for machine in [*shift.cnc, *shift.lines]:
        intervals = machine.intervals()
        assert intervals[0].start == 0.0 and intervals[-1].end == pytest.approx(SHIFT_S)
        for prev, nxt in pairwise(intervals):
            assert prev.end == nxt.start
            assert (prev.state, prev.reason) != (nxt.state, nxt.reason)
            assert prev.end is not None and prev.end > prev.start
        assert sum(iv.good for iv in intervals) == machine.parts_good == len(machine.good_times)
        assert sum(iv.scrap for iv in intervals) == machine.parts_scrap == len(machine.scrap_times)
        # parts are only made while running
        assert all(iv.good == iv.scrap == 0 for iv in intervals if iv.state != 1)
        summary = machine.summary()
        assert sum(summary.seconds_by_state.values()) == pytest.approx(SHIFT_S)
        assert (summary.good, summary.scrap) == (machine.parts_good, machine.parts_scrap)


def test_cnc_shift_is_plausible(shift: Plant) -> None:
    breakdowns = 0
    for machine in shift.cnc:
        s = machine.summary()
        stops = s.stops_by_state
        assert 30 <= stops.get(CncState.STOPPED, 0) <= 200, stops
        assert stops.get(CncState.PLANNED_STOP, 0) >= 2
        assert stops.get(CncState.CHANGEOVER, 0) >= 1
        breakdowns += stops.get(CncState.BREAKDOWN, 0)
        assert 0.5 < s.run_s / SHIFT_S < 0.85
        assert 0.015 < s.scrap / s.total < 0.05
        assert 0.8 < s.performance < 0.95  # cycles of 12-16 s against the ideal 12 s
        assert 0.45 < s.oee < 0.85
        short_stops = [iv.duration for iv in machine.intervals() if iv.state == CncState.STOPPED]
        assert all(10 <= d <= 90 for d in short_stops)
        reasons = {iv.reason for iv in machine.log}
        assert reasons & {11, 12, 13}
    assert breakdowns >= 1


def test_line_shift_is_plausible(shift: Plant) -> None:
    for line in shift.lines:
        s = line.summary()
        assert 20 <= s.stops_by_state.get(LineState.UNPLANNED_STOP, 0) <= 150
        assert s.stops_by_state.get(LineState.PLANNED_STOP, 0) >= 2
        assert 0.005 < s.scrap / s.total < 0.02
        assert 0.9 < s.performance < 1.0  # 110-120 packs/min against 120
        assert 0.5 < s.oee < 0.9


def test_cnc_values_follow_the_state() -> None:
    machine = CncMachine("cnc-1", seed=11)
    seen: set[int] = set()
    for _ in range(SHIFT_S // 10):
        machine.step(10.0)
        seen.add(machine.state)
        assert machine.running == (machine.state == CncState.RUNNING)
        if machine.running:
            assert 3000 < machine.spindle_speed < 13000 and machine.feed_rate > 500
            assert 20 < machine.spindle_load < 130 and machine.power > 4
        else:
            assert machine.spindle_speed == machine.spindle_load == machine.feed_rate == 0
        assert (machine.alarm_code != 0) == (machine.state == CncState.BREAKDOWN)
        if machine.state == CncState.BREAKDOWN:
            assert machine.alarm_code == CNC_ALARMS[machine.reason]
        assert 15 < machine.spindle_temp < 75 and 15 < machine.coolant_temp < 35
        assert 12.0 <= machine.cycle_time <= 16.5
    assert {1, 2, 4, 5} <= seen
    assert len({iv.reason for iv in machine.log if iv.state == CncState.CHANGEOVER}) == 1


def test_changeover_abandons_the_part_in_progress(shift: Plant) -> None:
    for machine in [*shift.cnc, *shift.lines]:
        parts = sorted([*machine.good_times, *machine.scrap_times])
        changeovers = [iv for iv in machine.intervals() if machine.categories[iv.state] == "changeover"]
        assert changeovers
        for iv in changeovers:
            assert iv.end is not None
            later = parts[bisect.bisect_left(parts, iv.end):]
            if later:  # a full cycle after the changeover (packs run at most 120/min)
                assert later[0] >= iv.end + machine.ideal_cycle_s * 0.9


def test_changeover_changes_the_program() -> None:
    machine = CncMachine("cnc-2", seed=5)
    programs: list[str] = []
    for _ in range(SHIFT_S // 30):
        machine.step(30.0)
        if not programs or programs[-1] != machine.program.name:
            programs.append(machine.program.name)
    changeovers = sum(1 for iv in machine.log if iv.state == CncState.CHANGEOVER)
    assert len(programs) == changeovers + 1
    assert all(len(p) <= 16 and p.isascii() for p in programs)


def test_energy_and_counters_are_cumulative_and_wrap() -> None:
    machine = CncMachine("cnc-1", seed=2, counter_start=UINT32 - 3)
    energy = machine.energy
    machine.step(600.0)
    assert machine.energy > energy
    assert machine.parts_good > 3
    assert machine.good_count == (UINT32 - 3 + machine.parts_good) % UINT32 < 100


def test_line_values() -> None:
    line = PackagingLine("pack-1", seed=9)
    for _ in range(3600):
        line.step(1.0)
        if line.running:
            assert 105 < line.speed < 125 and 5 < line.motor_current < 9.5
        else:
            assert line.speed == 0 and line.motor_current < 1
        assert 90 < line.seal_temp < 185  # heaters are off while there is no order
        assert line.recipe.name


def test_bearing_degrades_monotonically_on_average() -> None:
    sensor = VibrationSensor("vib-1", seed=4, failure_after_s=600.0)
    rms: list[float] = []
    temps: list[float] = []
    batteries: list[int] = []
    for _ in range(720):
        sensor.step(1.0)
        reading = sensor.telemetry(1_700_000_000.0 + sensor.t)
        rms.append(reading["vibration"]["rms"])
        temps.append(reading["temperature"])
        batteries.append(reading["battery"])
    means = [statistics.fmean(rms[i:i + 60]) for i in range(0, 720, 60)]
    assert all(b > a for a, b in pairwise(means)), means
    assert 1.2 < means[0] < 1.9 and means[-1] > 7.1
    assert statistics.fmean(temps[-60:]) > statistics.fmean(temps[:60]) + 20
    assert batteries == sorted(batteries, reverse=True)
    # ground truth: normal -> alert -> danger, the danger level just before the configured life
    assert [iv.state for iv in sensor.log] == [1, 2, 3]
    assert sensor.log[1].start == pytest.approx(sensor.time_to_rms(4.5))
    assert 0.9 * 600 < sensor.log[2].start <= 600


def test_sensor_lives_are_staggered() -> None:
    plant = Plant(seed=1, cnc=0, lines=0, sensors=3, sensor_life_s=3600)
    lives = [s.failure_after_s for s in plant.sensors]
    assert lives == [3600, 5400, 7200]


def test_telemetry_shape(profile) -> None:
    sensor = VibrationSensor("vib-2", seed=1)
    now = datetime(2026, 11, 22, 8, 0, 0, 123000, tzinfo=UTC).timestamp()
    msg = sensor.telemetry(now)
    assert msg["ts"] == "2026-11-22T08:00:00.123Z"
    assert set(msg) == {"ts", "vibration", "temperature", "battery"}
    assert set(msg["vibration"]) == {"rms", "peak", "crest"}
    assert all(isinstance(v, float) for v in msg["vibration"].values())
    assert isinstance(msg["temperature"], float) and isinstance(msg["battery"], int)
    vibration = msg["vibration"]
    assert vibration["peak"] == pytest.approx(vibration["rms"] * 0.075 * vibration["crest"], abs=0.01)
    # every field the profile reads is there
    for tag in profile("vibration_sensor")["tags"]:
        value: object = msg
        for key in tag["field"].split("."):
            assert isinstance(value, dict)
            value = value[key]
        assert isinstance(value, int | float)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", msg["ts"])


def test_negative_step_is_rejected() -> None:
    with pytest.raises(ValueError):
        Plant().step(-1)
