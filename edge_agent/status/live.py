"""The live view: twins and alarms of every device, fed by the supervisor, read by the API and the page.

It owns no I/O of its own: samples and events come in through
:meth:`LiveView.on_samples` and :meth:`LiveView.on_event`, time through
:meth:`LiveView.tick`; what it produces goes out through ``record`` (events to
store and sync) and the :class:`~edge_agent.status.stream.Broadcaster` (the live
stream). The optional providers (OEE, health, history, setpoint writer) are
protocols of :mod:`edge_agent.status.providers`.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from edge_agent.alarms import AlarmEngine
from edge_agent.errors import EdgeError
from edge_agent.model import Event, Sample, Value
from edge_agent.status.auth import Sessions
from edge_agent.status.history import lttb, minmax, numeric
from edge_agent.status.providers import HealthProvider, HistoryQuery, OeeProvider, SetpointWriter
from edge_agent.status.settings import PageSettings
from edge_agent.status.stream import Broadcaster
from edge_agent.twin import DeviceView, Setpoint, TwinRegistry, Update, spec_for

__all__ = ["OWN_KINDS", "LiveView", "NotFound", "Refused"]

OWN_KINDS = ("alarm_", "twin_", "operator_", "setpoint_")
"""Event kinds the live view makes itself (ignored when they come back through :meth:`LiveView.on_event`)."""
GATEWAY = "_gateway"


class NotFound(EdgeError, KeyError):
    """No such device or tag."""


class Refused(EdgeError, ValueError):
    """A request that cannot be carried out (a read-only tag, writes not enabled...)."""


class LiveView:
    """Twins, alarms and the live stream of one gateway (see the module docstring)."""

    def __init__(
        self,
        devices: Sequence[DeviceView],
        settings: PageSettings | None = None,
        *,
        record: Callable[[Event], None] | None = None,
        gateway_id: str = "",
        oee: OeeProvider | None = None,
        health: HealthProvider | None = None,
        history: HistoryQuery | None = None,
        writer: SetpointWriter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or PageSettings()
        self.gateway_id = gateway_id
        self.record = record or (lambda event: None)
        self.oee_provider = oee
        self.health_provider = health
        self.history_query = history
        self.writer = writer
        self.clock = clock
        specs = [spec_for(d, self.settings.twin) for d in devices]
        # recent points in memory only where no history query answers from the buffer
        self.registry = TwinRegistry(specs, self.settings.twin, trends=history is None)
        self.alarms = AlarmEngine(
            {d.name: list(d.profile.alarms) for d in devices}, self.settings.alarms,
            {s.device: {t.name: t.unit for t in s.tags.values()} for s in specs},
        )
        status = self.settings.status
        self.broadcaster = Broadcaster(status.stream_queue, status.max_stream_clients)
        self.sessions = Sessions(self.settings.users, status.session_ttl_s, max_failures=status.login_max_failures,
                                 lockout_s=status.login_lockout_s)
        size = self.settings.twin.recent_events
        self.recent: dict[str, deque[dict[str, Any]]] = {s.device: deque(maxlen=size) for s in specs}
        self.recent[GATEWAY] = deque(maxlen=size)
        self.last_status: dict[str, Any] = {}
        self.events_recorded = 0
        self._providers_at = float("-inf")

    # -- inputs from the supervisor ---------------------------------------------------------------

    def set_devices(self, added: Sequence[DeviceView], removed: Sequence[str]) -> None:
        """After a config reload: forget removed devices, start fresh twins for added (or changed) ones."""
        for name in removed:
            self.registry.remove(name)
            self.alarms.remove_device(name)
            self.recent.pop(name, None)
        size = self.settings.twin.recent_events
        for device in added:
            spec = spec_for(device, self.settings.twin)
            self.registry.add(spec)
            self.alarms.add_device(device.name, list(device.profile.alarms),
                                   {t.name: t.unit for t in spec.tags.values()})
            self.recent[device.name] = deque(maxlen=size)

    def restore(self, samples: Iterable[Sample]) -> None:
        """Last known values from the buffer after a restart (stale until fresh data arrives)."""
        self._publish(self.registry.restore(samples))

    def on_samples(self, samples: Sequence[Sample]) -> None:
        """Fresh samples, as the connectors emit them."""
        if not samples:
            return
        update = self.registry.apply(samples)
        events: list[Event] = []
        for cs in update.changes:
            if "derived.state" in cs.changes:
                twin = self.registry.twins[cs.device]
                st = twin.state
                if not st.stale and st.since is not None:
                    events += self.alarms.on_state(cs.device, st.category, st.since, cs.ts)
        for sample in samples:
            if sample.device in self.registry:
                events += self.alarms.on_sample(sample)
        self._publish(update)
        self._alarm_events(events)

    def on_event(self, event: Event) -> None:
        """An event recorded by the agent (connections, buffer, sync...): shown, and connections followed."""
        if event.kind.startswith(OWN_KINDS):
            return
        if event.kind in ("device_connected", "device_disconnected") and event.device in self.registry:
            state = "connected" if event.kind == "device_connected" else "disconnected"
            self.on_connection(event.device, state, event.ts, event.attributes.get("error"))
        self._remember(event)

    def on_connection(self, device: str, state: str, since: float, error: str | None = None) -> None:
        """A connector's state: starting, connected, disconnected or stopped."""
        now = self.clock()
        self._publish(self.registry.set_connection(device, state, since, error))
        self._alarm_events(self.alarms.on_connection(device, state != "disconnected", since, now))

    def on_anomaly(self, device: str, tag: str, active: bool, score: float | None = None, detail: str = "") -> None:
        """Predictive maintenance saw (or stopped seeing) an anomaly on a tag."""
        self._alarm_events(self.alarms.on_anomaly(device, tag, active, self.clock(), score, detail))

    def tick(self, now: float | None = None) -> None:
        """Time passing (call about once a second): debounced changes, on-delays, shelving, OEE, shifts."""
        now = self.clock() if now is None else now
        update = self.registry.tick(now)
        if now - self._providers_at >= self.settings.status.oee_refresh_s:
            self._providers_at = now
            for device in self.registry.twins:
                if self.oee_provider is not None:
                    update.add(self.registry.set_oee(device, self.oee_provider.oee(device, now), now))
                if self.health_provider is not None:
                    update.add(self.registry.set_health(device, self.health_provider.health(device, now), now))
        self._publish(update)
        self._alarm_events(self.alarms.tick(now))

    def heartbeat(self, status: dict[str, Any]) -> None:
        """The agent's status (``Agent.status()``), sent to every client as a sign of life."""
        self.last_status = gateway_summary(status, self.broadcaster.stats(), self.clock())
        self.broadcaster.publish("status", self.last_status)

    # -- operator actions -------------------------------------------------------------------------

    def acknowledge(self, alarm_id: str, user: str, note: str = "") -> dict[str, Any]:
        self._alarm_events(self.alarms.acknowledge(alarm_id, user, self.clock(), note))
        return self.alarms.get(alarm_id).as_dict()

    def shelve(self, alarm_id: str, user: str, duration_s: float | None = None, note: str = "") -> dict[str, Any]:
        self._alarm_events(self.alarms.shelve(alarm_id, user, self.clock(), duration_s, note))
        return self.alarms.get(alarm_id).as_dict()

    def unshelve(self, alarm_id: str, user: str) -> dict[str, Any]:
        self._alarm_events(self.alarms.unshelve(alarm_id, user, self.clock()))
        return self.alarms.get(alarm_id).as_dict()

    def operator_event(self, kind: str, user: str, **attrs: Any) -> None:
        """Record an operator action (``operator_login``, ...) with the user's name."""
        self._emit(Event(GATEWAY, kind, {"user": user, **attrs}, ts=self.clock()))

    async def request_setpoint(self, device: str, tag: str, value: Value, user: str) -> dict[str, Any]:
        """Send a setpoint through the guarded write path; the twin's ``desired`` follows its progress."""
        twin = self.registry.get(device)
        if twin is None:
            raise NotFound(f"no device '{device}'")
        if tag not in twin.spec.tags:
            raise NotFound(f"device '{device}' has no tag '{tag}'")
        if not twin.spec.tags[tag].writable:
            raise Refused(f"tag '{tag}' is not writable (the profile does not mark it 'writable = true')")
        now = self.clock()
        sp = Setpoint(uuid.uuid4().hex[:12], tag, value, user, now, "requested", updated_at=now)
        self._publish(self.registry.set_desired(device, sp))
        self._emit(Event(device, "setpoint_requested", {"id": sp.id, "tag": tag, "value": value, "user": user},
                         ts=now))
        if self.writer is None:
            done = replace(sp, status="refused", detail="writes are not enabled on this gateway",
                           updated_at=self.clock())
        else:
            try:
                await self.writer.write(device, tag, value)
            except EdgeError as exc:
                refused = "refused" in type(exc).__name__.lower()
                done = replace(sp, status="refused" if refused else "failed", detail=str(exc), updated_at=self.clock())
            else:
                done = replace(sp, status="written", updated_at=self.clock())
        self._publish(self.registry.set_desired(device, done))
        self._emit(Event(device, f"setpoint_{done.status}", {
            "id": sp.id, "tag": tag, "value": value, "user": user, "detail": done.detail,
        }, ts=done.updated_at or now))
        return done.as_dict()

    # -- views ------------------------------------------------------------------------------------

    def devices(self) -> list[dict[str, Any]]:
        return self.registry.summaries()

    def twin(self, device: str) -> dict[str, Any]:
        twin = self.registry.get(device)
        if twin is None:
            raise NotFound(f"no device '{device}'")
        return twin.as_dict()

    def events(self, device: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        if device is None:
            merged = [e for q in self.recent.values() for e in q]
        elif device in self.recent:
            merged = list(self.recent[device])
        else:
            raise NotFound(f"no device '{device}'")
        return sorted(merged, key=lambda e: e["ts"], reverse=True)[:limit]

    def timeline(self, device: str, start: float, end: float) -> list[dict[str, Any]]:
        if device not in self.registry:
            raise NotFound(f"no device '{device}'")
        return self.registry.timeline(device, start, end)

    async def history(self, device: str, tag: str, start: float, end: float, points: int,
                      mode: str = "minmax") -> dict[str, Any]:
        """A tag's values in ``[start, end]`` downsampled to at most ``points``: from the buffer when a
        history query is wired, else from the recent points in memory."""
        twin = self.registry.get(device)
        if twin is None:
            raise NotFound(f"no device '{device}'")
        limit = max(points, 1) * 200
        source = "memory"
        raw: Sequence[tuple[float, Value]]
        if self.history_query is not None:
            raw = await self.history_query(device, tag, start, end, limit)
            source = "buffer"
        else:
            raw = self.registry.trends.get(device, tag, start, end)
        values = numeric(raw)
        out: dict[str, Any] = {
            "device": device, "tag": tag, "unit": twin.spec.tag(tag).unit, "from": start, "to": end,
            "mode": mode, "source": source, "raw_points": len(raw), "truncated": len(raw) >= limit,
        }
        if mode == "lttb":
            chosen = lttb(values, points)
            out.update(t=[p[0] for p in chosen], v=[p[1] for p in chosen])
        else:
            buckets = minmax(values, points, start, end)
            out.update(t=[b[0] for b in buckets], v=[b[1] for b in buckets], min=[b[2] for b in buckets],
                       max=[b[3] for b in buckets])
        return out

    def snapshot(self) -> dict[str, Any]:
        """Everything a page needs to start: the overview, active alarms, the last status."""
        return {
            "gateway_id": self.gateway_id, "devices": self.devices(),
            "alarms": [a.as_dict() for a in self.alarms.select("active")], "status": self.last_status,
            "ts": self.clock(),
        }

    # -- outputs ----------------------------------------------------------------------------------

    def _publish(self, update: Update) -> None:
        for cs in update.changes:
            self.broadcaster.publish("twin", cs.as_dict())
        for event in update.events:
            self._record(event)

    def _alarm_events(self, events: list[Event]) -> None:
        if not events:
            return
        touched: dict[str, None] = {}
        for event in events:
            self._emit(event)
            alarm_id = event.attributes.get("alarm_id")
            if alarm_id in self.alarms.alarms:
                alarm = self.alarms.alarms[alarm_id].as_dict()
                self.broadcaster.publish("alarm", {"event": event.kind, "alarm": alarm})
            touched[event.device] = None
        now = self.clock()
        for device in touched:
            self._publish(self.registry.set_alarms(device, self.alarms.summaries(device), now))

    def _emit(self, event: Event) -> None:
        self._record(event)
        self._remember(event)

    def _record(self, event: Event) -> None:
        self.events_recorded += 1
        self.record(event)

    def _remember(self, event: Event) -> None:
        item = {"id": event.id, "ts": event.ts, "device": event.device, "kind": event.kind,
                "attributes": event.attributes}
        self.recent.get(event.device, self.recent[GATEWAY]).append(item)
        self.broadcaster.publish("event", item)


def gateway_summary(status: dict[str, Any], stream: dict[str, int], now: float) -> dict[str, Any]:
    """The part of ``Agent.status()`` the page shows as gateway health."""
    buffer = status.get("buffer", {})
    sync = status.get("sync", {})
    dropped = buffer.get("dropped", {}) or {}
    return {
        "gateway_id": status.get("gateway_id"),
        "version": status.get("version"),
        "uptime_s": status.get("uptime_s"),
        "devices": {
            name: {k: d.get(k) for k in ("state", "since", "samples", "errors", "last_error", "protocol")}
            for name, d in (status.get("devices") or {}).items()
        },
        "buffer": {
            "samples_rows": buffer.get("samples_rows"), "max_rows": buffer.get("max_rows"),
            "used_bytes": buffer.get("used_bytes"), "max_bytes": buffer.get("max_bytes"),
            "unsynced": buffer.get("unsynced", {}), "queued": buffer.get("queued"),
            "dropped": sum(int(v) for v in dropped.values() if isinstance(v, int | float)),
            "write": buffer.get("write"), "write_error": buffer.get("write_error"),
        },
        "sync": {k: sync.get(k) for k in ("last_result", "last_success", "last_error", "mode", "drain_eta_s")},
        "stream": stream,
        "ts": now,
    }
