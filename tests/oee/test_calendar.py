"""Shift calendars: planned intervals to the second, DST days, strict validation with file and line."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge_agent.errors import ConfigError
from edge_agent.oee import ALWAYS, Calendar, CalendarSpec, calendar_from_data, load_calendar
from tests.oee.oee_testkit import at, calendar

BERLIN = ZoneInfo("Europe/Berlin")

WEEK = """\
timezone = "Europe/Berlin"
holidays = [2025-03-05]

[[shifts]]
name = "early"
days = ["mon", "tue", "wed", "thu", "fri"]
start = "06:00"
end = "14:00"
breaks = [{ start = "09:00", end = "09:15" }]

[[shifts]]
name = "night"
days = ["fri"]
start = 22:00:00
end = "06:00"

[[shifts.breaks]]
start = "02:00"
end = "02:30"

[[maintenance]]
start = 2025-03-04T12:00:00
end = 2025-03-04T16:00:00
reason = "spindle bearing"
"""


def local(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shifts.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_planned_intervals_of_a_week(tmp_path: Path) -> None:
    cal = load_calendar(write(tmp_path, WEEK))
    week = cal.planned(local("2025-03-03T00:00"), local("2025-03-10T00:00"))
    assert week == [
        (local("2025-03-03T06:00"), local("2025-03-03T09:00")),
        (local("2025-03-03T09:15"), local("2025-03-03T14:00")),
        # Tuesday: maintenance 12:00-16:00 cuts the shift after the break
        (local("2025-03-04T06:00"), local("2025-03-04T09:00")),
        (local("2025-03-04T09:15"), local("2025-03-04T12:00")),
        # Wednesday is a holiday
        (local("2025-03-06T06:00"), local("2025-03-06T09:00")),
        (local("2025-03-06T09:15"), local("2025-03-06T14:00")),
        (local("2025-03-07T06:00"), local("2025-03-07T09:00")),
        (local("2025-03-07T09:15"), local("2025-03-07T14:00")),
        # Friday night shift into Saturday, break at 02:00 on Saturday
        (local("2025-03-07T22:00"), local("2025-03-08T02:00")),
        (local("2025-03-08T02:30"), local("2025-03-08T06:00")),
    ]
    # 3 full early shifts (3 x 7.75 h) + Tuesday (5.75 h) + the night (7.5 h)
    assert sum(b - a for a, b in week) == 3 * 27900 + 20700 + 27000
    # a window cutting through a shift and a break
    assert cal.planned(local("2025-03-03T08:30"), local("2025-03-03T09:10")) == [
        (local("2025-03-03T08:30"), local("2025-03-03T09:00")),
    ]


def test_shift_occurrences_and_shift_at(tmp_path: Path) -> None:
    cal = load_calendar(write(tmp_path, WEEK))
    span = cal.shift_at(local("2025-03-08T03:00"))
    assert span is not None
    assert (span.name, span.day, span.start, span.end) == (
        "night", date(2025, 3, 7), local("2025-03-07T22:00"), local("2025-03-08T06:00"),
    )
    assert cal.shift_at(local("2025-03-08T07:00")) is None
    assert cal.shift_at(local("2025-03-05T07:00")) is None  # holiday
    # a break is still inside its shift
    assert cal.shift_at(local("2025-03-03T09:05")).name == "early"  # type: ignore[union-attr]
    names = [s.name for s in cal.shifts(local("2025-03-07T00:00"), local("2025-03-08T00:00"))]
    assert names == ["early", "night"]


def test_dst_days_have_23_and_25_hours() -> None:
    cal = calendar(timezone="Europe/Berlin", shifts=[
        {"name": "all day", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00",
         "end": "00:00"},
    ])
    # touching days merge into one planned interval, so measure each day through its shift occurrence
    spans = {s.day: s.end - s.start for s in cal.shifts(local("2025-03-29T00:00"), local("2025-04-01T00:00"))}
    assert spans[date(2025, 3, 29)] == 86400
    assert spans[date(2025, 3, 30)] == 82800  # 23 h
    spans = {s.day: s.end - s.start for s in cal.shifts(local("2025-10-25T00:00"), local("2025-10-28T00:00"))}
    assert spans[date(2025, 10, 26)] == 90000  # 25 h
    # planned time of the whole DST Sunday, from local midnight to local midnight
    total = cal.planned(local("2025-10-26T00:00"), local("2025-10-27T00:00"))
    assert sum(b - a for a, b in total) == 90000


def test_night_shift_over_dst_changes() -> None:
    cal = calendar(timezone="Europe/Berlin", shifts=[
        {"name": "night", "days": ["sat"], "start": "22:00", "end": "06:00"},
    ])
    (autumn,) = cal.shifts(at("12:00", date(2025, 10, 25)), at("12:00", date(2025, 10, 26)))
    assert (autumn.start, autumn.end) == (at("20:00", date(2025, 10, 25)), at("05:00", date(2025, 10, 26)))
    (spring,) = cal.shifts(at("12:00", date(2025, 3, 29)), at("12:00", date(2025, 3, 30)))
    assert spring.end - spring.start == 7 * 3600


def test_times_in_the_dst_gap_and_overlap_follow_fold_0() -> None:
    # 02:30 does not exist on 2025-03-30: read with the offset before the change (CET) = 01:30Z
    # 02:30 happens twice on 2025-10-26: the first (CEST) = 00:30Z
    cal = calendar(timezone="Europe/Berlin", shifts=[
        {"name": "odd", "days": ["sun"], "start": "02:30", "end": "04:00"},
    ])
    (spring,) = cal.shifts(at("00:00", date(2025, 3, 30)), at("12:00", date(2025, 3, 30)))
    assert (spring.start, spring.end) == (at("01:30", date(2025, 3, 30)), at("02:00", date(2025, 3, 30)))
    (autumn,) = cal.shifts(at("00:00", date(2025, 10, 26)), at("12:00", date(2025, 10, 26)))
    assert (autumn.start, autumn.end) == (at("00:30", date(2025, 10, 26)), at("03:00", date(2025, 10, 26)))


def test_maintenance_with_offset_and_default_calendar() -> None:
    cal = calendar(
        shifts=[{"name": "all", "days": ["mon"], "start": "00:00", "end": "00:00"}],
        maintenance=[{"start": "2025-03-03T10:00:00+02:00", "end": "2025-03-03T09:00:00Z"}],
    )
    assert cal.planned(at("00:00"), at("12:00")) == [(at("00:00"), at("08:00")), (at("09:00"), at("12:00"))]
    assert ALWAYS.always and ALWAYS.planned(10.0, 20.5) == [(10.0, 20.5)]
    assert ALWAYS.shift_at(10.0) is None and ALWAYS.planned(5.0, 5.0) == []


def test_errors_name_file_line_and_key(tmp_path: Path) -> None:
    text = """\
