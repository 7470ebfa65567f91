"""The simulated plant against its own ground truth.

The plant model is stepped offline for one 8-hour shift; every second the test samples what the devices
expose (the CNC's Modbus registers encoded and decoded with the register map, the line's OPC UA
variables) and feeds those samples to :func:`oee`. The expected figures come from the machines' own state
log and part completion times, derived here without the code under test:

* exactly, once the log is seen the way 1 Hz polling sees it (a change at simulated time t shows in the
  poll at ceil(t); a part completed at t is counted in the poll at ceil(t));
* within 1 s per state change of the raw log.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

import pytest

from edge_agent.model import Sample
from edge_agent.oee import OeeResult, oee, options_for_profile
from edge_agent.profiles import Profile, available_profiles, load_profile
from simulators.cnc import CncMachine
from simulators.machine import UINT32, Machine
from simulators.opcua_server import LINE_VARIABLES
from simulators.packaging import PackagingLine
from simulators.plant import Plant
from simulators.registers import CNC_REGISTER_MAP, cnc_values, decode, encode
from tests.oee.oee_testkit import at

SHIFT_S = 8 * 3600
START = at("06:00")
CNC_TAGS = {tag.name: tag for tag in CNC_REGISTER_MAP if tag.name in ("state", "stop_reason", "good_count",
                                                                        "scrap_count")}
LINE_TAGS = {"State": "state", "StopReason": "stop_reason", "GoodCount": "good_count", "RejectCount": "reject_count"}


def profile(name: str) -> Profile:
    return load_profile(available_profiles([])[name])


@lru_cache(maxsize=4096)
def through_registers(value: float | int | str | bool, name: str) -> float | int | str | bool:
    """What a Modbus client decodes from the registers holding ``value`` of tag ``name``."""
    tag = CNC_TAGS[name]
    return decode(encode(value, tag.type, tag.order), tag.type, tag.order)


def poll_cnc(machine: CncMachine, ts: float) -> list[Sample]:
    values = cnc_values(machine)
    return [Sample(machine.name, name, ts, through_registers(values[name], name)) for name in CNC_TAGS]


def poll_line(line: PackagingLine, ts: float) -> list[Sample]:
    return [Sample(line.name, LINE_TAGS[v.browse_name], ts, v.read(line))
            for v in LINE_VARIABLES if v.browse_name in LINE_TAGS]


@pytest.fixture(scope="module")
def shift() -> tuple[Plant, dict[str, list[Sample]]]:
    """One shift of two CNC machines (cnc-2's good counter wraps at 2**32) and one line, polled at 1 Hz."""
    plant = Plant(seed=11, cnc=2, lines=1, sensors=0)
    plant.cnc[1] = CncMachine("cnc-2", seed=11, counter_start=UINT32 - 300)
    polled: dict[str, list[Sample]] = defaultdict(list)
    for second in range(SHIFT_S + 1):
        ts = START + second
        for machine in plant.cnc:
            polled[machine.name] += poll_cnc(machine, ts)
        for line in plant.lines:
            polled[line.name] += poll_line(line, ts)
        plant.step(1.0)
    return plant, polled


@dataclass
class Truth:
    seconds: dict[str, float]
    stops: dict[str, int]
    reasons: list[str]
    good: int
    scrap: int
    changes: int


def truth(machine: Machine, micro_stop_s: float, polled: bool) -> Truth:
    """The figures of [0, SHIFT_S) from the machine's log; ``polled`` moves every instant to the next poll.

    A stop's reason is the one the machine logged for its first interval.
    """
    shift = (lambda t: float(math.ceil(t))) if polled else (lambda t: t)
    runs: list[list] = []  # [category, start, end, reason of the first interval]
    for iv in machine.intervals():
        start, end = shift(iv.start), shift(min(iv.end or SHIFT_S, SHIFT_S))
        if end <= start:
            continue
        category = machine.categories.get(iv.state, "excluded")
        if runs and runs[-1][0] == category:
            runs[-1][2] = end
        else:
            runs.append([category, start, end, str(iv.reason) if iv.reason else ""])
    seconds: dict[str, float] = defaultdict(float)
    stops: dict[str, int] = defaultdict(int)
    reasons = []
    for category, start, end, reason in runs:
        kind = category
        if category == "unplanned_stop":
            kind = "small_stop" if end - start <= micro_stop_s else "breakdown"
        seconds[kind] += end - start
        stops[kind] += 1
        if category != "running":
            reasons.append(reason)
    # a part completed at t is seen by the poll at ceil(t); polls 1..SHIFT_S-1 count in the window
    last = SHIFT_S - 1 if polled else SHIFT_S
    good = bisect_right(machine.good_times, last)
    scrap = bisect_right(machine.scrap_times, last)
    return Truth(seconds, stops, reasons, good, scrap, len(runs) - 1)


def expected(t: Truth, ideal: float) -> dict[str, float]:
    ppt = SHIFT_S - t.seconds["planned_stop"] - t.seconds["excluded"]
    run = ppt - t.seconds["breakdown"] - t.seconds["changeover"]
    total = t.good + t.scrap
    return {
        "planned_time_s": ppt, "run_time_s": run, "downtime_s": t.seconds["breakdown"],
        "small_stops_s": t.seconds["small_stop"], "changeover_s": t.seconds["changeover"],
        "availability": run / ppt, "performance": ideal * total / run, "quality": t.good / total,
        "oee": ideal * t.good / ppt,
    }


@pytest.mark.parametrize("name", ["cnc-1", "cnc-2", "pack-1"])
def test_oee_of_a_simulated_shift_equals_the_ground_truth(
    shift: tuple[Plant, dict[str, list[Sample]]], name: str
) -> None:
    plant, polled = shift
    machine = plant[name]
    assert isinstance(machine, Machine)
    prof = profile("cnc_vmc" if machine.kind == "cnc" else "packaging_line")
    assert prof.oee is not None
    signals = prof.oee
    result: OeeResult = oee(polled[name], signals, None, START, START + SHIFT_S, options=options_for_profile(prof))

    exact = truth(machine, signals.micro_stop_s, polled=True)
    figures = expected(exact, signals.ideal_cycle_time_s)
    for key, value in figures.items():
        assert getattr(result, key) == pytest.approx(value, abs=1e-6), key
    assert (result.good_count, result.scrap_count) == (exact.good, exact.scrap)
    assert (result.breakdown_count, result.small_stop_count) == (exact.stops["breakdown"], exact.stops["small_stop"])
    assert [s.reason for s in result.stops] == exact.reasons
    assert result.planned_stop_s == exact.seconds["planned_stop"] and result.excluded_s == exact.seconds["excluded"]

    raw = truth(machine, signals.micro_stop_s, polled=False)
    assert raw.changes >= 20  # a busy shift: stops, a break, a changeover
    # polling shifts the counts by the parts of the last second at most
    last_second = 1 / signals.ideal_cycle_time_s + 1
    assert abs(raw.good - exact.good) <= last_second and abs(raw.scrap - exact.scrap) <= last_second
    for key in ("running", "breakdown", "small_stop", "changeover", "planned_stop", "excluded"):
        ours = {"running": result.run_time_s - result.small_stops_s, "breakdown": result.downtime_s,
                "small_stop": result.small_stops_s, "changeover": result.changeover_s,
                "planned_stop": result.planned_stop_s, "excluded": result.excluded_s}[key]
        assert abs(ours - raw.seconds[key]) <= raw.stops[key] + 1, key
    if name == "cnc-2":
        assert result.counter_rollovers == 1 and result.counter_resets == 0
    assert result.oee == pytest.approx(signals.ideal_cycle_time_s * result.good_count / result.planned_time_s)
