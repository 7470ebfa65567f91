"""Run the whole simulated plant in the current event loop.

::

    async with plant_running(seed=42, modbus_port=5020, opcua_port=4840) as sim:
        sim.modbus_port, sim.opcua_url, sim.mqtt_url   # where the devices are
        sim.plant.cnc[0].state                          # ground truth (see simulators.plant)
        await sim.advance(60)                           # jump the model 60 s ahead

The model advances with the wall clock times ``speed`` every ``tick_s``
seconds and the servers are refreshed after each step; with ``speed=0`` the
model only moves through :meth:`PlantHandle.advance`. Background work runs in
one supervisor task holding an :class:`asyncio.TaskGroup`; leaving the block
stops it and closes every server. An error in the background work is raised
when the block exits (and is visible earlier as ``handle.error``). If the MQTT
broker does not answer, startup waits up to 5 s, then goes on; the sensors
publish once the broker is there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from simulators.broker import (
    DEFAULT_MQTT_URL,
    broker_reachable,
    embedded_broker,
    free_port,
    parse_mqtt_url,
)
from simulators.modbus_server import CncModbusServer
from simulators.mqtt_sensors import SensorPublisher, topic_for
from simulators.opcua_server import PackagingOpcuaServer
from simulators.plant import DEFAULT_SENSOR_LIFE_S, Plant

log = logging.getLogger("simulators.runner")

MQTT_CONNECT_WAIT_S = 5.0


@dataclass
class PlantHandle:
    """What :func:`plant_running` yields: the model and where its devices are served."""

    plant: Plant
    host: str
    modbus_port: int | None
    opcua_url: str | None
    mqtt_url: str | None
    embedded_broker: bool = False
    unit_ids: dict[str, int] = field(default_factory=dict)
    modbus: CncModbusServer | None = None
    opcua: PackagingOpcuaServer | None = None
    publisher: SensorPublisher | None = None
    waveform_publisher: SensorPublisher | None = None
    error: BaseException | None = None

    @property
    def modbus_url(self) -> str | None:
        return None if self.modbus_port is None else f"modbus://{self.host}:{self.modbus_port}"

    @property
    def opcua_port(self) -> int | None:
        return None if self.opcua is None else self.opcua.port

    @property
    def mqtt_host_port(self) -> tuple[str, int] | None:
        return None if self.mqtt_url is None else parse_mqtt_url(self.mqtt_url)

    @property
    def topics(self) -> dict[str, str]:
        """MQTT topic per sensor name."""
        topics = {s.name: topic_for(s.name) for s in self.plant.sensors}
        return topics | {s.name: topic_for(s.name, waveform=True) for s in self.plant.waveform_sensors}

    async def refresh(self) -> None:
        """Copy the model's current values into the Modbus registers and OPC UA nodes."""
        if self.modbus is not None:
            await self.modbus.update()
        if self.opcua is not None:
            await self.opcua.update()

    async def advance(self, sim_seconds: float) -> None:
        """Step the model ``sim_seconds`` ahead at once and refresh the servers."""
        self.plant.step(sim_seconds)
        await self.refresh()

    def publish_now(self) -> int:
        """Publish one reading per sensor immediately (besides the periodic ones)."""
        return self.publisher.publish_all() if self.publisher is not None else 0


async def resolve_mqtt_url(
    mqtt_url: str | None, stack: AsyncExitStack, host: str = "127.0.0.1"
) -> tuple[str | None, bool]:
    """``auto`` -> the local broker on 1883 if reachable, else an embedded broker on a free port.

    Returns the URL and whether an embedded broker was started (it lives as long as ``stack``).
    """
    if mqtt_url != "auto":
        return mqtt_url, False
    if await asyncio.to_thread(broker_reachable, "127.0.0.1", 1883):
        return DEFAULT_MQTT_URL, False
    url = await stack.enter_async_context(embedded_broker(free_port(host), host))
    return url, True


async def _tick(handle: PlantHandle, tick_s: float, speed: float, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    last = loop.time()
    while True:
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), tick_s)
        if stop.is_set():
            return
        now = loop.time()
        handle.plant.step((now - last) * speed)
        last = now
        await handle.refresh()


