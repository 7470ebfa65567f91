"""Turn OPC UA DataValues into samples: value coercion, timestamp and quality.

The source timestamp is used when the server sends one, then the server
timestamp, then the time of arrival; naive datetimes are taken as UTC. The
StatusCode severity maps to :class:`~edge_agent.model.Quality` (Good, Uncertain,
Bad). Servers usually send a Bad status without a value; that becomes a BAD
sample holding the zero of the tag's type (``0``, ``0.0``, ``False`` or ``""``)
so the failure is recorded. Otherwise a value that is missing, not a finite
number, or not convertible to the tag's type yields no sample.

A tag with a ``[tags.waveform]`` table reads a Double or Float array node: each
array is one window, turned into one sample per feature (``<tag>.<feature>``, see
:mod:`edge_agent.maintenance.waveform`) with the DataValue's timestamp and
quality; the array itself is never a sample. A bad array (empty, not numbers,
over ``max_points``) gives no sample, counts as a failed tag and is logged with
its node (the first ten, then every thousandth). The per-connection state this
needs (the latest shaft speed) is a :class:`Waveforms` that :func:`to_samples`
finds on the :class:`NodeTags` list of a node.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from asyncua import ua

from edge_agent.model import Quality, Sample, Value
from edge_agent.profiles import OpcuaTag

if TYPE_CHECKING:  # imported where used: numpy only for profiles with waveform tags
    from edge_agent.maintenance.waveform import WindowPlan

log = logging.getLogger("edge_agent.connectors.opcua")

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
    waveforms: Waveforms | None = getattr(tags, "waveforms", None)
    if waveforms is not None:
        return waveforms.to_samples(device, tags, dv, now)
    ts = timestamp_of(dv, now)
    quality = quality_of(dv.StatusCode)
    raw = dv.Value.Value if dv.Value is not None else None
    return _scalar_samples(device, tags, ts, quality, raw)


def _scalar_samples(
    device: str, tags: Iterable[OpcuaTag], ts: float, quality: Quality, raw: Any
) -> tuple[list[Sample], int]:
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


class NodeTags(list[OpcuaTag]):
    """The tags bound to one node (``node`` names it in logs); ``waveforms`` is set when the profile has
    waveform tags, so :func:`to_samples` takes their path."""

    def __init__(self, node: str = "", tags: Iterable[OpcuaTag] = ()) -> None:
        super().__init__(tags)
        self.node = node
        self.waveforms: Waveforms | None = None


class Waveforms:
    """Waveform tags of one connection: their window plans and the latest shaft speeds."""

    def __init__(self, tags: Iterable[OpcuaTag]) -> None:
        from edge_agent.maintenance import waveform

        self._window_samples = waveform.window_samples
        self._waveform_error = waveform.WaveformError
        self.plans: dict[str, WindowPlan] = {t.name: waveform.WindowPlan.of(t.name, t.waveform, t.scale, t.offset)
                                             for t in tags if t.waveform is not None}
        self.shaft_tags = frozenset(p.shaft_tag for p in self.plans.values() if p.shaft_tag is not None)
        self.shaft_speeds = waveform.ShaftSpeeds()
        self.bad_windows = 0

    def to_samples(
        self, device: str, tags: Iterable[OpcuaTag], dv: ua.DataValue, now: float
    ) -> tuple[list[Sample], int]:
        """:func:`to_samples` of a node bound to waveform tags, shaft-speed tags or both."""
        ts = timestamp_of(dv, now)
        quality = quality_of(dv.StatusCode)
        raw = dv.Value.Value if dv.Value is not None else None
        scalars = [t for t in tags if t.name not in self.plans]
        samples, failed = _scalar_samples(device, scalars, ts, quality, raw)
        if self.shaft_tags:
            for s in samples:
                if s.tag in self.shaft_tags and s.quality is Quality.GOOD:
                    self.shaft_speeds.update(device, s.tag, s.value)
        for tag in tags:
            plan = self.plans.get(tag.name)
            if plan is None:
                continue
            if raw is None and quality is Quality.BAD:  # record the failure, as a scalar tag does
                samples += [Sample(device, f"{plan.tag}.{name}", ts, 0.0, quality) for name in plan.features]
                continue
            try:
                samples += self._window_samples(plan, device, ts, raw, quality=quality,
                                                shaft_hz=self.shaft_speeds.hz(plan, device))
            except self._waveform_error as exc:
                failed += 1
                self._log_bad(device, tag.name, getattr(tags, "node", ""), str(exc))
        return samples, failed

    def _log_bad(self, device: str, tag: str, node: str, why: str) -> None:
        self.bad_windows += 1
        if self.bad_windows <= 10 or self.bad_windows % 1000 == 0:
            log.warning("%s: bad waveform on node %s (tag %s, %d so far): %s", device, node or "?", tag,
                        self.bad_windows, why)
