"""Turn OPC UA DataValues into samples: value coercion, timestamp and quality.

The source timestamp is used when the server sends one, then the server
timestamp, then the time of arrival; naive datetimes are taken as UTC. The
StatusCode severity maps to :class:`~edge_agent.model.Quality` (Good, Uncertain,
Bad). Servers usually send a Bad status without a value; that becomes a BAD
sample holding the zero of the tag's type (``0``, ``0.0``, ``False`` or ``""``)
so the failure is recorded. Otherwise a value that is missing, not a finite
number, or not convertible to the tag's type yields no sample.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from asyncua import ua

from edge_agent.model import Quality, Sample, Value
from edge_agent.profiles import OpcuaTag

FLOAT_TYPES = ("float32", "float64")


def placeholder(tag: OpcuaTag) -> Value:
    """The value of a BAD sample whose DataValue carried none."""
    if tag.type == "bool":
        return False
    if tag.type == "string":
        return ""
    return 0.0 if tag.type in FLOAT_TYPES else 0


class UnusableValue(ValueError):
    """A value that cannot become a sample of its tag."""


def quality_of(status: ua.StatusCode | None) -> Quality:
    if status is None or status.is_good():
        return Quality.GOOD
    if status.is_uncertain():
        return Quality.UNCERTAIN
    return Quality.BAD


def _epoch(ts: datetime | None) -> float | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    epoch = ts.timestamp()
    return epoch if epoch > 0 else None  # the OPC UA null time (1601) means "no timestamp"


def timestamp_of(dv: ua.DataValue, now: float) -> float:
    """UTC epoch seconds of a DataValue: source, else server timestamp, else ``now``."""
    for ts in (dv.SourceTimestamp, dv.ServerTimestamp):
        epoch = _epoch(ts)
        if epoch is not None:
            return epoch
    return now


def coerce(tag: OpcuaTag, raw: Any) -> Value:
    """Convert an OPC UA value to the tag's declared type, then apply scale and offset."""
    if raw is None:
        raise UnusableValue(f"{tag.name}: no value")
    if isinstance(raw, Enum):
        raw = raw.value
    if tag.type == "string":
        if isinstance(raw, ua.LocalizedText):
            return raw.Text or ""
        if isinstance(raw, datetime):
            return raw.isoformat()
        return raw if isinstance(raw, str) else str(raw)
    if not isinstance(raw, int | float):
        raise UnusableValue(f"{tag.name}: expected a {tag.type}, got {type(raw).__name__}")
    if tag.type == "bool":
        return bool(raw)
    if tag.type in FLOAT_TYPES:
        value: Value = float(raw)
    elif isinstance(raw, float) and not raw.is_integer():
        value = raw  # keep the fraction rather than truncate a mistyped tag
    else:
        value = int(raw)
    converted: Value = tag.convert(value)
    if isinstance(converted, float) and not math.isfinite(converted):
        raise UnusableValue(f"{tag.name}: {converted} is not a finite number")
    return converted


def to_samples(
    device: str, tags: Iterable[OpcuaTag], dv: ua.DataValue, now: float
) -> tuple[list[Sample], int]:
    """Samples for every tag bound to one node, and the number of tags that gave none."""
    ts = timestamp_of(dv, now)
    quality = quality_of(dv.StatusCode)
    raw = dv.Value.Value if dv.Value is not None else None
    samples: list[Sample] = []
    failed = 0
    for tag in tags:
        if raw is None and quality is Quality.BAD:
            samples.append(Sample(device, tag.name, ts, placeholder(tag), quality))
            continue
        try:
            samples.append(Sample(device, tag.name, ts, coerce(tag, raw), quality))
        except UnusableValue:
            failed += 1
    return samples, failed