timezone = "Europe/Berln"
holidays = ["2025-13-01"]

[[shifts]]
name = "early"
days = ["mon", "tues"]
start = "06:00"
end = "25:00"
brakes = []

[[shifts]]
name = "late"
days = ["mon"]
start = "14:00"
end = "22:00"
breaks = [{ start = "13:00", end = "13:30" }]

[[maintenance]]
start = 2025-03-04T12:00:00
end = 2025-03-04T11:00:00
"""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_calendar(path)
    problems = caught.value.problems
    assert f"{path}:1: timezone: unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)" in problems
    assert f"{path}:2: holidays[0]: expected a date such as 2025-12-25, got '2025-13-01'" in problems
    assert any(p.startswith(f"{path}:6: shifts[0].days[1]: must be one of") and "(did you mean 'tue'?)" in p
               for p in problems)
    assert f"{path}:8: shifts[0].end: expected a time of day 'HH:MM' or 'HH:MM:SS', got '25:00'" in problems
    assert f"{path}:9: shifts[0].brakes: unknown key (did you mean 'breaks'?)" in problems
    # checks across fields come once the fields themselves are valid
    fixed = text.replace("Berln", "Berlin").replace("2025-13-01", "2025-12-01").replace('"tues"', '"tue"')
    fixed = fixed.replace('"25:00"', '"14:00"').replace("brakes = []\n", "")
    with pytest.raises(ConfigError) as caught:
        load_calendar(write(tmp_path, fixed))
    assert caught.value.problems == [
        f"{path}:15: shifts[1].breaks[0]: break 13:00-13:30 is not inside the shift 14:00-22:00",
        f"{path}:19: maintenance[0].end: must be after start (2025-03-04T12:00:00)",
    ]


def test_missing_file_bad_toml_and_embedded_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_calendar(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"shifts\.toml:1: invalid TOML"):
        load_calendar(write(tmp_path, "timezone = \n"))
    with pytest.raises(ConfigError) as caught:
        load_calendar(write(tmp_path, 'timezone = "UTC"\n'))
    assert caught.value.problems == [f"{tmp_path / 'shifts.toml'}: shifts: required key is missing"]
    text = '[calendar]\ntimezone = "UTC"\n[[calendar.shifts]]\nname = "a"\ndays = ["mon"]\nstart = "6:00"\n'
    with pytest.raises(ConfigError) as caught:
        calendar_from_data({"timezone": "UTC", "shifts": [{"name": "a", "days": ["mon"], "start": "6:00",
                                                             "end": "07:00"}]},
                           "agent.toml", text, prefix=("calendar",))
    assert caught.value.problems == [
        "agent.toml:6: calendar.shifts[0].start: expected a time of day 'HH:MM' or 'HH:MM:SS', got '6:00'",
    ]
    # built in code, the same checks raise ValueError
    spec = CalendarSpec.model_validate({"shifts": [{
        "name": "a", "days": ["mon"], "start": "06:00", "end": "07:00", "breaks": [{"start": "07:30", "end": "07:40"}],
    }]})
    with pytest.raises(ValueError, match=r"shifts\[0\]\.breaks\[0\]: break 07:30-07:40 is not inside the shift"):
        Calendar(spec)
