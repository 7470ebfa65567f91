"""MQTT side: telemetry on Mosquitto and on the embedded amqtt broker, reconnects."""

from __future__ import annotations

import asyncio
import json
import queue
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import paho.mqtt.client as mqtt

from simulators.broker import broker_reachable, embedded_broker, free_port, parse_mqtt_url
from simulators.mqtt_sensors import SensorPublisher, topic_for
from simulators.plant import VibrationSensor

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@asynccontextmanager
async def subscriber(host: str, port: int, topic: str) -> AsyncIterator[queue.Queue[mqtt.MQTTMessage]]:
    """A paho client subscribed to ``topic``; yields once the subscription is acknowledged."""
    messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed = queue.Queue[bool]()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{uuid.uuid4().hex[:8]}")
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda *_: subscribed.put(True)
    client.on_message = lambda _c, _u, msg: messages.put(msg)
    client.connect_async(host, port, keepalive=10)
    client.loop_start()
    try:
        await asyncio.to_thread(subscribed.get, True, 5)  # the broker may run in this event loop
        yield messages
    finally:
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)


async def next_message(messages: queue.Queue[mqtt.MQTTMessage], topic: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no message on {topic}"
        msg = await asyncio.to_thread(messages.get, True, remaining)
        if msg.topic == topic:
            return json.loads(msg.payload)


def check_shape(payload: dict) -> None:
    assert set(payload) == {"ts", "vibration", "temperature", "battery"}
    assert set(payload["vibration"]) == {"rms", "peak", "crest"}
    assert TS.fullmatch(payload["ts"])
    assert all(isinstance(v, float) for v in payload["vibration"].values())
    assert isinstance(payload["temperature"], float) and isinstance(payload["battery"], int)


async def test_telemetry_on_mosquitto(mosquitto: str) -> None:
    host, port = parse_mqtt_url(mosquitto)
    sensor = VibrationSensor("vib-1", seed=1)
    topic = topic_for("vib-1")
    assert topic == "plant/sensors/vib-1/telemetry"
    publisher = SensorPublisher([sensor], mosquitto, interval_s=0.2)
    async with subscriber(host, port, "plant/sensors/+/telemetry") as messages, publisher:
        assert await publisher.wait_connected(5)
        stop = asyncio.Event()
        task = asyncio.create_task(publisher.run(stop))
        payload = await next_message(messages, topic)
        stop.set()
        await task
    check_shape(payload)
    sent = datetime.strptime(payload["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(sent.timestamp() - time.time()) < 10
    assert publisher.published >= 1 and not publisher.connected


async def test_embedded_broker_and_reconnect() -> None:
    port = free_port()
    sensor = VibrationSensor("vib-7", seed=2)
    topic = topic_for("vib-7")
    async with embedded_broker(port) as url:
        assert url == f"mqtt://127.0.0.1:{port}"
        assert await asyncio.to_thread(broker_reachable, "127.0.0.1", port)  # the broker runs in this loop
        assert parse_mqtt_url(url) == ("127.0.0.1", port)
        publisher = SensorPublisher([sensor], url, interval_s=0.2)
        await publisher.start()
        try:
            assert await publisher.wait_connected(5)
            async with subscriber("127.0.0.1", port, topic) as messages:
                assert publisher.publish_all() == 1
                check_shape(await next_message(messages, topic))
        except BaseException:
            await publisher.stop()
            raise
    # the broker is gone: the publisher notices and drops readings
    for _ in range(50):
        if not publisher.connected:
            break
        await asyncio.sleep(0.1)
    assert not publisher.connected
    assert publisher.publish_all() == 0 and publisher.dropped == 1
    try:
        async with embedded_broker(port) as url:
            assert await publisher.wait_connected(10), "did not reconnect"
            async with subscriber("127.0.0.1", port, topic) as messages:
                assert publisher.publish_all() == 1
                check_shape(await next_message(messages, topic))
    finally:
        await publisher.stop()
    assert publisher.connects == 2
