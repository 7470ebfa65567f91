"""MQTT connector: subscribes to the topics of a profile and turns JSON or plain payloads into samples.

QoS 1 messages are acknowledged only after their samples are committed to the
buffer (paho's ``manual_ack``), with a persistent session (see :mod:`.client`), so
nothing is lost across a restart of the agent or the broker. paho runs in the
event loop (see :mod:`.client`); decoded messages reach the sink in batches through
a bounded :class:`~.handoff.Handoff`, which pauses reading from the broker while
full (backpressure).

A message that cannot be decoded (see :mod:`.payload`), or is larger than
``max_payload_bytes``, is acknowledged, counted in ``malformed`` and logged with
its topic (the first ten, then every thousandth, each also as an event); ingestion
goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt

from edge_agent.connectors.base import Sink
from edge_agent.connectors.mqtt.client import Client, make_client, run_session
from edge_agent.connectors.mqtt.config import MqttConnection
from edge_agent.connectors.mqtt.handoff import Handoff
from edge_agent.connectors.mqtt.payload import PayloadError, TopicMap
from edge_agent.model import Event, Mark
from edge_agent.profiles import MqttProfile

if TYPE_CHECKING:
    from edge_agent.config import Device

log = logging.getLogger("edge_agent.connectors.mqtt")


class MalformedLog:
    """Counts malformed messages of a device; logs and records the first ten and every thousandth."""

    def __init__(self, device: str, sink: Sink, loop: asyncio.AbstractEventLoop) -> None:
        self.device = device
        self.sink = sink
        self.loop = loop

    def __call__(self, topic: str, why: str) -> None:
        """Record one malformed message; callable from any thread."""
        self.loop.call_soon_threadsafe(self._record, topic, why)

    def _record(self, topic: str, why: str) -> None:
        status = self.sink.status
        status.malformed += 1
        if status.malformed <= 10 or status.malformed % 1000 == 0:
            log.warning("%s: malformed payload on %s (%d so far): %s", self.device, topic, status.malformed, why)
            self.sink.event(
                Event(self.device, "malformed_payload", {"topic": topic, "error": why, "count": status.malformed})
            )


def message_digest(topic: str, payload: bytes | bytearray) -> str:
    """A short fingerprint of a message, to tell a redelivery from a new message reusing a packet id."""
    return hashlib.blake2b(topic.encode() + b"\0" + payload, digest_size=8).hexdigest()


class MqttConnector:
    """Ingests the topics of one :class:`~edge_agent.profiles.MqttProfile` device entry."""

    def __init__(self, device: Device, gateway_id: str) -> None:
        if not isinstance(device.profile, MqttProfile) or not isinstance(device.connection, MqttConnection):
            raise TypeError(f"device '{device.name}' is not an MQTT device")
        self.device = device
        self.conn: MqttConnection = device.connection
        self.client_id = self.conn.client_id or f"{gateway_id}-{device.name}"
        self.topics = TopicMap(device.profile, self.conn.device_id or device.name)

    def _client(self) -> Client:
        return make_client(self.conn, self.client_id)

    async def run(self, sink: Sink, ready: Callable[[], None]) -> None:
        """Subscribe and ingest until cancelled (paho reconnects by itself)."""
        loop = asyncio.get_running_loop()
        malformed = MalformedLog(self.device.name, sink, loop)
        client = self._client()
        name = self.device.name
        client_id = self.client_id
        limit = self.conn.max_payload_bytes
        decode = self.topics.decode
        clock = time.time
        status = sink.status

        # messages committed but maybe not acknowledged before a crash: the broker redelivers them
        # (DUP flag, same packet id) and they are recognised here instead of being stored twice
        committed = await sink.delivered(client_id)

        def acknowledge(marks: Sequence[Mark]) -> None:
            """After the commit of a batch: acknowledge its QoS 1 messages in one write."""
            client.ack_all([mid for _, mid, _ in marks])
            for _, mid, digest in marks:
                committed[mid] = digest

        handoff = Handoff(acknowledge=acknowledge)
        put = handoff.put

        def on_publish(topic: str, payload: bytes, qos: int, mid: int, dup: bool) -> None:
            mark: Mark | None = None
            if qos > 0:
                digest = message_digest(topic, payload)
                if dup and committed.get(mid) == digest:
                    status.duplicates += 1
                    client.ack(mid, qos)
                    return
                mark = (client_id, mid, digest)
            if len(payload) > limit:
                malformed(topic, f"payload of {len(payload)} bytes is over max_payload_bytes ({limit})")
                done(mark)
                return
            try:
                samples = decode(name, topic, payload, clock())
            except (PayloadError, ValueError, TypeError) as exc:
                malformed(topic, str(exc))
                done(mark)
                return
            if not samples:
                done(mark)
                return
            put(samples, None, mark)  # False once stopping: unacknowledged, the broker redelivers it

        def done(mark: Mark | None) -> None:
            """A QoS 1 message with nothing to store: acknowledged at once."""
            if mark is not None:
                client.ack(mark[1], 1)
                committed[mark[1]] = mark[2]

        def on_message(_client: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
            """paho's own path (MQTT 5, a message over 64 KiB)."""
            on_publish(msg.topic, bytes(msg.payload), msg.qos, msg.mid, msg.dup)

        client.on_publish_received = on_publish
        qos = int(self.conn.qos)
        subscriptions = [(topic, qos) for topic in self.topics.by_topic]
        drain = asyncio.create_task(handoff.drain(sink), name=f"mqtt-handoff-{name}")
        try:
            await run_session(client, self.conn, sink, ready, subscriptions, on_message, flow=handoff.flow)
        finally:
            handoff.close()
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)
