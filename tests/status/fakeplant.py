"""A fake but realistic agent for the status page: the demo's five devices with the shipped profiles.

:class:`FakeAgent` has what the status app reads from the real ``Agent`` (config,
ready/stopping, latest, sinks, ``status()``, ``record_event``). :class:`FakePlant`
makes samples for it: two CNC machining centres, a packaging line and two
vibration sensors, with states, stop reasons, counters and analog values, and
lets a test stop a machine, start a planned stop, raise a temperature or cut a
connection. ``backfill`` plays the last hours quickly so the shift timeline,
counters and sparklines have content.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edge_agent.config import Location
from edge_agent.connectors.base import DeviceStatus
from edge_agent.model import Event, Sample, Value
from edge_agent.profiles import Profile, load_profile, shipped_profiles_dir
from edge_agent.status.live import LiveView
from edge_agent.status.settings import PageSettings
from edge_agent.twin import HealthFigures, OeeFigures, TwinSettings

CNC_REASONS = {"11": "chip clearing", "12": "tool check", "13": "material wait", "21": "spindle fault",
               "22": "hydraulic pressure low", "23": "axis alarm", "41": "break", "51": "program changeover"}
LINE_REASONS = {"31": "film jam", "32": "infeed jam", "33": "seal jaw fault", "41": "break", "51": "format change"}


@dataclass(frozen=True)
class FakeDevice:
    name: str
    profile: Profile
    location: Location

    @property
    def protocol(self) -> str:
        return self.profile.protocol


@dataclass
class FakeConfig:
    gateway_id: str
    devices: tuple[FakeDevice, ...]
    host: str = "127.0.0.1"
    port: int = 0

    @property
    def listen(self) -> tuple[str, int]:
        return self.host, self.port


@dataclass
class FakeSink:
    status: DeviceStatus


def _profile(name: str) -> Profile:
    return load_profile(shipped_profiles_dir() / f"{name}.toml")


def demo_devices() -> tuple[FakeDevice, ...]:
    cnc, line, vib = _profile("cnc_vmc"), _profile("packaging_line"), _profile("vibration_sensor")
    cell = Location(site="plant-a", area="machining", line="cell-1")
    pack = Location(site="plant-a", area="packaging", line="line-1")
    return (
        FakeDevice("cnc-1", cnc, cell), FakeDevice("cnc-2", cnc, cell), FakeDevice("pack-1", line, pack),
        FakeDevice("vib-1", vib, cell), FakeDevice("vib-2", vib, pack),
    )


def demo_settings(**status: Any) -> PageSettings:
    from edge_agent.alarms import AlarmSettings
    from edge_agent.status.auth import hash_password
    from edge_agent.status.settings import StatusSettings, UserEntry

    twin = TwinSettings(stop_reasons={"cnc_vmc": CNC_REASONS, "packaging_line": LINE_REASONS})
    users = (
        UserEntry(name="olga", password_hash=hash_password("shift-lead-1", n=2**10), role="operator"),
        UserEntry(name="victor", password_hash=hash_password("viewer-pass", n=2**10), role="viewer"),
    )
    alarms = AlarmSettings(breakdown_after_s=5.0, connection_after_s=3.0)
    return PageSettings(StatusSettings(**status), users, twin, alarms)


@dataclass
class Machine:
    """What the fake plant keeps per device."""

    device: FakeDevice
    state: int = 1
    reason: int = 0
    good: int = 0
    scrap: int = 0
    connected: bool = True
    overrides: dict[str, Value] = field(default_factory=dict)
    phase: float = 0.0
    next_part: float = 0.0


class FakeAgent:
    """The parts of ``edge_agent.supervisor.Agent`` the status app uses."""

    def __init__(self, devices: Sequence[FakeDevice] | None = None, gateway_id: str = "plant-a-gw1",
                 port: int = 0) -> None:
        self.config = FakeConfig(gateway_id, tuple(devices or demo_devices()), port=port)
        self.ready = asyncio.Event()
        self.ready.set()
        self.stopping = asyncio.Event()
        self.latest: dict[str, dict[str, Sample]] = {}
        self.sinks = {
            d.name: FakeSink(DeviceStatus(d.name, d.protocol, state="connected")) for d in self.config.devices
        }
        self.events: list[Event] = []
        self.started_at = time.time()
        self.live: LiveView | None = None

    def record_event(self, event: Event) -> None:
        self.events.append(event)
        if len(self.events) > 10_000:
            del self.events[:5000]
        if self.live is not None:
            self.live.on_event(event)

    def emit(self, samples: Sequence[Sample]) -> None:
        for s in samples:
            self.latest.setdefault(s.device, {})[s.tag] = s
            st = self.sinks[s.device].status
            st.samples += 1
            st.last_sample_ts = s.ts
        if self.live is not None:
            self.live.on_samples(samples)

    def set_connection(self, device: str, connected: bool) -> None:
        st = self.sinks[device].status
        st.state, st.since = ("connected", time.time()) if connected else ("disconnected", time.time())
        st.last_error = None if connected else "ConnectError: connection refused"
        kind = "device_connected" if connected else "device_disconnected"
        self.record_event(Event(device, kind, {} if connected else {"error": st.last_error}))

    async def status(self) -> dict[str, Any]:
        samples = sum(s.status.samples for s in self.sinks.values())
        return {
            "gateway_id": self.config.gateway_id, "version": "0.1.0", "started_at": self.started_at,
            "uptime_s": round(time.time() - self.started_at, 3),
            "devices": {n: {**s.status.as_dict(), "profile": "", "location": {}} for n, s in self.sinks.items()},
            "buffer": {
                "samples_rows": 180_000 + samples, "events_rows": len(self.events), "max_rows": 2_000_000,
                "used_bytes": 24_000_000 + 60 * samples, "max_bytes": 1024**3,
                "unsynced": {"samples": 120, "events": 2}, "dropped": {"dropped_oldest": 0, "dropped_newest": 0},
                "queued": 0, "queue_size": 20_000, "write": "ok", "write_error": None,
            },
            "sync": {"last_result": "ok", "last_success": time.time() - 1.2, "last_error": None, "mode": "live",
                     "drain_eta_s": None, "batches_sent": 42},
        }


class FakeOee:
    """An OEE provider with plausible figures from the fake plant's counters."""

    def __init__(self, plant: FakePlant) -> None:
        self.plant = plant

    def oee(self, device: str, now: float) -> OeeFigures | None:
        m = self.plant.machines.get(device)
        if m is None or m.device.profile.oee is None:
            return None
        quality = m.good / max(1, m.good + m.scrap)
        availability = {"cnc-1": 0.91, "cnc-2": 0.78, "pack-1": 0.86}.get(device, 0.85)
        performance = {"cnc-1": 0.88, "cnc-2": 0.83, "pack-1": 0.93}.get(device, 0.9)
        cycle = m.device.profile.oee.ideal_cycle_time_s
        since = self.plant.shift_from
        target = int((now - since) / cycle) if since else None
        return OeeFigures(availability, performance, quality, availability * performance * quality, m.good, m.scrap,
                          target, since, {"breakdowns": 1260.0, "setup_adjustments": 840.0, "small_stops": 410.0,
                                          "reduced_speed": 620.0, "quality": 95.0})


