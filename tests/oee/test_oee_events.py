"""Machine events (state_changed, stop_ended, part_count) from hand-built sample sequences."""

from __future__ import annotations

import random
from types import MappingProxyType
from typing import Any

import pytest

from edge_agent.behaviour import validate_attributes
from edge_agent.model import Event, Quality, Sample, Value
from edge_agent.oee import OeeOptions, oee
from edge_agent.oee.events import MachineEvents
from tests.oee.oee_testkit import CNC, DEVICE

REASONS = OeeOptions(reason_tag="stop_reason")


def run(machine: MachineEvents, *rows: tuple[float, str, Value]) -> list[tuple[str, float, dict[str, Any]]]:
    """Feed ``(ts, tag, value)`` rows; the events as ``(kind, ts, attributes)``, each checked against the catalogue."""
    out = []
    for ts, tag, value in rows:
        for event in machine.feed(Sample(DEVICE, tag, ts, value)):
            out.append(shown(event))
    return out


def shown(event: Event) -> tuple[str, float, dict[str, Any]]:
    assert event.device == DEVICE
    validate_attributes(event.kind, event.attributes)
    return event.kind, event.ts, event.attributes


def test_states_stops_with_their_reason_and_parts_with_cycle_times() -> None:
    machine = MachineEvents(DEVICE, CNC, REASONS)
    events = run(
        machine,
        (0.0, "state", 1),
        (1.0, "good_count", 100), (1.0, "scrap_count", 5),  # first readings: the base, no parts
        (13.0, "good_count", 101),
        (25.0, "good_count", 102),
        (30.0, "state", 2),
        (31.0, "stop_reason", 21),
        (50.0, "state", 3),  # still an unplanned stop: one stop
        (90.0, "state", 1),
        (95.0, "stop_reason", 0),
        (102.0, "good_count", 103),  # the machine stopped since the previous part: no cycle time
        (114.0, "scrap_count", 6),
        (114.0, "running", True),  # not the state signal of this profile (state_tag wins)
    )
    assert events == [
        ("state_changed", 0.0, {"state": "running", "code": "1"}),
        ("part_count", 13.0, {"good": 1, "scrap": 0}),
        ("part_count", 25.0, {"good": 1, "scrap": 0, "cycle_time_s": 12.0}),
        ("state_changed", 30.0, {"state": "unplanned_stop", "previous": "running", "code": "2"}),
        ("stop_ended", 90.0, {"started_at": 30.0, "duration_s": 60.0, "category": "unplanned_stop", "reason": "21"}),
        ("state_changed", 90.0, {"state": "running", "previous": "unplanned_stop", "code": "1"}),
        ("part_count", 102.0, {"good": 1, "scrap": 0}),
        ("part_count", 114.0, {"good": 0, "scrap": 1, "cycle_time_s": 12.0}),
    ]
    assert machine.state == "running"


