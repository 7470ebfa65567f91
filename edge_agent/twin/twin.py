"""The twin of one device: ``reported``, ``derived``, ``desired`` and ``meta``.

Every update is a method taking the instant it happened and returning the
:class:`~edge_agent.twin.model.ChangeSet` it caused (empty when nothing
changed). No clock, no I/O: the same inputs give the same twin.

Memory is bounded: one value per tag (at most ``max_tags`` tags, further ones
are counted in ``dropped_tags``), one setpoint request per tag.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from edge_agent.model import Quality, Sample, Value
from edge_agent.twin.model import (
    ChangeSet,
    ConnectionInfo,
    HealthFigures,
    MachineState,
    OeeFigures,
    Parts,
    ReportedValue,
    Setpoint,
)
from edge_agent.twin.spec import TwinSpec

__all__ = ["RATE_TAU_S", "Twin", "category_of", "normalize_code"]

RATE_TAU_S = 60.0
"""Time constant of the smoothed rate of change of reported values."""


def normalize_code(value: Value) -> str:
    """A state or reason code as text: ``2``, ``2.0`` and ``"2"`` are all ``"2"``; booleans are 1/0."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return str(int(value))
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            return text
        return str(int(number)) if math.isfinite(number) and number == int(number) else text
    return str(value)


def category_of(spec: TwinSpec, tag: str, value: Value) -> tuple[str, str | None] | None:
    """The state category a sample of ``tag`` shows, with its code; None if the tag says nothing about it.

    The state tag wins over the run tag when the profile has both; an unmapped code is an unplanned stop.
    """
    if spec.state_tag is not None:
        if tag != spec.state_tag:
            return None
        code = normalize_code(value)
        return spec.state_codes.get(code, "unplanned_stop"), code
    if spec.run_tag is not None and tag == spec.run_tag:
        running = value if isinstance(value, bool) else normalize_code(value) not in ("0", "", "false", "False")
        return ("running" if running else "unplanned_stop"), normalize_code(value)
    return None