async def _supervise(handle: PlantHandle, tick_s: float, speed: float, stop: asyncio.Event) -> None:
    try:
        async with asyncio.TaskGroup() as tg:
            if speed > 0:
                tg.create_task(_tick(handle, tick_s, speed, stop), name="plant-tick")
            if handle.publisher is not None:
                tg.create_task(handle.publisher.run(stop), name="mqtt-publish")
            if handle.waveform_publisher is not None:
                tg.create_task(handle.waveform_publisher.run(stop), name="mqtt-publish-waveform")
    except ExceptionGroup as group:
        exc = group.exceptions[0] if len(group.exceptions) == 1 else group
        handle.error = exc
        log.error("simulated plant failed: %r", exc)
        raise exc from None


@asynccontextmanager
async def plant_running(
    seed: int = 42,
    cnc: int = 2,
    lines: int = 1,
    sensors: int = 2,
    host: str = "127.0.0.1",
    modbus_port: int = 5020,
    opcua_port: int = 4840,
    mqtt_url: str | None = DEFAULT_MQTT_URL,
    tick_s: float = 0.5,
    publish_interval_s: float = 1.0,
    speed: float = 1.0,
    sensor_life_s: float = DEFAULT_SENSOR_LIFE_S,
    plant: Plant | None = None,
    waveform_sensors: int = 0,
) -> AsyncIterator[PlantHandle]:
    """Serve a simulated plant: Modbus TCP (CNC), OPC UA (lines) and MQTT (sensors).

    ``mqtt_url`` may be ``"auto"`` (local broker on 1883, else an embedded one
    on a free port) or None (no MQTT). A server is left out when it has no
    machines. ``plant`` replaces the model built from seed and counts.
    """
    if tick_s <= 0 or speed < 0:
        raise ValueError("tick_s must be > 0 and speed >= 0")
    model = plant or Plant(seed=seed, cnc=cnc, lines=lines, sensors=sensors, sensor_life_s=sensor_life_s,
                           waveform_sensors=waveform_sensors)
    stop = asyncio.Event()
    async with AsyncExitStack() as stack:
        handle = PlantHandle(plant=model, host=host, modbus_port=None, opcua_url=None, mqtt_url=None)
        if model.cnc:
            handle.modbus = await stack.enter_async_context(CncModbusServer(model.cnc, host, modbus_port))
            handle.modbus_port = modbus_port
            handle.unit_ids = dict(handle.modbus.unit_ids)
        if model.lines:
            opcua = PackagingOpcuaServer(model.lines, host, opcua_port)
            handle.opcua = await stack.enter_async_context(opcua)
            handle.opcua_url = handle.opcua.url
        if (model.sensors or model.waveform_sensors) and mqtt_url is not None:
            url, handle.embedded_broker = await resolve_mqtt_url(mqtt_url, stack, host)
            assert url is not None
            handle.mqtt_url = url
            if model.sensors:
                publisher = SensorPublisher(model.sensors, url, publish_interval_s)
                handle.publisher = await stack.enter_async_context(publisher)
            if model.waveform_sensors:
                publisher = SensorPublisher(model.waveform_sensors, url, publish_interval_s, waveform=True)
                handle.waveform_publisher = await stack.enter_async_context(publisher)
            for started in (handle.publisher, handle.waveform_publisher):
                if started is not None and not await started.wait_connected(MQTT_CONNECT_WAIT_S):
                    log.warning("MQTT broker %s not reachable yet; sensors publish once it is", url)
                    break
        await handle.refresh()
        supervisor = asyncio.create_task(_supervise(handle, tick_s, speed, stop), name="plant-supervisor")
        body_failed = False
        try:
            yield handle
        except BaseException:
            body_failed = True
            raise
        finally:
            stop.set()
            try:
                await supervisor
            except Exception:
                if not body_failed:  # otherwise keep the body's exception; ours is in handle.error
                    raise


async def run_plant(
    stop: asyncio.Event | None = None,
    duration: float | None = None,
    on_ready: Callable[[PlantHandle], None] | None = None,
    **options: Any,
) -> None:
    """Run :func:`plant_running` (``options`` are its arguments) until ``stop`` is set or for ``duration`` s.

    ``on_ready`` is called with the handle once every server is up.
    """
    stop = stop or asyncio.Event()
    async with plant_running(**options) as handle:
        if on_ready is not None:
            on_ready(handle)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
