"""The paho-mqtt client shared by the MQTT and Sparkplug B connectors, run in the event loop.

:func:`make_client` builds a client from :class:`~.config.BrokerSettings`: MQTT
3.1.1 or 5, a persistent session (3.1.1: ``clean_session=False``; 5:
``clean_start=False`` with a session expiry interval), TLS with a CA file and an
optional client certificate, username/password, and manual acknowledgement so a
QoS 1 message is acknowledged only once its samples are committed.

:func:`run_session` drives paho from the asyncio event loop (paho's "external
event loop" mode: the socket is watched with ``add_reader``/``add_writer``, keep-alive
runs from a task) instead of paho's own network thread, so messages, samples and
acknowledgements never cross threads. Only the blocking connect (DNS, TCP, TLS
handshake) runs in a worker thread. It subscribes on every connect, reports the
connection state to the sink, and reconnects with a delay doubling from
``reconnect_delay_s`` up to ``reconnect_delay_max_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import ssl
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.connectors.base import Backoff, describe_error
from edge_agent.connectors.mqtt.config import BrokerSettings

MessageHandler = Callable[[mqtt.Client, mqtt.MQTTMessage], None]


class Link(Protocol):
    """Told of the broker connection's state (a connector's Sink is one)."""

    def connected(self) -> None: ...

    def disconnected(self, error: BaseException | str) -> None: ...

# Messages paho keeps in flight towards the broker; acknowledgements are not limited by it.
MAX_INFLIGHT = 100
# Packets read per readiness callback before the event loop runs other work.
READ_BURST = 100


def broker_address(settings: BrokerSettings) -> tuple[str, int]:
    url = urlparse(settings.broker)
    return url.hostname or "127.0.0.1", url.port or (8883 if settings.tls else 1883)


def make_client(settings: BrokerSettings, client_id: str, *, persistent: bool = True) -> mqtt.Client:
    """A paho client for a persistent session with manual acknowledgements (a subscriber that must
    lose nothing), or with ``persistent=False`` for a clean session with automatic ones (a publisher
    such as the Sparkplug edge node)."""
    if settings.protocol == "5":
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=persistent
        )
    else:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=not persistent,
            protocol=mqtt.MQTTv311,
            manual_ack=persistent,
        )
    if settings.tls:
        client.tls_set(
            ca_certs=settings.ca_file,
            certfile=settings.client_cert,
            keyfile=settings.client_key,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        if settings.tls_insecure:
            client.tls_insecure_set(True)
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    client.max_inflight_messages_set(MAX_INFLIGHT)
    return client


def connect_args(settings: BrokerSettings) -> dict[str, Any]:
    """Keyword arguments of ``connect_async`` for the configured protocol version."""
    if settings.protocol != "5":
        return {}
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = settings.session_expiry_s
    return {"clean_start": False, "properties": properties}


def _readable(sock: Any) -> bool:
    """Whether a read would return data now (TLS: decrypted bytes already buffered count too)."""
    pending = getattr(sock, "pending", None)
    if pending is not None and pending() > 0:
        return True
    try:
        ready, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return bool(ready)


class _LoopBridge:
    """paho's socket callbacks mapped onto the event loop (safe to call from the connect thread)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: mqtt.Client) -> None:
        self.loop = loop
        self.client = client
        self.sock: Any = None
        self.paused = False
        client.on_socket_open = self._open
        client.on_socket_close = self._close
        client.on_socket_register_write = self._want_write
        client.on_socket_unregister_write = self._done_writing

    def _soon(self, callback: Callable[..., Any], *args: Any) -> None:
        self.loop.call_soon_threadsafe(callback, *args)

    def _open(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        self._soon(self._watch, sock)

    def _watch(self, sock: Any) -> None:
        self.sock = sock
        self.paused = False
        self.loop.add_reader(sock, self._read)

    def _read(self) -> None:
        # paho reads one packet per loop_read; keep reading while more is buffered, up to a burst
        for _ in range(READ_BURST):
            if self.client.loop_read() != mqtt.MQTT_ERR_SUCCESS or self.paused or self.sock is None:
                return
            if not _readable(self.sock):
                return

    def _close(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        self._soon(self._forget, sock)

    def _forget(self, sock: Any) -> None:
        with contextlib.suppress(Exception):
            self.loop.remove_reader(sock)
            self.loop.remove_writer(sock)
        if self.sock is sock:
            self.sock = None

    def _want_write(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        self._soon(self._add_writer, sock)

    def _add_writer(self, sock: Any) -> None:
        if sock.fileno() >= 0:
            self.loop.add_writer(sock, self.client.loop_write)

    def _done_writing(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        self._soon(self._remove_writer, sock)

    def _remove_writer(self, sock: Any) -> None:
        with contextlib.suppress(Exception):
            self.loop.remove_writer(sock)

    def pause(self) -> None:
        """Stop reading from the broker (backpressure); the broker holds further messages."""
        if self.sock is not None and not self.paused:
            self.paused = True
            self.loop.remove_reader(self.sock)

    def resume(self) -> None:
        if self.sock is not None and self.paused:
            self.paused = False
            self.loop.add_reader(self.sock, self._read)


async def run_session(
    client: mqtt.Client,
    settings: BrokerSettings,
    sink: Link,
    ready: Callable[[], None],
    subscriptions: Sequence[tuple[str, int]],
    on_message: MessageHandler,
    on_connected: Callable[[mqtt.Client], None] | None = None,
    flow: Flow | None = None,
    before_disconnect: Callable[[mqtt.Client], None] | None = None,
) -> None:
    """Connect, subscribe on every connect, and run until cancelled; then disconnect cleanly.

    The callbacks run in the event loop. ``flow`` (optional) is told how to pause and
    resume reading from the broker, for backpressure. ``before_disconnect`` may publish a
    last message (a Sparkplug NDEATH) before the clean disconnect.
    """
    loop = asyncio.get_running_loop()
    host, port = broker_address(settings)
    bridge = _LoopBridge(loop, client)
    if flow is not None:
        flow.pause, flow.resume = bridge.pause, bridge.resume
    backoff = Backoff(settings.reconnect_delay_s, settings.reconnect_delay_max_s)
    lost = asyncio.Event()
    announced = False

    def connected(client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        nonlocal announced
        if reason.is_failure:
            sink.disconnected(f"broker {host}:{port} refused the connection: {reason}")
            return
        if subscriptions:
            client.subscribe(list(subscriptions))
        if on_connected is not None:
            on_connected(client)
        backoff.reset()
        sink.connected()
        if not announced:
            announced = True
            ready()

    def disconnected(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        lost.set()
        sink.disconnected(f"disconnected from {host}:{port}: {reason}")

    client.on_connect = connected
    client.on_disconnect = disconnected
    client.on_message = lambda client, _u, msg: on_message(client, msg)
    first = True
    try:
        while True:
            lost.clear()
            try:
                if first:
                    await asyncio.to_thread(client.connect, host, port, settings.keepalive_s,
                                            **connect_args(settings))
                    first = False
                else:
                    await asyncio.to_thread(client.reconnect)
            except (OSError, ssl.SSLError, ValueError) as exc:
                sink.disconnected(f"cannot connect to broker {host}:{port}: {describe_error(exc)}")
                await backoff.wait()
                continue
            keepalive = asyncio.create_task(_keepalive(client, lost))
            try:
                await lost.wait()
            finally:
                keepalive.cancel()
                await asyncio.gather(keepalive, return_exceptions=True)
            await backoff.wait()
    finally:
        client.on_disconnect = None
        client.on_message = None
        if before_disconnect is not None and bridge.sock is not None:
            with contextlib.suppress(Exception):
                before_disconnect(client)
        with contextlib.suppress(Exception):
            client.disconnect()
            client.loop_write()  # sends DISCONNECT and closes the socket
        if bridge.sock is not None:
            bridge._forget(bridge.sock)


async def _keepalive(client: mqtt.Client, lost: asyncio.Event) -> None:
    """paho's periodic work (pings, keep-alive timeout) once a second; a failure ends the connection."""
    while not lost.is_set():
        if client.loop_misc() != mqtt.MQTT_ERR_SUCCESS:
            lost.set()
            return
        await asyncio.sleep(1.0)


class Flow:
    """Pause and resume reading from the broker; filled in by :func:`run_session`."""

    def __init__(self) -> None:
        self.pause: Callable[[], None] = _nothing
        self.resume: Callable[[], None] = _nothing


def _nothing() -> None:
    return None