def _number(value: Value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class Twin:
    """The live model of one device (see the module docstring)."""

    def __init__(self, spec: TwinSpec, *, max_tags: int = 1000) -> None:
        self.spec = spec
        self.max_tags = max_tags
        self.reported: dict[str, ReportedValue] = {}
        self.state = MachineState()
        self.connection = ConnectionInfo()
        self.oee: OeeFigures | None = None
        self.health: HealthFigures | None = None
        self.alarms: tuple[Mapping[str, Any], ...] = ()
        self.parts = Parts()
        self.desired: dict[str, Setpoint] = {}
        self.dropped_tags = 0
        self.updated_at: float | None = None
        self._counter_last: dict[str, float] = {}
        self._counted: dict[str, int] = {}

    # -- reported ----------------------------------------------------------------------------

    def restore(self, samples: Iterable[Sample]) -> ChangeSet:
        """Load last known values (from the buffer after a restart), marked stale until fresh data arrives."""
        out = ChangeSet(self.spec.device, 0.0)
        for sample in sorted(samples, key=lambda s: s.ts):
            if sample.device == self.spec.device:
                out = out.merge(self._update(sample, stale=True))
        return out

    def apply(self, sample: Sample) -> ChangeSet:
        """Take one fresh sample of this device; returns what changed (value, quality, staleness, state)."""
        if sample.device != self.spec.device:
            return ChangeSet(self.spec.device, sample.ts)
        return self._update(sample, stale=False)

    def apply_many(self, samples: Sequence[Sample]) -> ChangeSet:
        out = ChangeSet(self.spec.device, samples[-1].ts if samples else 0.0)
        for sample in samples:
            out = out.merge(self.apply(sample))
        return out

    def _update(self, sample: Sample, *, stale: bool) -> ChangeSet:
        tag = sample.tag
        previous = self.reported.get(tag)
        if previous is None and len(self.reported) >= self.max_tags:
            self.dropped_tags += 1
            return ChangeSet(self.spec.device, sample.ts)
        if previous is not None and sample.ts < previous.ts:
            return ChangeSet(self.spec.device, sample.ts)  # late sample: the newer value stays
        changes: dict[str, Any] = {}
        spec = self.spec.tag(tag)
        changed = previous is None or previous.value != sample.value or type(previous.value) is not type(sample.value)
        rate = None if stale or previous is None or previous.stale else self._rate(tag, previous, sample)
        value = ReportedValue(sample.value, sample.ts, sample.quality, spec.unit, rate, stale)
        self.reported[tag] = value
        if not stale:
            self.updated_at = sample.ts if self.updated_at is None else max(self.updated_at, sample.ts)
        if changed or previous is None or previous.quality != sample.quality or previous.stale != stale:
            changes[f"reported.{tag}"] = value.as_dict()
        state = self._derive_state(tag, sample, stale)
        if state is not None:
            changes["derived.state"] = state.as_dict()
        if not stale and sample.quality != Quality.BAD and tag in (self.spec.good_counter, self.spec.scrap_counter):
            parts = self._count(tag, sample.value)
            if parts is not None:
                changes["derived.parts"] = parts.as_dict()
        return ChangeSet(self.spec.device, sample.ts, changes)

    def _rate(self, tag: str, previous: ReportedValue, sample: Sample) -> float | None:
        """Change per second, smoothed (exponential moving average over about ``RATE_TAU_S``).

        Only for measured values: not for text, flags, the state tag or the reason tag.
        """
        spec = self.spec.tag(tag)
        if spec.type in ("bool", "string") or tag in (self.spec.state_tag, self.spec.reason_tag, self.spec.run_tag):
            return None
        new, old, dt = _number(sample.value), _number(previous.value), sample.ts - previous.ts
        if new is None or old is None or dt <= 0 or sample.quality == Quality.BAD:
            return previous.rate
        instant = (new - old) / dt
        if previous.rate is None:
            return instant
        alpha = 1.0 - math.exp(-dt / RATE_TAU_S)
        return previous.rate + alpha * (instant - previous.rate)

    # -- derived: state ----------------------------------------------------------------------

    def _derive_state(self, tag: str, sample: Sample, stale: bool) -> MachineState | None:
        """The new machine state if this sample changed it (category, code, reason or staleness)."""
        spec = self.spec
        current = self.state
        if sample.quality == Quality.BAD:
            return None
        found = category_of(spec, tag, sample.value)
        since: float | None
        if found is not None:
            category, code = found
            since = current.since if category == current.category and current.since is not None else sample.ts
        elif spec.reason_tag is not None and tag == spec.reason_tag:
            category, code, since = current.category, current.code, current.since
        else:
            return None
        reason = None if category in ("running", "unknown") else self.reason_seen()
        text = spec.reason_texts.get(reason) if reason is not None else None
        new = MachineState(category, code, since, reason, text, stale if found is not None else current.stale)
        if new == current:
            return None
        self.state = new
        return new

    def reason_seen(self) -> str | None:
        """The stop reason showing now (the reason tag's latest value), if any."""
        tag = self.spec.reason_tag
        value = self.reported.get(tag) if tag else None
        if value is None:
            return None
        code = normalize_code(value.value)
        return None if code in ("0", "") else code

    # -- derived: parts ----------------------------------------------------------------------

    def start_shift(self, start: float, now: float) -> ChangeSet:
        """Begin counting parts again (a new shift started at ``start``)."""
        self._counted = {}
        self._counter_last = {
            tag: v for tag in (self.spec.good_counter, self.spec.scrap_counter)
            if tag and (rv := self.reported.get(tag)) is not None and (v := _number(rv.value)) is not None
        }
        if self.parts.source == "oee":
            return ChangeSet(self.spec.device, now)
        self.parts = Parts(0, 0, self._target(start, now), start, "counters")
        return ChangeSet(self.spec.device, now, {"derived.parts": self.parts.as_dict()})

    def _count(self, tag: str, value: Value) -> Parts | None:
        number = _number(value)
        if number is None:
            return None
        last = self._counter_last.get(tag)
        self._counter_last[tag] = number
        if last is None or number == last:
            return None
        delta = number - last if number > last else number  # a decrease is a counter reset
        self._counted[tag] = self._counted.get(tag, 0) + int(delta)
        if self.parts.source == "oee":
            return None
        self.parts = replace(
            self.parts,
            good=self._counted.get(self.spec.good_counter or "", 0),
            scrap=self._counted.get(self.spec.scrap_counter or "", 0),
        )
        return self.parts

    def _target(self, start: float, now: float) -> int | None:
        cycle = self.spec.ideal_cycle_time_s
        if not cycle or now <= start:
            return None if not cycle else 0
        return int((now - start) / cycle)

    def refresh_target(self, now: float) -> ChangeSet:
        """Update the parts target of the counter fallback (parts possible at the ideal rate so far)."""
        if self.parts.source == "oee" or self.parts.since is None:
            return ChangeSet(self.spec.device, now)
        target = self._target(self.parts.since, now)
        if target == self.parts.target:
            return ChangeSet(self.spec.device, now)
        self.parts = replace(self.parts, target=target)
        return ChangeSet(self.spec.device, now, {"derived.parts": self.parts.as_dict()})

    # -- derived: inputs from elsewhere ------------------------------------------------------

    def set_connection(self, state: str, since: float, error: str | None = None) -> ChangeSet:
        if state == self.connection.state and error == self.connection.last_error:
            return ChangeSet(self.spec.device, since)
        keep_since = self.connection.since if state == self.connection.state else since
        self.connection = ConnectionInfo(state, keep_since, error)
        return ChangeSet(self.spec.device, since, {"derived.connection": self.connection.as_dict()})

    def set_oee(self, figures: OeeFigures | None, now: float) -> ChangeSet:
        """Take the OEE engine's figures; they also become the shift's parts count."""
        if figures == self.oee:
            return ChangeSet(self.spec.device, now)
        self.oee = figures
        changes: dict[str, Any] = {"derived.oee": None if figures is None else figures.as_dict()}
        if figures is not None:
            parts = Parts(figures.good, figures.scrap, figures.target, figures.window_from, "oee")
            if parts != self.parts:
                self.parts = parts
                changes["derived.parts"] = parts.as_dict()
        return ChangeSet(self.spec.device, now, changes)

    def set_health(self, figures: HealthFigures | None, now: float) -> ChangeSet:
        if figures == self.health:
            return ChangeSet(self.spec.device, now)
        self.health = figures
        return ChangeSet(self.spec.device, now, {"derived.health": None if figures is None else figures.as_dict()})

    def set_alarms(self, alarms: Sequence[Mapping[str, Any]], now: float) -> ChangeSet:
        """The device's alarms needing attention (summaries from the alarm engine)."""
        new = tuple(alarms)
        if new == self.alarms:
            return ChangeSet(self.spec.device, now)
        self.alarms = new
        return ChangeSet(self.spec.device, now, {"derived.alarms": [dict(a) for a in new]})

    # -- desired -----------------------------------------------------------------------------

    def set_desired(self, setpoint: Setpoint) -> ChangeSet:
        """Record a setpoint request or its progress (one request kept per tag)."""
        self.desired[setpoint.tag] = setpoint
        ts = setpoint.updated_at or setpoint.requested_at
        return ChangeSet(self.spec.device, ts, {f"desired.{setpoint.tag}": setpoint.as_dict()})

    def confirm_desired(self, now: float) -> ChangeSet:
        """Mark written setpoints whose value the device now reports as confirmed."""
        changes: dict[str, Any] = {}
        for tag, sp in list(self.desired.items()):
            reported = self.reported.get(tag)
            if sp.status == "written" and reported is not None and not reported.stale and _same(reported.value,
                                                                                                 sp.value):
                done = replace(sp, status="confirmed", updated_at=now)
                self.desired[tag] = done
                changes[f"desired.{tag}"] = done.as_dict()
        return ChangeSet(self.spec.device, now, changes)

    # -- views -------------------------------------------------------------------------------

    @property
    def stale(self) -> bool:
        return bool(self.reported) and all(v.stale for v in self.reported.values())

    def summary(self) -> dict[str, Any]:
        """What the plant overview shows of this device."""
        return {
            "name": self.spec.device,
            "meta": {"profile": self.spec.profile, "model": self.spec.model, "location": dict(self.spec.location)},
            "has_state": self.spec.has_state,
            "derived": self.derived(),
            "key_values": {} if self.spec.has_state else self.key_values(),
            "updated_at": self.updated_at,
            "stale": self.stale,
        }

    def key_values(self, count: int = 3) -> dict[str, Any]:
        """The first ``count`` numeric values in profile order (what a sensor's tile shows)."""
        out: dict[str, Any] = {}
        for name in self.spec.tags:
            value = self.reported.get(name)
            if value is not None and _number(value.value) is not None:
                out[name] = value.as_dict()
                if len(out) >= count:
                    break
        return out

    def derived(self) -> dict[str, Any]:
        return {
            "state": self.state.as_dict(),
            "connection": self.connection.as_dict(),
            "oee": None if self.oee is None else self.oee.as_dict(),
            "parts": self.parts.as_dict(),
            "health": None if self.health is None else self.health.as_dict(),
            "alarms": [dict(a) for a in self.alarms],
        }

    def as_dict(self) -> dict[str, Any]:
        """The whole twin."""
        return {
            "name": self.spec.device,
            "reported": {tag: v.as_dict() for tag, v in sorted(self.reported.items())},
            "derived": self.derived(),
            "desired": {tag: sp.as_dict() for tag, sp in sorted(self.desired.items())},
            "meta": self.spec.meta(),
            "has_state": self.spec.has_state,
            "updated_at": self.updated_at,
            "stale": self.stale,
            "dropped_tags": self.dropped_tags,
        }


def _same(a: Value, b: Value) -> bool:
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        return math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-6)
    return a == b
