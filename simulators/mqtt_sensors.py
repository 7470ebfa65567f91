"""Publish the vibration sensors' telemetry over MQTT, like the wireless sensors' gateway does.

Each sensor's reading goes as JSON to ``plant/sensors/<name>/telemetry`` with
QoS 1 every ``interval_s`` seconds. With ``waveform=True`` each sensor sends a
window of raw acceleration instead (:meth:`VibrationSensor.waveform`, about
40 KB of JSON) to ``plant/sensors/<name>/waveform`` (profile
``vibration_waveform``); ``python -m simulators.mqtt_sensors --waveform`` runs one
such sensor on its own. paho-mqtt runs its network thread
(``loop_start``) and reconnects by itself when the broker goes away; readings
taken while disconnected are dropped (counted in ``dropped``), like a sensor
gateway without storage would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt

from simulators.bearing import WAVEFORM_POINTS, VibrationSensor
from simulators.broker import parse_mqtt_url

TOPIC = "plant/sensors/{device}/telemetry"
WAVEFORM_TOPIC = "plant/sensors/{device}/waveform"

log = logging.getLogger("simulators.mqtt")


def topic_for(name: str, waveform: bool = False) -> str:
    return (WAVEFORM_TOPIC if waveform else TOPIC).format(device=name)


class SensorPublisher:
    """Periodic MQTT publisher for ``sensors``; use ``async with`` and :meth:`run`."""

    def __init__(
        self,
        sensors: Sequence[VibrationSensor],
        broker_url: str = "mqtt://127.0.0.1:1883",
        interval_s: float = 1.0,
        qos: int = 1,
        client_id: str | None = None,
        clock: Callable[[], float] = time.time,
        waveform: bool = False,
        waveform_points: int = WAVEFORM_POINTS,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.sensors = list(sensors)
        self.waveform = waveform
        self.waveform_points = waveform_points
        self.broker_url = broker_url
        self.host, self.port = parse_mqtt_url(broker_url)
        self.interval_s = interval_s
        self.qos = qos
        self.clock = clock
        self.published = 0
        self.dropped = 0
        self.connects = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = asyncio.Event()
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"edge-sim-sensors-{uuid.uuid4().hex[:8]}",
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=5)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._started = False

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- paho callbacks (network thread) ------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT broker %s refused the connection: %s", self.broker_url, reason)
            return
        self.connects += 1
        self._set_connected(True)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._set_connected(False)

    def _set_connected(self, value: bool) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        action = self._connected.set if value else self._connected.clear
        with contextlib.suppress(RuntimeError):  # loop closing
            loop.call_soon_threadsafe(action)

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting (in the background; see :meth:`wait_connected`)."""
        self._loop = asyncio.get_running_loop()
        self._client.connect_async(self.host, self.port, keepalive=30)
        self._client.loop_start()
        self._started = True

    async def wait_connected(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        self._connected.clear()

    async def __aenter__(self) -> SensorPublisher:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- publishing ---------------------------------------------------------------

    def publish_all(self) -> int:
        """Publish one reading per sensor now; returns how many were handed to the client."""
        now = self.clock()
        sent = 0
        for sensor in self.sensors:
            if not self.connected:
                sensor.telemetry(now)  # the reading is taken (and lost) all the same
                self.dropped += 1
                continue
            payload = sensor.waveform(now, self.waveform_points) if self.waveform else sensor.telemetry(now)
            info = self._client.publish(topic_for(sensor.name, self.waveform), json.dumps(payload), qos=self.qos)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                sent += 1
            else:
                self.dropped += 1
        self.published += sent
        return sent

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Publish every ``interval_s`` seconds until ``stop`` is set (or cancelled)."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not stop.is_set():
            self.publish_all()
            next_at += self.interval_s
            delay = next_at - loop.time()
            if delay < 0:  # fell behind: skip missed periods rather than burst
                next_at = loop.time()
                delay = 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.mqtt_sensors", description=__doc__.split("\n")[0])
    parser.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--name", default="vib-w1", help="device name in the topic")
    parser.add_argument("--interval-s", type=float, default=1.0, help="seconds between messages")
    parser.add_argument("--life", type=float, default=6 * 3600.0, help="simulated seconds to failure")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--waveform", action="store_true", help="publish raw acceleration windows")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sensor = VibrationSensor(args.name, args.seed, failure_after_s=args.life)

    async def go() -> None:
        async with SensorPublisher([sensor], args.mqtt_url, args.interval_s, waveform=args.waveform) as publisher:
            log.info("publishing %s to %s", args.name, topic_for(args.name, args.waveform))
            loop = asyncio.get_running_loop()
            last = loop.time()

            def clock() -> float:
                nonlocal last
                now = loop.time()
                sensor.step((now - last) * args.speed)
                last = now
                return time.time()

            publisher.clock = clock
            await publisher.run()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(go())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