def test_a_reason_entered_after_the_restart_waits_for_the_look_ahead() -> None:
    machine = MachineEvents(DEVICE, CNC, REASONS)
    events = run(
        machine,
        (0.0, "state", 1),
        (10.0, "state", 2),
        (20.0, "state", 1),  # no reason yet: the stop_ended waits
        (50.0, "stop_reason", 7),  # ... and takes this one
        (60.0, "stop_reason", 0),
        (100.0, "state", 2),
        (130.0, "state", 1),
    )
    assert events == [
        ("state_changed", 0.0, {"state": "running", "code": "1"}),
        ("state_changed", 10.0, {"state": "unplanned_stop", "previous": "running", "code": "2"}),
        ("state_changed", 20.0, {"state": "running", "previous": "unplanned_stop", "code": "1"}),
        ("stop_ended", 20.0, {"started_at": 10.0, "duration_s": 10.0, "category": "unplanned_stop", "reason": "7"}),
        ("state_changed", 100.0, {"state": "unplanned_stop", "previous": "running", "code": "2"}),
        ("state_changed", 130.0, {"state": "running", "previous": "unplanned_stop", "code": "1"}),
    ]
    assert machine.advance(130.0 + 299.0) == []
    assert [shown(e) for e in machine.advance(430.0)] == [
        ("stop_ended", 130.0, {"started_at": 100.0, "duration_s": 30.0, "category": "unplanned_stop", "reason": ""}),
    ]
    # a reason showing when a stop starts counts if reported at most reason_lead_s (2 s) before
    later = run(
        machine,
        (500.0, "stop_reason", 9),
        (501.0, "state", 4),
        (600.0, "state", 1),
        (700.0, "stop_reason", 0),
        (800.0, "stop_reason", 3),
        (810.0, "state", 2),  # reported 10 s before: not this stop's reason
        (820.0, "state", 1),
        (830.0, "state", 5),  # the next stop starts before a reason came: the previous one has none
    )
    assert later == [
        ("state_changed", 501.0, {"state": "planned_stop", "previous": "running", "code": "4"}),
        ("stop_ended", 600.0, {"started_at": 501.0, "duration_s": 99.0, "category": "planned_stop", "reason": "9"}),
        ("state_changed", 600.0, {"state": "running", "previous": "planned_stop", "code": "1"}),
        ("state_changed", 810.0, {"state": "unplanned_stop", "previous": "running", "code": "2"}),
        ("state_changed", 820.0, {"state": "running", "previous": "unplanned_stop", "code": "1"}),
        ("stop_ended", 820.0, {"started_at": 810.0, "duration_s": 10.0, "category": "unplanned_stop", "reason": ""}),
        ("state_changed", 830.0, {"state": "changeover", "previous": "running", "code": "5"}),
    ]
    # shutting down: a stop still going on is not ended; nothing else is held
    assert machine.flush() == []


def test_without_a_reason_tag_a_stop_ends_at_once_and_a_run_flag_gives_the_state() -> None:
    signals = CNC.model_copy(update={"state_tag": None})
    machine = MachineEvents(DEVICE, signals)
    events = run(
        machine,
        (0.0, "running", True),
        (5.0, "running", "false"),
        (6.0, "running", 0),
        (9.0, "running", "on"),
        (10.0, "running", "maybe"),  # a bad value is counted and skipped
        (8.0, "running", False),  # older than the previous sample: counted and dropped
    )
    assert events == [
        ("state_changed", 0.0, {"state": "running", "code": "1"}),
        ("state_changed", 5.0, {"state": "unplanned_stop", "previous": "running", "code": "0"}),
        ("stop_ended", 9.0, {"started_at": 5.0, "duration_s": 4.0, "category": "unplanned_stop", "reason": ""}),
        ("state_changed", 9.0, {"state": "running", "previous": "unplanned_stop", "code": "1"}),
    ]
    assert (machine.bad_values, machine.out_of_order) == (1, 1)
    # other devices, unused tags and BAD samples make nothing
    assert machine.feed(Sample("other", "running", 20.0, False)) == []
    assert machine.feed(Sample(DEVICE, "spindle_speed", 20.0, 0.0)) == []
    assert machine.feed(Sample(DEVICE, "running", 20.0, False, Quality.BAD)) == []


def test_counter_rollover_and_reset_as_the_oee_counts() -> None:
    options = OeeOptions(counter_bits=MappingProxyType({"good_count": 16}))
    machine = MachineEvents(DEVICE, CNC, options)
    events = run(
        machine,
        (0.0, "state", 1),
        (0.0, "good_count", 65530),
        (1.0, "good_count", 2),  # 16-bit wrap, 8 parts in 1 s is plausible: a rollover
        (2.0, "good_count", 30_000),  # +29998 in 1 s: an increase counts as it is (as in the OEE counts)
        (3.0, "good_count", 5),  # 34995 parts in 1 s cannot be a wrap: a reset, the new base
        (15.0, "good_count", 6),
    )
    assert [(ts, a["good"]) for kind, ts, a in events if kind == "part_count"] == [(1.0, 8), (2.0, 29_998), (15.0, 1)]


