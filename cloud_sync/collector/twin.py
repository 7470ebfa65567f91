"""The latest twin of each device, as one batch changes it: computed in Python, written set-based.

A batch's rows are reduced to the newest value per key *before* they reach the
database, so the store writes each key once per batch (one ``executemany`` or
one ``INSERT ... SELECT`` per table) and compares instants in SQL: a value is
replaced only by one at least as new, so batches arriving out of order never
undo newer values.

* **reported values**, per (device, tag): ``(ts, value, quality)`` from samples
  and from the ``reported.<tag>`` entries of ``twin_changed`` events;
* **derived figures**, per (device, name), each with the instant it describes:

  ============== =================================================== =====================
  name           from                                                instant
  ============== =================================================== =====================
  state          ``state_changed``; ``twin_changed`` derived.state   the event's ts
  connection     ``device_connected``/``device_disconnected``;        the event's ts
                 ``twin_changed`` derived.connection
  oee            ``twin_changed`` derived.oee (live shift figures)   the event's ts
  parts          ``twin_changed`` derived.parts                      the event's ts
  health         ``twin_changed`` derived.health                     the event's ts
  alarms         ``twin_changed`` derived.alarms:                    the event's ts
                 ``{"active": n, "alarms": [...]}``
  oee_rollup.P   ``oee_rollup`` of period kind P (hour, shift, day)  the period's end
  health_rollup.P ``health_rollup`` of period kind P                 the period's end
  maintenance    ``maintenance_recommended``                         the event's ts
  ============== =================================================== =====================

* **last seen**, per device: the newest instant of any of the above.

Rows with equal instants: the later row of the batch (higher ``seq``) wins, and
across batches the later ingest. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, TypeGuard

__all__ = ["QUALITY_CODES", "TwinUpdate", "from_events", "from_samples"]

QUALITY_CODES: Mapping[str, int] = {"good": 0, "uncertain": 1, "bad": 2}
"""Quality names of ``twin_changed`` events as the sample quality codes the collector stores."""

_TS = itemgetter(3)
_TWIN_CHANGED = "twin_changed"
_DERIVED_PATHS = {
    "derived.state": "state",
    "derived.connection": "connection",
    "derived.oee": "oee",
    "derived.parts": "parts",
    "derived.health": "health",
}
_SCALARS = (str, int, float, type(None))  # bool is an int
_ROLLUPS = {"oee_rollup": "oee_rollup", "health_rollup": "health_rollup"}


@dataclass
class TwinUpdate:
    """The newest value per key that one batch carries (see the module docstring)."""

    tags: dict[tuple[str, str], tuple[float, Any, int]] = field(default_factory=dict)
    derived: dict[tuple[str, str], tuple[float, Any]] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.seen)

    def tag(self, device: str, tag: str, ts: float, value: Any, quality: int) -> None:
        key = (device, tag)
        old = self.tags.get(key)
        if old is None or ts >= old[0]:
            self.tags[key] = (ts, value, quality)
        self._saw(device, ts)

    def figure(self, device: str, name: str, ts: float, value: Any) -> None:
        key = (device, name)
        old = self.derived.get(key)
        if old is None or ts >= old[0]:
            self.derived[key] = (ts, value)
        self._saw(device, ts)

    def _saw(self, device: str, ts: float) -> None:
        if ts > self.seen.get(device, float("-inf")):
            self.seen[device] = ts

    def tag_rows(self) -> list[tuple[str, str, float, Any, int]]:
        """``(device, tag, ts, value, quality)`` sorted by key (a fixed lock order for concurrent writers)."""
        return [(d, t, ts, v, q) for (d, t), (ts, v, q) in sorted(self.tags.items(), key=_key)]

    def derived_rows(self) -> list[tuple[str, str, float, Any]]:
        """``(device, name, ts, value)`` sorted by key."""
        return [(d, n, ts, v) for (d, n), (ts, v) in sorted(self.derived.items(), key=_key)]

    def device_rows(self) -> list[tuple[str, float]]:
        """``(device, last_seen)`` sorted by device."""
        return sorted(self.seen.items())


def _key(item: tuple[tuple[str, str], Any]) -> tuple[str, str]:
    return item[0]


def from_samples(rows: Iterable[list[Any]]) -> TwinUpdate:
    """The update of sample rows ``[seq, device, tag, ts, value, quality]`` (in ``seq`` order).

    A stable sort by ``ts`` (linear on rows already in time order) and a dict
    keep the newest row per (device, tag), the later ``seq`` among equal
    instants: both run in C, which keeps this a small part of an ingest.
    """
    latest = {(row[1], row[2]): row for row in sorted(rows, key=_TS)}
    update = TwinUpdate()
    update.tags = {key: (row[3], row[4], row[5]) for key, row in latest.items()}
    seen = update.seen
    for (device, _tag), (ts, _value, _quality) in update.tags.items():
        if ts > seen.get(device, float("-inf")):
            seen[device] = ts
    return update


def from_events(rows: Iterable[list[Any]]) -> TwinUpdate:
    """The update of event rows ``[seq, event_id, ts, device, kind, attributes]`` (in ``seq`` order).

    Events of other kinds, and attributes not shaped as the catalogue defines
    them (the collector stores events it does not interpret), change nothing.
    """
    update = TwinUpdate()
    for _seq, _event_id, ts, device, kind, attributes in rows:
        if not isinstance(attributes, dict):
            continue
        if kind == _TWIN_CHANGED:
            _twin_changed(update, device, ts, attributes.get("changes"))
        elif kind == "state_changed" and isinstance(attributes.get("state"), str):
            state = {
                "category": attributes["state"],
                "code": attributes.get("code"),
                "previous": attributes.get("previous"),
                "since": ts,
            }
            update.figure(device, "state", ts, state)
        elif kind == "device_connected":
            update.figure(device, "connection", ts, {"state": "connected", "since": ts, "last_error": None})
        elif kind == "device_disconnected":
            error = attributes.get("error")
            update.figure(device, "connection", ts, {"state": "disconnected", "since": ts, "last_error": error})
        elif kind in _ROLLUPS:
            period, end = attributes.get("period"), attributes.get("period_end")
            if isinstance(period, str) and _is_instant(end):
                update.figure(device, f"{_ROLLUPS[kind]}.{period}", float(end), attributes)
        elif kind == "maintenance_recommended":
            update.figure(device, "maintenance", ts, attributes)
    return update


def _twin_changed(update: TwinUpdate, device: str, ts: float, changes: Any) -> None:
    if not isinstance(changes, dict):
        return
    for path, value in changes.items():
        if not isinstance(path, str):
            continue
        if path.startswith("reported."):
            if not isinstance(value, dict) or not isinstance(value.get("value"), _SCALARS):
                continue
            at = value.get("ts")
            quality = value.get("quality", "good")
            code = QUALITY_CODES.get(quality, 1) if isinstance(quality, str) else quality
            if not isinstance(code, int) or isinstance(code, bool):
                code = 1
            update.tag(device, path[len("reported."):], float(at) if _is_instant(at) else ts, value["value"], code)
        elif path == "derived.alarms":
            alarms = value if isinstance(value, list) else []
            update.figure(device, "alarms", ts, {"active": len(alarms), "alarms": alarms})
        elif path in _DERIVED_PATHS:
            update.figure(device, _DERIVED_PATHS[path], ts, value)


def _is_instant(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value and abs(value) < 1e12
