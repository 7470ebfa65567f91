"""Which twin changes become ``twin_changed`` events: a deadband per tag and a debounce interval.

The live stream carries every change; the event log (which is synced to the
collector) only carries changes that matter:

* a reported value passes when it moved past its tag's deadband from the last
  value *sent* (absolute, or relative to that value for float tags); a change of
  quality or staleness always passes;
* OEE figures pass when one ratio moved by ``oee_deadband``;
* state, connection, alarms, health and setpoints always pass, at once;
* values and counts that pass within ``min_interval_s`` of the tag's last event
  wait and go out with :meth:`ChangeDebouncer.flush` (only the newest value).

Pure: instants come from the change sets and from the ``now`` of ``flush``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edge_agent.model import Event
from edge_agent.twin.model import ChangeSet
from edge_agent.twin.settings import TwinSettings
from edge_agent.twin.spec import TwinSpec

__all__ = ["TWIN_CHANGED", "ChangeDebouncer"]

TWIN_CHANGED = "twin_changed"
_OEE_KEYS = ("availability", "performance", "quality", "oee")
_DEBOUNCED = ("reported.", "derived.oee", "derived.parts")


@dataclass(slots=True)
class _Sent:
    value: Any
    at: float
    pending: Any = None
    pending_at: float | None = None


class ChangeDebouncer:
    """Turns change sets into ``twin_changed`` events (see the module docstring)."""

    def __init__(self, specs: Mapping[str, TwinSpec], settings: TwinSettings | None = None) -> None:
        self.specs = specs
        self.settings = settings or TwinSettings()
        self._sent: dict[tuple[str, str], _Sent] = {}
        self.suppressed = 0

    def offer(self, changes: ChangeSet) -> list[Event]:
        """Events for the changes that pass now (at most one, for the change set's device)."""
        out: dict[str, Any] = {}
        for path, value in changes.changes.items():
            key = (changes.device, path)
            sent = self._sent.get(key)
            if sent is not None and not self._passes(changes.device, path, sent.value, value):
                sent.pending, sent.pending_at = None, None
                self.suppressed += 1
                continue
            debounced = path.startswith(_DEBOUNCED)
            if sent is None or not debounced or changes.ts - sent.at >= self.settings.min_interval_s:
                self._sent[key] = _Sent(value, changes.ts)
                out[path] = value
            else:
                sent.pending, sent.pending_at = value, changes.ts
        return [self._event(changes.device, changes.ts, out)] if out else []

    def flush(self, now: float) -> list[Event]:
        """Events for waiting changes whose interval has passed (one per device)."""
        by_device: dict[str, dict[str, Any]] = {}
        for (device, path), sent in self._sent.items():
            if sent.pending_at is not None and now - sent.at >= self.settings.min_interval_s:
                by_device.setdefault(device, {})[path] = sent.pending
                sent.value, sent.at, sent.pending, sent.pending_at = sent.pending, now, None, None
        return [self._event(device, now, changes) for device, changes in by_device.items()]

    def forget(self, device: str) -> None:
        for key in [k for k in self._sent if k[0] == device]:
            del self._sent[key]

    @staticmethod
    def _event(device: str, ts: float, changes: dict[str, Any]) -> Event:
        return Event(device, TWIN_CHANGED, {"changes": changes}, ts=ts)

    def _passes(self, device: str, path: str, old: Any, new: Any) -> bool:
        if path.startswith("reported."):
            return self._value_passes(device, path[len("reported."):], old, new)
        if path == "derived.oee":
            if old is None or new is None:
                return old is not new
            step = self.settings.oee_deadband
            return any(abs(float(new[k]) - float(old[k])) >= step for k in _OEE_KEYS if k in new and k in old) or (
                old.get("good"), old.get("scrap")) != (new.get("good"), new.get("scrap"))
        return bool(old != new)

    def _value_passes(self, device: str, tag: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        if old.get("quality") != new.get("quality") or old.get("stale") != new.get("stale"):
            return True
        a, b = old.get("value"), new.get("value")
        if not (isinstance(a, int | float) and isinstance(b, int | float) and _is_number(a) and _is_number(b)):
            return bool(a != b)
        spec = self.specs.get(device)
        tag_spec = spec.tag(tag) if spec is not None else None
        if tag_spec is None:
            return bool(a != b)
        band = tag_spec.deadband * abs(float(a)) if tag_spec.relative else tag_spec.deadband
        delta = abs(float(b) - float(a))
        return delta > band if band > 0 else delta > 0


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
