"""MQTT connector: subscribes to the topics of a profile and turns JSON or plain payloads into samples.

QoS 1 messages are acknowledged only after their samples are committed to the
buffer (paho's ``manual_ack``), with a persistent session (``clean_session=False``,
a stable client id), so nothing is lost across a restart of the agent or the broker.
paho runs its own network thread; messages are handed to the event loop through the
sink, which blocks that thread while the write queue is full (backpressure to the broker).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import orjson
import paho.mqtt.client as mqtt

from edge_agent.connectors.base import Sink
from edge_agent.connectors.mqtt.config import MqttConnection
from edge_agent.model import Event, Quality, Sample
from edge_agent.profiles import MqttProfile, MqttTag

if TYPE_CHECKING:
    from edge_agent.config import Device

log = logging.getLogger("edge_agent.connectors.mqtt")


class PayloadError(ValueError):
    pass


def field_value(doc: Any, path: str | None) -> Any:
    if path is None:
        return doc
    node = doc
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(path)
    return node


def parse_timestamp(value: Any) -> float:
    if isinstance(value, bool):
        raise PayloadError(f"timestamp {value!r} is not a time")
    if isinstance(value, int | float):
        return float(value) / 1000.0 if value > 1e11 else float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise PayloadError(f"timestamp {value!r} is not ISO 8601") from None
        if parsed.tzinfo is None:
            raise PayloadError(f"timestamp {value!r} has no UTC offset")
        return parsed.timestamp()
    raise PayloadError(f"timestamp {value!r} is not a time")


def coerce(tag: MqttTag, raw: Any) -> Any:
    if tag.type == "string":
        return raw if isinstance(raw, str) else orjson.dumps(raw).decode()
    if tag.type == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int | float):
            return bool(raw)
        raise PayloadError(f"{tag.name}: expected a boolean, got {raw!r}")
    if isinstance(raw, bool):
        raw = int(raw)
    if not isinstance(raw, int | float):
        raise PayloadError(f"{tag.name}: expected a number, got {raw!r}")
    value = tag.convert(raw)
    if tag.type.startswith(("int", "uint")) and tag.scale == 1.0 and tag.offset == 0.0:
        return int(value)
    return float(value)


class TopicMap:
    """Which tags a topic carries, with the profile's {device} placeholders filled in."""

    def __init__(self, profile: MqttProfile, device_id: str) -> None:
        self.profile = profile
        self.by_topic: dict[str, list[MqttTag]] = {}
        for tag in profile.tags:
            topic = (tag.topic or profile.mqtt.topic).replace("{device}", device_id)
            self.by_topic.setdefault(topic, []).append(tag)
        self.wildcards = [t for t in self.by_topic if "+" in t or "#" in t]

    def tags_for(self, topic: str) -> list[MqttTag]:
        tags = self.by_topic.get(topic)
        if tags is not None:
            return tags
        for sub in self.wildcards:
            if mqtt.topic_matches_sub(sub, topic):
                return self.by_topic[sub]
        return []

    def decode(self, device: str, topic: str, payload: bytes, now: float) -> list[Sample]:
        tags = self.tags_for(topic)
        if not tags:
            return []
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise PayloadError(f"invalid JSON: {exc}") from None
        ts = now
        if isinstance(doc, dict) and self.profile.mqtt.timestamp_field:
            raw_ts = doc.get(self.profile.mqtt.timestamp_field)
            if raw_ts is not None:
                ts = parse_timestamp(raw_ts)
        samples = []
        missing = []
        for tag in tags:
            try:
                raw = field_value(doc, tag.field)
            except KeyError:
                missing.append(tag.field or tag.name)
                continue
            if raw is None:
                samples.append(Sample(device, tag.name, ts, 0.0, Quality.BAD))
                continue
            samples.append(Sample(device, tag.name, ts, coerce(tag, raw)))
        if not samples:
            raise PayloadError(f"none of the profile's fields present (missing {', '.join(missing)})")
        return samples


class MqttConnector:
    def __init__(self, device: Device, gateway_id: str) -> None:
        assert isinstance(device.profile, MqttProfile) and isinstance(device.connection, MqttConnection)
        self.device = device
        self.conn: MqttConnection = device.connection
        self.client_id = self.conn.client_id or f"{gateway_id}-{device.name}"
        self.topics = TopicMap(device.profile, self.conn.device_id or device.name)

    def _client(self) -> mqtt.Client:
        url = urlparse(self.conn.broker)
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if url.scheme == "mqtts":
            client.tls_set()
        if self.conn.username:
            client.username_pw_set(self.conn.username, self.conn.password)
        client.reconnect_delay_set(
            max(1, int(self.conn.reconnect_delay_s)), max(1, int(self.conn.reconnect_delay_max_s))
        )
        client.max_inflight_messages_set(100)
        return client

    async def run(self, sink: Sink, ready: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        url = urlparse(self.conn.broker)
        host = url.hostname or "127.0.0.1"
        port = url.port or (8883 if url.scheme == "mqtts" else 1883)
        client = self._client()
        first = asyncio.Event()
        name = self.device.name
        qos = self.conn.qos

        def on_connect(client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if reason.is_failure:
                loop.call_soon_threadsafe(sink.disconnected, f"broker refused connection: {reason}")
                return
            client.subscribe([(topic, int(qos)) for topic in self.topics.by_topic])
            loop.call_soon_threadsafe(sink.connected)
            loop.call_soon_threadsafe(first.set)

        def on_disconnect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            loop.call_soon_threadsafe(sink.disconnected, f"disconnected from {host}:{port}: {reason}")

        def on_connect_fail(_c: Any, _u: Any) -> None:
            loop.call_soon_threadsafe(sink.disconnected, f"cannot connect to broker {host}:{port}")

        def on_message(client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
            mid, msg_qos = msg.mid, msg.qos

            def ack() -> None:
                if msg_qos > 0:
                    client.ack(mid, msg_qos)

            if len(msg.payload) > self.conn.max_payload_bytes:
                self._malformed(loop, sink, msg.topic, f"payload of {len(msg.payload)} bytes over the limit")
                ack()
                return
            try:
                samples = self.topics.decode(name, msg.topic, bytes(msg.payload), time.time())
            except (PayloadError, ValueError, TypeError) as exc:
                self._malformed(loop, sink, msg.topic, str(exc))
                ack()
                return
            if not samples:
                ack()
                return
            try:
                sink.emit_threadsafe(samples, ack)
            except RuntimeError:
                # the event loop is closing: leave the message unacknowledged, the broker redelivers it
                return

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_connect_fail = on_connect_fail
        client.on_message = on_message
        client.connect_async(host, port, keepalive=self.conn.keepalive_s)
        client.loop_start()
        try:
            await first.wait()
            ready()
            await asyncio.Event().wait()
        finally:
            client.on_message = None
            client.on_disconnect = None
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)

    def _malformed(self, loop: asyncio.AbstractEventLoop, sink: Sink, topic: str, why: str) -> None:
        def record() -> None:
            sink.status.malformed += 1
            if sink.status.malformed <= 10 or sink.status.malformed % 1000 == 0:
                log.warning("%s: malformed payload on %s (%d so far): %s",
                            self.device.name, topic, sink.status.malformed, why)
                sink.event(Event(self.device.name, "malformed_payload",
                                 {"topic": topic, "error": why, "count": sink.status.malformed}))

        loop.call_soon_threadsafe(record)