class FakeHealth:
    def __init__(self, plant: FakePlant) -> None:
        self.plant = plant

    def health(self, device: str, now: float) -> HealthFigures | None:
        m = self.plant.machines.get(device)
        if m is None:
            return None
        index = {"cnc-1": 94.0, "cnc-2": 71.0, "pack-1": 88.0, "vib-1": 90.0, "vib-2": 63.0}.get(device, 90.0)
        return HealthFigures(index, index < 65, round(1 - index / 100, 2), "bearing wear trend" if index < 65 else "")


class FakePlant:
    """Makes samples for a :class:`FakeAgent` (see the module docstring)."""

    def __init__(self, agent: FakeAgent, seed: int = 1) -> None:
        self.agent = agent
        self.rng = random.Random(seed)
        self.machines = {d.name: Machine(d, phase=i * 1.3) for i, d in enumerate(agent.config.devices)}
        self.shift_from: float | None = None
        for m in self.machines.values():
            m.good = self.rng.randint(40, 60) if m.device.profile.oee else 0

    # -- what a test does -----------------------------------------------------------------------

    def stop(self, device: str, reason: int = 21) -> None:
        """An unplanned stop (a breakdown with ``reason``)."""
        m = self.machines[device]
        m.state, m.reason = (3 if m.device.profile.profile.name == "cnc_vmc" else 2), reason

    def planned_stop(self, device: str) -> None:
        m = self.machines[device]
        m.state, m.reason = (4 if m.device.profile.profile.name == "cnc_vmc" else 3), 41

    def resume(self, device: str) -> None:
        m = self.machines[device]
        m.state, m.reason = 1, 0

    def set_value(self, device: str, tag: str, value: Value | None) -> None:
        m = self.machines[device]
        if value is None:
            m.overrides.pop(tag, None)
        else:
            m.overrides[tag] = value

    def disconnect(self, device: str) -> None:
        self.machines[device].connected = False
        self.agent.set_connection(device, False)

    def reconnect(self, device: str) -> None:
        self.machines[device].connected = True
        self.agent.set_connection(device, True)

    # -- making samples -------------------------------------------------------------------------

    def step(self, now: float) -> list[Sample]:
        out: list[Sample] = []
        for m in self.machines.values():
            if m.connected:
                out += self._values(m, now)
        if out:
            self.agent.emit(out)
        return out

    def _values(self, m: Machine, now: float) -> list[Sample]:
        name, kind = m.device.name, m.device.profile.profile.name
        wave = math.sin(now / 40.0 + m.phase)
        noise = self.rng.gauss
        running = m.state == 1
        if running and now >= m.next_part and m.device.profile.oee is not None:
            if self.rng.random() < 0.03:
                m.scrap += 1
            else:
                m.good += 1 if kind == "cnc_vmc" else 2
            m.next_part = now + (12.5 if kind == "cnc_vmc" else 1.0)
        values: dict[str, Value]
        if kind == "cnc_vmc":
            load = (58.0 + 6 * wave + noise(0, 1.5)) if running else 0.0
            values = {
                "state": m.state, "stop_reason": m.reason, "good_count": m.good, "scrap_count": m.scrap,
                "spindle_speed": round(8000.0 + 150 * wave, 1) if running else 0.0, "spindle_load": round(load, 1),
                "spindle_temp": round(41.0 + 4 * wave + noise(0, 0.2), 1), "coolant_temp": round(24.0 + wave, 1),
                "cycle_time": round(13.2 + 0.4 * wave, 2), "feed_rate": 1800.0 if running else 0.0,
                "alarm_code": 751 if m.state == 3 else 0, "program": "HOUSING-A12", "running": running,
                "power": round(11.0 + 3 * wave, 2) if running else 1.2, "energy": round(1520.0 + now % 1000 / 100, 2),
            }
        elif kind == "packaging_line":
            values = {
                "state": m.state, "stop_reason": m.reason, "running": running, "good_count": m.good,
                "reject_count": m.scrap, "speed": round(118.0 + 4 * wave, 1) if running else 0.0,
                "motor_current": round(5.6 + 0.5 * wave + noise(0, 0.05), 2) if running else 0.3,
                "seal_temp": round(176.0 + 3 * wave + noise(0, 0.3), 1), "recipe": "CHOCO-BAR-45G",
            }
        else:
            rms = 2.1 + 0.6 * wave + noise(0, 0.05) + (1.4 if name == "vib-2" else 0.0)
            values = {
                "vibration_rms": round(rms, 3), "vibration_peak": round(0.4 + 0.1 * wave, 3),
                "crest_factor": round(3.1 + 0.2 * wave, 2), "temperature": round(44.0 + 3 * wave, 1),
                "battery": 87.0,
            }
        values.update(m.overrides)
        return [Sample(name, tag, now, value) for tag, value in values.items()]

    def backfill(self, hours: float = 3.0, step_s: float = 20.0, now: float | None = None) -> None:
        """Play the last ``hours`` (every ``step_s``) with a few stops, so there is a shift to look at."""
        end = time.time() if now is None else now
        start = end - hours * 3600.0
        self.shift_from = start
        plan = [  # (fraction of the window, device, action)
            (0.10, "cnc-2", "stop:12"), (0.13, "cnc-2", "resume"), (0.22, "pack-1", "stop:31"),
            (0.25, "pack-1", "resume"), (0.35, "cnc-1", "planned"), (0.42, "cnc-1", "resume"),
            (0.48, "pack-1", "planned"), (0.55, "pack-1", "resume"), (0.61, "cnc-2", "stop:22"),
            (0.68, "cnc-2", "resume"), (0.74, "cnc-1", "stop:11"), (0.76, "cnc-1", "resume"),
            (0.83, "pack-1", "changeover"), (0.88, "pack-1", "resume"), (0.93, "cnc-2", "stop:13"),
            (0.95, "cnc-2", "resume"),
        ]
        t = start
        todo = list(plan)
        while t < end:
            while todo and start + todo[0][0] * (end - start) <= t:
                _, device, action = todo.pop(0)
                if action == "resume":
                    self.resume(device)
                elif action == "planned":
                    self.planned_stop(device)
                elif action == "changeover":
                    m = self.machines[device]
                    m.state, m.reason = (5 if m.device.profile.profile.name == "cnc_vmc" else 4), 51
                else:
                    self.stop(device, int(action.split(":")[1]))
            for m in self.machines.values():
                oee = m.device.profile.oee
                if m.state == 1 and oee is not None:
                    made = step_s / oee.ideal_cycle_time_s * 0.9
                    whole = int(made) + (1 if self.rng.random() < made - int(made) else 0)
                    scrap = sum(1 for _ in range(whole) if self.rng.random() < 0.02)
                    m.good += whole - scrap
                    m.scrap += scrap
            self.step(t)
            if self.agent.live is not None:
                self.agent.live.tick(t)
            t += step_s

    async def run(self, interval_s: float = 0.5) -> None:
        """Make samples until cancelled."""
        while True:
            self.step(time.time())
            await asyncio.sleep(interval_s)


def wire(agent: FakeAgent, plant: FakePlant, settings: PageSettings | None = None) -> LiveView:
    """Give the fake agent a live view fed directly (as the supervisor will), with OEE and health."""
    live = LiveView(agent.config.devices, settings or demo_settings(), record=agent.record_event,
                    gateway_id=agent.config.gateway_id, oee=FakeOee(plant), health=FakeHealth(plant))
    agent.live = live
    return live
