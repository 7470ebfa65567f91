"""Shift calendar: when a device is planned to produce.

A calendar is a TOML file (or a table of a larger file)::

    timezone = "Europe/Berlin"          # IANA name; local times below are in this zone
    holidays = [2025-12-25, "2025-12-26"]

    [[shifts]]
    name = "early"
    days = ["mon", "tue", "wed", "thu", "fri"]
    start = "06:00"                     # "HH:MM", "HH:MM:SS" or a TOML local time
    end = "14:00"                       # end <= start: the shift ends on the next day
    breaks = [{ start = "09:00", end = "09:15" }]

    [[maintenance]]
    start = 2025-11-03T06:00:00         # local (in timezone) or with an offset
    end = 2025-11-03T10:00:00
    reason = "spindle bearing"

Planned time is the union of all shift occurrences, each minus its breaks,
minus the maintenance windows. A shift belongs to the local date it starts
on; on a holiday no shift starts. Local times are turned into instants with
the zone's rules (PEP 495, ``fold=0``): a shift over a DST change lasts one
hour less or more, a time skipped in spring is read with the offset before the
change and a repeated time in autumn is its first occurrence. Without a
calendar, every second is planned (:data:`ALWAYS`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BeforeValidator, Field, ValidationError, field_validator

from edge_agent.errors import ConfigError
from edge_agent.oee._intervals import Interval, clip, subtract, union
from edge_agent.profiles import Strict
from edge_agent.validation import Loc, dotted, format_errors, key_lines, line_of, load_toml

__all__ = [
    "ALWAYS",
    "BreakSpec",
    "Calendar",
    "CalendarSpec",
    "MaintenanceSpec",
    "ShiftSpan",
    "ShiftSpec",
    "calendar_from_data",
    "load_calendar",
]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_S = 86_400


def _clock(value: Any) -> Any:
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise ValueError(f"expected a local time of day, got {value.isoformat()!r} with an offset")
        return value
    if isinstance(value, str):
        parts = value.split(":")
        if 2 <= len(parts) <= 3 and all(len(p) == 2 and p.isdigit() for p in parts):
            hour, minute, second = (int(p) for p in [*parts, "00"][:3])
            if hour < 24 and minute < 60 and second < 60:
                return time(hour, minute, second)
    raise ValueError(f"expected a time of day 'HH:MM' or 'HH:MM:SS', got {value!r}")


def _moment(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"expected a date and time such as 2025-11-03T06:00:00, got {value!r}")


def _day(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"expected a date such as 2025-12-25, got {value!r}")


ClockTime = Annotated[time, BeforeValidator(_clock)]
Moment = Annotated[datetime, BeforeValidator(_moment)]
Day = Annotated[date, BeforeValidator(_day)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class BreakSpec(Strict):
    """A break inside a shift, in local clock times."""

    start: ClockTime
    end: ClockTime
    name: str = ""


class ShiftSpec(Strict):
    """A shift worked on some weekdays; ``end <= start`` means it ends the next day (equal: 24 h)."""

    name: str = Field(min_length=1)
    days: list[Weekday] = Field(min_length=1)
    start: ClockTime
    end: ClockTime
    breaks: list[BreakSpec] = []


class MaintenanceSpec(Strict):
    """A planned maintenance window; naive date-times are local to the calendar's zone."""

    start: Moment
    end: Moment
    reason: str = ""


class CalendarSpec(Strict):
    """The validated content of a calendar file."""

    timezone: str = "UTC"
    shifts: list[ShiftSpec] = Field(min_length=1)
    holidays: list[Day] = []
    maintenance: list[MaintenanceSpec] = []

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        _zone(name)
        return name


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name, sorted(available_timezones()), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ValueError(f"unknown time zone {name!r}{hint}") from None


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _hm(t: time) -> str:
    return t.isoformat(timespec="seconds" if t.second else "minutes")


def _spec_problems(spec: CalendarSpec) -> list[tuple[Loc, str]]:
    """Checks across fields: breaks inside their shift, maintenance windows not empty."""
    problems: list[tuple[Loc, str]] = []
    tz = _zone(spec.timezone)
    for i, shift in enumerate(spec.shifts):
        length = (_seconds(shift.end) - _seconds(shift.start)) % DAY_S or DAY_S
        for j, brk in enumerate(shift.breaks):
            begin = (_seconds(brk.start) - _seconds(shift.start)) % DAY_S
            finish = (_seconds(brk.end) - _seconds(shift.start)) % DAY_S or DAY_S
            if not begin < finish <= length:
                problems.append((
                    ("shifts", i, "breaks", j),
                    f"break {_hm(brk.start)}-{_hm(brk.end)} is not inside the shift "
                    f"{_hm(shift.start)}-{_hm(shift.end)}",
                ))
    for i, window in enumerate(spec.maintenance):
        if _instant(window.end, tz) <= _instant(window.start, tz):
            problems.append((("maintenance", i, "end"), f"must be after start ({window.start.isoformat()})"))
    return problems