def test_parts_are_held_for_the_interval_and_never_across_an_hour() -> None:
    hour = 1_741_000_000.0 - 1_741_000_000.0 % 3600 + 3600
    machine = MachineEvents(DEVICE, CNC, part_interval_s=60.0)
    events = run(
        machine,
        (hour - 100, "state", 1),
        (hour - 40, "good_count", 10), (hour - 40, "scrap_count", 0),
        (hour - 30, "good_count", 11),  # the first part is reported at once
        (hour - 20, "good_count", 12),  # held: less than 60 s since the last report
        (hour - 10, "scrap_count", 1),
        (hour + 5, "good_count", 13),  # a new hour: the held parts go out first, this one waits
    )
    assert events == [
        ("state_changed", hour - 100, {"state": "running", "code": "1"}),
        ("part_count", hour - 30, {"good": 1, "scrap": 0}),  # no part before it: no cycle time
        ("part_count", hour - 10, {"good": 1, "scrap": 1, "cycle_time_s": 10.0}),
    ]
    assert machine.advance(hour + 49) == []  # 59 s since the last report
    assert [shown(e) for e in machine.advance(hour + 50)] == [
        ("part_count", hour + 5, {"good": 1, "scrap": 0, "cycle_time_s": 15.0}),
    ]
    assert run(machine, (hour + 60, "good_count", 14)) == []  # 55 s since the last report: held
    assert [shown(e) for e in machine.flush()] == [  # shutting down: what is held goes out
        ("part_count", hour + 60, {"good": 1, "scrap": 0, "cycle_time_s": 55.0}),
    ]


def test_a_total_counter_gives_good_as_total_minus_scrap() -> None:
    signals = CNC.model_copy(update={"good_counter": None, "total_counter": "total"})
    machine = MachineEvents(DEVICE, signals)
    events = run(
        machine,
        (0.0, "total", 50), (0.0, "scrap_count", 2),
        (10.0, "total", 53),
        (20.0, "scrap_count", 3),
    )
    assert [a for kind, _, a in events if kind == "part_count"] == [{"good": 3, "scrap": 0}, {"good": 0, "scrap": 1}]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_events_tell_the_story_of_the_oee_figures(seed: int) -> None:
    """Over random machine behaviour, the stops and parts of the events are those of ``oee()``."""
    rng = random.Random(seed)
    rows: list[Sample] = []
    ts, good, scrap, state, reason = 1_000.0, 40, 0, 1, 0
    for _ in range(3000):
        ts += rng.choice((1.0, 1.0, 2.0, 5.0))
        if rng.random() < 0.03:
            state = rng.choice((1, 1, 2, 3, 4, 5, 0, 9))
            reason = rng.choice((0, 0, 11, 12)) if state != 1 else reason
        elif rng.random() < 0.02:
            reason = rng.choice((0, 11, 21))
        if state == 1 and rng.random() < 0.3:
            if rng.random() < 0.1:
                scrap += 1
            else:
                good += 1
        if rng.random() < 0.002:
            good = 3  # a reset
        poll = [Sample(DEVICE, "state", ts, state), Sample(DEVICE, "stop_reason", ts, reason),
                Sample(DEVICE, "good_count", ts, good), Sample(DEVICE, "scrap_count", ts, scrap)]
        rng.shuffle(poll)  # the order of tags within one poll does not matter
        rows += poll
    end = ts + 1.0
    machine = MachineEvents(DEVICE, CNC, REASONS)
    events = [e for s in rows for e in machine.feed(s)] + machine.advance(end + 1000.0) + machine.flush()
    assert machine.size() <= 4 * 65  # bounded: a few change points per signal, not 3000
    for e in events:
        validate_attributes(e.kind, e.attributes)
    result = oee(rows, CNC, None, 0.0, end, options=REASONS)
    parts = [e for e in events if e.kind == "part_count"]
    assert sum(e.attributes["good"] for e in parts) == result.good_count
    assert sum(e.attributes["scrap"] for e in parts) == result.scrap_count
    ended = sorted(
        (e.attributes["started_at"], e.ts, e.attributes["category"], e.attributes["reason"])
        for e in events if e.kind == "stop_ended"
    )
    closed = [(s.start, s.end, s.category, s.reason) for s in result.stops if not s.open]
    assert ended == closed and len(closed) > 10
    categories = []  # the oracle: each state sample's category, kept when it differs from the previous one
    for s in sorted((s for s in rows if s.tag == "state"), key=lambda s: s.ts):
        category = CNC.state_codes.get(str(s.value), "unplanned_stop")
        if not categories or categories[-1][1] != category:
            categories.append((s.ts, category))
    assert [(e.ts, e.attributes["state"]) for e in events if e.kind == "state_changed"] == categories
