"""Helpers of the OEE tests: instants written as clock times, samples, the CNC signals, figure checks."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from edge_agent.model import Sample, Value
from edge_agent.oee import Calendar, OeeResult, calendar_from_data
from edge_agent.profiles import OeeSignals

MONDAY = date(2025, 3, 3)
DEVICE = "cnc-1"

# the cnc_vmc profile's [oee] table
CNC = OeeSignals(
    state_tag="state",
    state_codes={
        "0": "excluded", "1": "running", "2": "unplanned_stop", "3": "unplanned_stop",
        "4": "planned_stop", "5": "changeover",
    },
    run_tag="running",
    good_counter="good_count",
    scrap_counter="scrap_count",
    ideal_cycle_time_s=12.0,
    micro_stop_s=120,
)


def at(clock: str, day: date = MONDAY, plus_days: int = 0) -> float:
    """Epoch seconds of ``HH:MM[:SS]`` UTC on ``day`` (+ ``plus_days``)."""
    hour, minute, second = ([int(p) for p in clock.split(":")] + [0])[:3]
    moment = datetime.combine(day + timedelta(days=plus_days), time(hour, minute, second), tzinfo=UTC)
    return moment.timestamp()


def samples(*rows: tuple[float, str, Value], device: str = DEVICE) -> list[Sample]:
    """Samples from ``(ts, tag, value)`` rows."""
    return [Sample(device=device, tag=tag, ts=ts, value=value) for ts, tag, value in rows]


def calendar(**table: Any) -> Calendar:
    """A calendar from keyword arguments, validated as a calendar file would be."""
    return calendar_from_data(table, "test-calendar.toml", "")


def early_shift(*breaks: tuple[str, str], tz: str = "UTC") -> Calendar:
    """Monday to Friday 06:00-14:00 with ``breaks``."""
    return calendar(timezone=tz, shifts=[{
        "name": "early", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "06:00", "end": "14:00",
        "breaks": [{"start": a, "end": b} for a, b in breaks],
    }])


def check(result: OeeResult, **expected: Any) -> None:
    """Compare figures: seconds and ratios to 1e-6, counts and flags exactly; ``losses`` as a dict."""
    losses = expected.pop("losses", None)
    if losses is not None:
        assert result.losses.as_dict() == pytest.approx(losses, abs=1e-6)
    for name, want in expected.items():
        got = getattr(result, name)
        if isinstance(want, float):
            assert got == pytest.approx(want, abs=1e-6), name
        else:
            assert got == want, name


def assert_identity(result: OeeResult, ideal_cycle_s: float) -> None:
    """OEE == ideal cycle time x good count / PPT, and the losses close the PPT."""
    if result.planned_time_s > 0 and result.run_time_s > 0:
        assert result.oee == pytest.approx(ideal_cycle_s * result.good_count / result.planned_time_s, abs=1e-12)
    losses = result.losses
    closed = (losses.breakdowns + losses.setup_adjustments + losses.small_stops + losses.reduced_speed
              + losses.quality + ideal_cycle_s * result.good_count)
    assert closed == pytest.approx(result.planned_time_s, abs=1e-6)