def _instant(moment: datetime, tz: ZoneInfo) -> float:
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)).timestamp()


@dataclass(frozen=True, slots=True)
class ShiftSpan:
    """One occurrence of a shift: ``name``, the local ``day`` it starts on, its instants.

    ``planned`` is the shift minus its breaks (maintenance windows not removed).
    """

    name: str
    day: date
    start: float
    end: float
    planned: tuple[Interval, ...]


class Calendar:
    """Planned time of a device, from a :class:`CalendarSpec`; ``Calendar()`` is planned 24/7.

    All instants are epoch seconds (UTC). Raises ValueError for a spec whose
    breaks lie outside their shift or whose maintenance windows end before
    they start (:func:`load_calendar` reports these with file and line).
    """

    def __init__(self, spec: CalendarSpec | None = None) -> None:
        self.spec = spec
        self.tz = _zone(spec.timezone if spec else "UTC")
        if spec is not None:
            problems = _spec_problems(spec)
            if problems:
                raise ValueError("; ".join(f"{dotted(loc)}: {msg}" for loc, msg in problems))
        self._holidays = frozenset(spec.holidays) if spec else frozenset()
        self._maintenance = union(
            (_instant(m.start, self.tz), _instant(m.end, self.tz)) for m in (spec.maintenance if spec else [])
        )

    @property
    def always(self) -> bool:
        """True for the default calendar: every second is planned."""
        return self.spec is None

    def _local(self, day: date, clock: time) -> float:
        return datetime.combine(day, clock, tzinfo=self.tz).timestamp()

    def shifts(self, start: float, end: float) -> list[ShiftSpan]:
        """Shift occurrences overlapping ``[start, end)``, by start time (empty for :data:`ALWAYS`)."""
        if self.spec is None or end <= start:
            return []
        first = datetime.fromtimestamp(start, self.tz).date() - timedelta(days=1)
        last = datetime.fromtimestamp(end, self.tz).date()
        out: list[ShiftSpan] = []
        day = first
        while day <= last:
            if day not in self._holidays:
                weekday = WEEKDAYS[day.weekday()]
                for shift in self.spec.shifts:
                    if weekday in shift.days:
                        span = self._occurrence(shift, day)
                        if span.end > start and span.start < end:
                            out.append(span)
            day += timedelta(days=1)
        out.sort(key=lambda s: (s.start, s.end))
        return out

    def _occurrence(self, shift: ShiftSpec, day: date) -> ShiftSpan:
        next_day = day + timedelta(days=1)
        begin = self._local(day, shift.start)
        finish = self._local(day if shift.end > shift.start else next_day, shift.end)
        breaks = [
            (
                self._local(day if brk.start >= shift.start else next_day, brk.start),
                self._local(day if brk.end > shift.start else next_day, brk.end),
            )
            for brk in shift.breaks
        ]
        planned = subtract([(begin, finish)], breaks)
        return ShiftSpan(shift.name, day, begin, finish, tuple(planned))

    def planned(self, start: float, end: float) -> list[Interval]:
        """Planned intervals within ``[start, end)``: in a shift, not in a break, maintenance or on a holiday."""
        if end <= start:
            return []
        if self.spec is None:
            base = [(start, end)]
        else:
            base = union(iv for span in self.shifts(start, end) for iv in span.planned)
        return clip(subtract(base, self._maintenance), start, end)

    def shift_at(self, ts: float) -> ShiftSpan | None:
        """The shift occurrence running at ``ts`` (the latest started if shifts overlap), or None."""
        spans = [s for s in self.shifts(ts, ts + 1.0) if s.start <= ts < s.end]
        return spans[-1] if spans else None


ALWAYS = Calendar()


def calendar_from_data(data: dict[str, Any], path: Path | str, text: str, prefix: Loc = ()) -> Calendar:
    """Validate a calendar table (``prefix`` locates it inside a larger TOML file).

    Raises ConfigError with one ``FILE:LINE: KEY: problem`` line per problem.
    """
    try:
        spec = CalendarSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, path, text, CalendarSpec, prefix)) from None
    problems = _spec_problems(spec)
    if problems:
        lines = key_lines(text)
        out = []
        for loc, message in problems:
            full = prefix + loc
            line = line_of(lines, full)
            where = f"{path}:{line}" if line else str(path)
            out.append(f"{where}: {dotted(full)}: {message}")
        raise ConfigError(out)
    return Calendar(spec)


def load_calendar(path: Path | str) -> Calendar:
    """Read and validate a calendar file; ConfigError lists every problem with file and line."""
    path = Path(path)
    text, data = load_toml(path)
    return calendar_from_data(data, path, text)
