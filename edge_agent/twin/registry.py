"""All twins of a gateway, with their trends, state timelines and change events.

Every update returns an :class:`Update`: the change sets (for the live stream)
and the ``twin_changed`` events that passed the debouncer (for the event log).
No clock: callers pass ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge_agent.model import Event, Sample
from edge_agent.twin.debounce import ChangeDebouncer
from edge_agent.twin.model import ChangeSet, HealthFigures, OeeFigures, Setpoint
from edge_agent.twin.settings import TwinSettings
from edge_agent.twin.shift import shift_start
from edge_agent.twin.spec import TwinSpec
from edge_agent.twin.timeline import StateTimeline
from edge_agent.twin.trend import TrendCache
from edge_agent.twin.twin import Twin

__all__ = ["TwinRegistry", "Update"]


@dataclass
class Update:
    """What an update changed (one change set per device) and the events to record."""

    changes: list[ChangeSet] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def add(self, other: Update) -> Update:
        self.changes.extend(other.changes)
        self.events.extend(other.events)
        return self


class TwinRegistry:
    """One :class:`Twin` per configured device; samples of unknown devices are counted and ignored."""

    def __init__(self, specs: Sequence[TwinSpec], settings: TwinSettings | None = None, *, trends: bool = True) -> None:
        """``trends=False``: keep no recent points (history is answered elsewhere, e.g. from the buffer)."""
        self.settings = settings or TwinSettings()
        self.specs: dict[str, TwinSpec] = {s.device: s for s in specs}
        self.twins: dict[str, Twin] = {s.device: Twin(s, max_tags=self.settings.max_tags) for s in specs}
        self.debouncer = ChangeDebouncer(self.specs, self.settings)
        self.trends = TrendCache(self.settings.trend_points if trends else 0)
        self.timelines = {s.device: StateTimeline(self.settings.timeline_segments) for s in specs}
        self.unknown_samples = 0
        self.shift_from: float | None = None

    def add(self, spec: TwinSpec) -> None:
        """A device added (or changed) by a reload: a fresh twin."""
        self.specs[spec.device] = spec
        self.twins[spec.device] = Twin(spec, max_tags=self.settings.max_tags)
        self.timelines[spec.device] = StateTimeline(self.settings.timeline_segments)
        self.debouncer = ChangeDebouncer(self.specs, self.settings)

    def remove(self, device: str) -> None:
        self.specs.pop(device, None)
        self.twins.pop(device, None)
        self.timelines.pop(device, None)
        self.debouncer = ChangeDebouncer(self.specs, self.settings)

    def __contains__(self, device: object) -> bool:
        return device in self.twins

    def get(self, device: str) -> Twin | None:
        return self.twins.get(device)

    # -- updates ------------------------------------------------------------------------------

    def apply(self, samples: Iterable[Sample]) -> Update:
        """Take fresh samples (any devices, any order within a device's tag is kept by timestamp)."""
        merged: dict[str, ChangeSet] = {}
        for sample in samples:
            twin = self.twins.get(sample.device)
            if twin is None:
                self.unknown_samples += 1
                continue
            self.trends.add(sample)
            cs = twin.apply(sample)
            if cs:
                merged[sample.device] = merged[sample.device].merge(cs) if sample.device in merged else cs
        update = Update()
        for device, cs in merged.items():
            twin = self.twins[device]
            if "derived.state" in cs.changes:
                self._timeline(twin)
            confirmed = twin.confirm_desired(cs.ts)
            update.add(self._out(cs.merge(confirmed)))
        return update

    def restore(self, samples: Iterable[Sample]) -> Update:
        """Last known values after a restart: stale until fresh data arrives; no events."""
        by_device: dict[str, list[Sample]] = {}
        for sample in samples:
            if sample.device in self.twins:
                by_device.setdefault(sample.device, []).append(sample)
        update = Update()
        for device, items in by_device.items():
            twin = self.twins[device]
            cs = twin.restore(items)
            for sample in sorted(items, key=lambda s: s.ts):
                self.trends.add(sample)
            if twin.state.since is not None:
                self._timeline(twin)
            update.changes.append(cs)
        return update

    def _timeline(self, twin: Twin) -> None:
        st = twin.state
        if st.since is not None:
            self.timelines[twin.spec.device].record(st.since, st.category, st.code, st.reason, st.reason_text)

    def set_connection(self, device: str, state: str, since: float, error: str | None = None) -> Update:
        twin = self.twins.get(device)
        return Update() if twin is None else self._out(twin.set_connection(state, since, error))

    def set_oee(self, device: str, figures: OeeFigures | None, now: float) -> Update:
        twin = self.twins.get(device)
        return Update() if twin is None else self._out(twin.set_oee(figures, now))

    def set_health(self, device: str, figures: HealthFigures | None, now: float) -> Update:
        twin = self.twins.get(device)
        return Update() if twin is None else self._out(twin.set_health(figures, now))

    def set_alarms(self, device: str, alarms: Sequence[Mapping[str, Any]], now: float) -> Update:
        twin = self.twins.get(device)
        return Update() if twin is None else self._out(twin.set_alarms(alarms, now))

    def set_desired(self, device: str, setpoint: Setpoint) -> Update:
        twin = self.twins.get(device)
        return Update() if twin is None else self._out(twin.set_desired(setpoint))

    def tick(self, now: float) -> Update:
        """Time passing: a new shift, parts targets, and debounced changes now due."""
        update = Update()
        start = shift_start(now, self.settings.shift_starts)
        new_shift = start != self.shift_from
        self.shift_from = start
        for twin in self.twins.values():
            cs = twin.start_shift(start, now) if new_shift else twin.refresh_target(now)
            if cs:
                update.add(self._out(cs))
        update.events.extend(self.debouncer.flush(now))
        return update

    def _out(self, cs: ChangeSet) -> Update:
        if not cs:
            return Update()
        return Update([cs], self.debouncer.offer(cs))

    # -- views --------------------------------------------------------------------------------

    def summaries(self) -> list[dict[str, Any]]:
        return [twin.summary() for twin in self.twins.values()]

    def timeline(self, device: str, start: float, end: float) -> list[dict[str, Any]]:
        line = self.timelines.get(device)
        return [] if line is None else [s.as_dict() for s in line.segments(start, end)]
