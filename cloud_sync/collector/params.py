"""Query parameters of the read endpoints: times, limits, names; bad input is a clear 400.

``from`` / ``to`` take ISO 8601 (``2025-11-22T08:00:00Z``; no offset means UTC)
or epoch seconds (``1763798400``, ``1763798400.5``). ``from`` is inclusive,
``to`` exclusive. ``limit`` defaults to :data:`DEFAULT_LIMIT` and is capped at
:data:`MAX_LIMIT` (FastAPI checks it is an integer).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
MAX_NAME = 256

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class BadParameter(ValueError):
    """A query parameter that cannot be used; becomes 400 naming it."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


def parse_time(name: str, value: str | None) -> float | None:
    """Epoch seconds from ISO 8601 or a number; ``None`` when absent."""
    if value is None or value == "":
        return None
    text = value.strip()
    if _NUMBER.match(text):
        seconds = float(text)
        if not math.isfinite(seconds):
            raise BadParameter(name, f"{value!r:.80} is not a finite number of seconds")
        return seconds
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BadParameter(
            name, f"{value!r:.80} is neither ISO 8601 (2025-11-22T08:00:00Z) nor epoch seconds"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return when.timestamp()
    except (OverflowError, OSError, ValueError):
        raise BadParameter(name, f"{value!r:.80} is out of range") from None


def parse_range(start: str | None, end: str | None) -> tuple[float | None, float | None]:
    """``(from, to)`` in epoch seconds; ``from`` must be before ``to`` when both are given."""
    lo, hi = parse_time("from", start), parse_time("to", end)
    if lo is not None and hi is not None and lo >= hi:
        raise BadParameter("to", "must be after from")
    return lo, hi


def cap_limit(limit: int | None) -> int:
    """The row limit to apply: :data:`DEFAULT_LIMIT` when absent, at most :data:`MAX_LIMIT`."""
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1:
        raise BadParameter("limit", "must be at least 1")
    return min(limit, MAX_LIMIT)


def parse_name(name: str, value: str | None) -> str | None:
    """An exact-match filter (gateway, device, tag, kind); ``None`` when absent."""
    if value is None or value == "":
        return None
    if len(value) > MAX_NAME:
        raise BadParameter(name, f"longer than {MAX_NAME} characters")
    if "\x00" in value:
        raise BadParameter(name, "must not contain NUL characters")
    return value
