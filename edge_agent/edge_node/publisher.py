"""The MQTT side of the Sparkplug B edge node: connect with the NDEATH will, births, data, rebirths.

:class:`EdgeNodePublisher` runs as one task of the agent. The agent hands it every batch of
samples (:meth:`EdgeNodePublisher.offer`, never blocking); it publishes them as DDATA every
``interval_s``, plus the computed figures (OEE, health) every ``computed_interval_s``.

On each connection (clean session, the NDEATH with the next bdSeq as will) it publishes NBIRTH
and every DBIRTH, then the samples that waited while the broker was unreachable as
``is_historical`` DDATA. It answers an NCMD ``Node Control/Rebirth`` with the births again. At
shutdown it publishes the NDEATH itself before disconnecting (a will is only sent by the broker
when a connection is lost). bdSeq survives restarts in ``<data_dir>/sparkplug-bdseq``.

Bounded: at most ``backlog_max`` samples wait (the oldest are dropped and counted in
``dropped``); while connected, samples wait at most ``interval_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from edge_agent.connectors.base import describe_error
from edge_agent.connectors.mqtt.client import broker_address, make_client, run_session
from edge_agent.edge_node.config import EdgeNodeSettings
from edge_agent.edge_node.state import EdgeNode, Message
from edge_agent.model import Sample, Value

log = logging.getLogger("edge_agent.edge_node")
Computed = Callable[[], Mapping[str, Mapping[str, Value]]]
BDSEQ_FILE = "sparkplug-bdseq"


class EdgeNodePublisher:
    """Publishes the agent's devices as a Sparkplug B edge node (module docstring)."""

    def __init__(self, settings: EdgeNodeSettings, gateway_id: str, data_dir: Path,
                 computed: Computed | None = None) -> None:
        self.settings = settings
        self.node_id = settings.edge_node_id or gateway_id
        self.client_id = settings.client_id or f"{gateway_id}-sparkplug"
        self.bdseq_path = data_dir / BDSEQ_FILE
        self.node = EdgeNode(settings.group_id, self.node_id, bdseq=self._load_bdseq())
        self.computed = computed
        self.devices = frozenset(settings.devices)
        self.pending: deque[Sample] = deque()
        self.dropped = 0
        self.published = 0
        self.births = 0
        self.online = False
        self.last_error: str | None = None
        self._client: mqtt.Client | None = None
        self._wake = asyncio.Event()

    # -- fed by the agent -----------------------------------------------------------------------

    def offer(self, samples: Sequence[Sample]) -> None:
        """Queue samples for publishing; never blocks (the oldest beyond ``backlog_max`` go, counted)."""
        if self.devices:
            samples = [s for s in samples if s.device in self.devices]
        self.pending.extend(samples)
        excess = len(self.pending) - self.settings.backlog_max
        if excess > 0:
            for _ in range(excess):
                self.pending.popleft()
            self.dropped += excess

    def forget(self, device: str) -> None:
        """A device removed from the config: DDEATH, and no more births for it."""
        message = self.node.device_death(device, time.time())
        if message is not None:
            self._publish(message)
        self.node.forget(device)

    def status(self) -> dict[str, Any]:
        host, port = broker_address(self.settings)
        return {
            "broker": f"{host}:{port}", "group_id": self.settings.group_id, "edge_node_id": self.node_id,
            "online": self.online, "bdseq": self.node.session_bdseq, "published": self.published,
            "births": self.births, "backlog": len(self.pending), "dropped": self.dropped,
            "last_error": self.last_error,
        }

    # -- running --------------------------------------------------------------------------------

    async def run(self) -> None:
        client = self._client = make_client(self.settings, self.client_id, persistent=False)
        self._set_will(client)
        ncmd = self.node.topic("NCMD")
        flusher = asyncio.create_task(self._flush_loop(), name="sparkplug-flush")
        try:
            await run_session(
                client, self.settings, self, lambda: None, [(ncmd, 0)], self._on_message,
                on_connected=self._on_connected, before_disconnect=self._goodbye,
            )
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            self.online = False

    # Link protocol (connection state from run_session)
    def connected(self) -> None:
        if not self.online:
            log.info("sparkplug: edge node %s/%s online", self.settings.group_id, self.node_id)
        self.online, self.last_error = True, None

    def disconnected(self, error: BaseException | str) -> None:
        message = describe_error(error)
        if self.online or self.last_error is None:
            log.error("sparkplug: broker unreachable: %s", message)
        self.online, self.last_error = False, message

    def _set_will(self, client: mqtt.Client) -> None:
        will = self.node.will()
        client.will_set(will.topic, will.payload, qos=will.qos, retain=False)

    def _on_connected(self, client: mqtt.Client) -> None:
        self.node.connected()
        self._set_will(client)  # for the next connection, with the next bdSeq
        self._save_bdseq()
        self._births()
        backlog = list(self.pending)
        self.pending.clear()
        self._send(self.node.data(backlog, time.time(), historical=True))

    def _births(self) -> None:
        now = time.time()
        self._send(self.node.births(now))
        self.births += 1
        if self.computed is not None:
            self._send(self.node.data((), now, computed=self._computed()))

    def _on_message(self, client: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.node.topic("NCMD") and self.node.wants_rebirth(bytes(msg.payload)):
            log.info("sparkplug: rebirth requested by a host")
            self._births()

    def _goodbye(self, client: mqtt.Client) -> None:
        if self.node.born:
            self._publish(self.node.death())

    async def _flush_loop(self) -> None:
        next_computed = time.monotonic()
        while True:
            await asyncio.sleep(self.settings.interval_s)
            if not self.online or not self.node.born:
                continue
            now = time.time()
            batch = list(self.pending)
            self.pending.clear()
            computed = None
            if self.computed is not None and time.monotonic() >= next_computed:
                computed = self._computed()
                next_computed = time.monotonic() + self.settings.computed_interval_s
            self._send(self.node.data(batch, now, computed=computed))

    def _computed(self) -> Mapping[str, Mapping[str, Value]]:
        assert self.computed is not None
        try:
            figures = self.computed()
        except Exception:  # a bug in a figure must not stop the publishing
            log.exception("sparkplug: computed metrics failed")
            return {}
        if self.devices:
            return {d: v for d, v in figures.items() if d in self.devices}
        return figures

    def _send(self, messages: Sequence[Message]) -> None:
        for message in messages:
            self._publish(message)

    def _publish(self, message: Message) -> None:
        client = self._client
        if client is None:
            return
        info = client.publish(message.topic, message.payload, qos=message.qos)
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            self.published += 1

    # -- bdSeq across restarts ------------------------------------------------------------------

    def _load_bdseq(self) -> int:
        with contextlib.suppress(OSError, ValueError):
            return int(self.bdseq_path.read_text().strip()) % 256
        return 0

    def _save_bdseq(self) -> None:
        try:
            self.bdseq_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.bdseq_path.with_suffix(".tmp")
            tmp.write_text(f"{self.node.bdseq}\n")
            os.replace(tmp, self.bdseq_path)
        except OSError as exc:
            log.warning("sparkplug: cannot keep bdSeq in %s: %s", self.bdseq_path, exc)
