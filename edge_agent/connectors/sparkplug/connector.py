"""Sparkplug B connector: a host application that reads the edge nodes of one group.

It subscribes to ``spBv1.0/<group>/+/<node>`` and ``spBv1.0/<group>/+/<node>/+``
(``<node>`` is ``edge_node_id`` or ``+``), decodes each message's protobuf payload
and hands it to :class:`~.host.SparkplugHost`, which tracks births, aliases and
sequence numbers. When the host asks for a rebirth (a ``seq`` gap, data from a
node it has no birth of), an NCMD with ``Node Control/Rebirth = true`` goes to
the node. With ``host_id``, the connector also publishes the host application's
STATE (``spBv1.0/STATE/<host_id>``, retained, with a will saying it went offline),
so edge nodes that wait for their primary host start publishing.

The MQTT side (protocol versions, TLS, persistent session, acknowledgement after
commit) is the MQTT connector's, see :mod:`edge_agent.connectors.mqtt.client`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import orjson
import paho.mqtt.client as mqtt

from edge_agent.connectors.base import Sink
from edge_agent.connectors.mqtt.client import make_client, run_session
from edge_agent.connectors.mqtt.connector import MalformedLog
from edge_agent.connectors.mqtt.handoff import Handoff
from edge_agent.connectors.sparkplug.config import SparkplugConnection
from edge_agent.connectors.sparkplug.host import NAMESPACE, MessageError, SparkplugHost, rebirth_payload
from edge_agent.model import Event
from edge_agent.profiles import SparkplugProfile

if TYPE_CHECKING:
    from edge_agent.config import Device

log = logging.getLogger("edge_agent.connectors.sparkplug")

LOGGED_EVENTS = {
    "sparkplug_birth": logging.INFO,
    "sparkplug_death": logging.WARNING,
    "sparkplug_seq_gap": logging.WARNING,
    "sparkplug_rebirth_requested": logging.INFO,
}
# Decoding problems logged per connector before going quiet (all are counted in `errors`).
MAX_LOGGED_PROBLEMS = 10


class SparkplugConnector:
    """Reads one Sparkplug B group (or one edge node of it) as a host application."""

    def __init__(self, device: Device, gateway_id: str) -> None:
        if not isinstance(device.profile, SparkplugProfile) or not isinstance(device.connection, SparkplugConnection):
            raise TypeError(f"device '{device.name}' is not a Sparkplug B device")
        self.device = device
        self.conn: SparkplugConnection = device.connection
        self.client_id = self.conn.client_id or f"{gateway_id}-{device.name}"
        profile = device.profile
        self.host = SparkplugHost(
            self.conn.group_id, profile.tags, profile.sparkplug.all_metrics, self.conn.rebirth_interval_s
        )
        self.problems_logged = 0

    @property
    def subscriptions(self) -> list[tuple[str, int]]:
        node = self.conn.edge_node_id or "+"
        base = f"{NAMESPACE}/{self.conn.group_id}/+/{node}"
        return [(base, int(self.conn.qos)), (f"{base}/+", int(self.conn.qos))]

    def command_topic(self, node: str) -> str:
        return f"{NAMESPACE}/{self.conn.group_id}/NCMD/{node}"

    def _client(self, born_at_ms: int) -> mqtt.Client:
        client = make_client(self.conn, self.client_id)
        if self.conn.host_id is not None:
            client.will_set(self._state_topic(), self._state(False, born_at_ms), qos=1, retain=True)
        return client

    def _state_topic(self) -> str:
        return f"{NAMESPACE}/STATE/{self.conn.host_id}"

    @staticmethod
    def _state(online: bool, timestamp_ms: int) -> bytes:
        return orjson.dumps({"online": online, "timestamp": timestamp_ms})

    async def run(self, sink: Sink, ready: Callable[[], None]) -> None:
        """Subscribe and ingest until cancelled (paho reconnects by itself)."""
        loop = asyncio.get_running_loop()
        malformed = MalformedLog(self.device.name, sink, loop)
        handoff = Handoff()
        limit = self.conn.max_payload_bytes
        born_at_ms = int(time.time() * 1000)

        def on_connected(client: mqtt.Client) -> None:
            if self.conn.host_id is not None:
                client.publish(self._state_topic(), self._state(True, born_at_ms), qos=1, retain=True)

        def on_message(client: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
            mid, msg_qos = msg.mid, msg.qos

            def ack() -> None:
                if msg_qos > 0:
                    client.ack(mid, msg_qos)

            if len(msg.payload) > limit:
                malformed(msg.topic, f"payload of {len(msg.payload)} bytes is over max_payload_bytes ({limit})")
                ack()
                return
            now = time.time()
            try:
                outcome = self.host.handle(msg.topic, bytes(msg.payload), now)
            except MessageError as exc:
                malformed(msg.topic, str(exc))
                ack()
                return
            if outcome.rebirth is not None:
                client.publish(self.command_topic(outcome.rebirth), rebirth_payload(now), qos=0)
            if outcome.events or outcome.problems:
                loop.call_soon_threadsafe(self._report, sink, outcome.events, outcome.problems)
            if not outcome.samples:
                ack()
                return
            handoff.put(outcome.samples, ack)  # False once stopping: the broker redelivers the message

        drain = asyncio.create_task(handoff.drain(sink), name=f"sparkplug-handoff-{self.device.name}")
        try:
            await run_session(self._client(born_at_ms), self.conn, sink, ready, self.subscriptions, on_message,
                              on_connected, flow=handoff.flow)
        finally:
            handoff.close()
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)

    def _report(self, sink: Sink, events: Sequence[Event], problems: Sequence[str]) -> None:
        """Record events and decoding problems (in the event loop)."""
        for event in events:
            sink.event(event)
            level = LOGGED_EVENTS.get(event.kind, logging.DEBUG)
            log.log(level, "%s: %s %s %s", self.device.name, event.kind, event.device, event.attributes)
        sink.status.errors += len(problems)
        for problem in problems:
            if self.problems_logged < MAX_LOGGED_PROBLEMS:
                self.problems_logged += 1
                log.warning("%s: %s", self.device.name, problem)


__all__ = ["SparkplugConnector"]
