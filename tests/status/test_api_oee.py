"""Window splitting of GET /api/v1/oee: absolute hours, local days across DST, shifts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi import HTTPException

from edge_agent.oee import ALWAYS, load_calendar
from edge_agent.status.api_oee import buckets, parse_time

BERLIN = ZoneInfo("Europe/Berlin")


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_hours_are_absolute_and_clipped() -> None:
    got = buckets(ALWAYS, ts("2026-11-22T08:30:00+00:00"), ts("2026-11-22T10:15:00+00:00"), "hour")
    assert [(hi - lo) for lo, hi in got] == [1800.0, 3600.0, 900.0]


def test_local_days_across_dst_have_23_and_25_hours(tmp_path: Path) -> None:
    cal = tmp_path / "cal.toml"
    cal.write_text('timezone = "Europe/Berlin"\n[[shifts]]\nname = "day"\ndays = ["mon", "tue", "wed", "thu", '
                   '"fri", "sat", "sun"]\nstart = "06:00"\nend = "14:00"\n')
    calendar = load_calendar(cal)
    start = datetime(2026, 3, 28, 0, 0, tzinfo=BERLIN).timestamp()
    end = datetime(2026, 3, 30, 0, 0, tzinfo=BERLIN).timestamp()
    assert [(hi - lo) / 3600 for lo, hi in buckets(calendar, start, end, "day")] == [24.0, 23.0]
    start = datetime(2026, 10, 25, 0, 0, tzinfo=BERLIN).timestamp()
    end = datetime(2026, 10, 26, 0, 0, tzinfo=BERLIN).timestamp()
    assert [(hi - lo) / 3600 for lo, hi in buckets(calendar, start, end, "day")] == [25.0]
    shifts = buckets(calendar, start, end, "shift")
    assert [(hi - lo) / 3600 for lo, hi in shifts] == [8.0]


def test_parse_time() -> None:
    assert parse_time("1700000000", 0, "from") == 1700000000.0
    assert parse_time("2026-11-22T08:00:00Z", 0, "from") == ts("2026-11-22T08:00:00+00:00")
    assert parse_time(None, 5.0, "from") == 5.0
    with pytest.raises(HTTPException):
        parse_time("2026-11-22T08:00:00", 0, "from")
    with pytest.raises(HTTPException):
        parse_time("yesterday", 0, "from")
