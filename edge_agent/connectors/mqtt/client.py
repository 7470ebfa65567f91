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

The client is :class:`Client`, paho's own with three changes for throughput: it reads
the socket in chunks of up to ``RECV_SIZE`` bytes (paho reads each packet with three or
more ``recv`` calls), hands a whole PUBLISH to ``on_publish_received`` without paho's
per-message objects, and :meth:`Client.ack_all` sends a committed batch's
acknowledgements as one write.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import ssl
import struct
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.connectors.base import Backoff, describe_error
from edge_agent.connectors.mqtt.config import BrokerSettings

MessageHandler = Callable[[mqtt.Client, mqtt.MQTTMessage], None]
PublishHandler = Callable[[str, bytes, int, int, bool], None]


class Link(Protocol):
    """Told of the broker connection's state (a connector's Sink is one)."""

    def connected(self) -> None: ...

    def disconnected(self, error: BaseException | str) -> None: ...

# Messages paho keeps in flight towards the broker; acknowledgements are not limited by it.
MAX_INFLIGHT = 100
# Packets read per readiness callback before the event loop runs other work.
READ_BURST = 200
# Bytes asked of the socket per read (one read holds hundreds of small messages).
RECV_SIZE = 65536
_PUBACK = 0x40 << 24 | 2 << 16  # a PUBACK packet, fixed header and remaining length 2, before the packet id
_PUBLISH = 0x30


class Client(mqtt.Client):
    """paho's client with buffered socket reads, a lean path for PUBLISH packets and
    acknowledgements in batches.

    paho asks the socket for the command byte, then each byte of the remaining length,
    then the rest of the packet (three system calls or more per message), and builds a
    message object (with a lock and a condition variable) per PUBLISH. Here one ``recv``
    of up to ``RECV_SIZE`` bytes fills a buffer; a whole MQTT 3.1.1 PUBLISH (QoS 0, or
    QoS 1 with manual acknowledgement) found in it goes straight to
    :attr:`on_publish_received` as ``(topic, payload, qos, mid, dup)`` (one cut by the end of
    a read waits in the buffer for the rest). Everything else (other packets, a PUBLISH over
    ``RECV_SIZE`` bytes, QoS 2, MQTT 5, a malformed packet) takes paho's own path, reading
    from the same buffer.

    This overrides two private methods of paho, ``_sock_recv`` (the one place paho reads
    the socket) and ``_packet_read`` (written against paho-mqtt 2.2); tests/connectors/test_mqtt_client.py
    checks the lean path against paho's own on a scripted byte stream cut at awkward places.
    """

    _rbuf: bytes = b""
    _rpos = 0
    _rsock: Any = None
    # set when a read found the socket empty: wait until it is readable again
    dry = False
    # (topic, payload, qos, mid, dup) of each PUBLISH taken by the lean path
    on_publish_received: PublishHandler | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._v5 = self._protocol == mqtt.MQTTv5

    def _sock_recv(self, bufsize: int) -> bytes:
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf) or self._sock is not self._rsock:
            try:
                buf = super()._sock_recv(RECV_SIZE)
            except BlockingIOError:
                self.dry = True
                self._rbuf, self._rpos = b"", 0
                raise
            self._rsock, pos = self._sock, 0
            if not buf:  # closed by the broker
                self._rbuf = buf
                return buf
        end = pos + bufsize
        self._rbuf, self._rpos = buf, end
        if pos == 0 and end >= len(buf):
            return buf
        return buf[pos:end]

    def _packet_read(self) -> mqtt.MQTTErrorCode:
        # paho's loop_read (and loop, loop_forever) reads a packet here: the lean path first
        if self.on_publish_received is not None and self.read_publish():
            return mqtt.MQTT_ERR_SUCCESS
        return super()._packet_read()

    def read_publish(self) -> bool:
        """Handle the next packet if it is a whole PUBLISH for the lean path (reading more of the
        socket while the buffer ends inside it); False leaves the packet to paho's path (or, with
        ``dry`` set, waits for the socket)."""
        if self.on_publish_received is None or self._in_packet["command"] != 0 or self._v5:
            return False
        while True:
            done = self._publish()
            if done is not None:
                return done
            if not self._fill():
                return False

    def _publish(self) -> bool | None:
        """One PUBLISH from the buffer to ``on_publish_received``: True when handled, False for paho's
        path, None when the buffer ends inside a packet that fits in one read."""
        handler = self.on_publish_received
        buf, pos = self._rbuf, self._rpos
        size = len(buf)
        if pos >= size or self._sock is not self._rsock:
            return None
        header = buf[pos]
        qos = (header & 0x06) >> 1
        if handler is None or header & 0xF0 != _PUBLISH or qos == 2 or (qos == 1 and not self._manual_ack):
            return False
        if pos + 5 > size:  # the smallest PUBLISH has 5 bytes
            return None
        # remaining length: 1 to 4 bytes, 7 bits each, least significant first
        length = shift = 0
        start = pos + 1
        while True:
            if shift > 21:
                return False  # malformed: paho's path reports it
            if start >= size:
                return None
            byte = buf[start]
            start += 1
            length |= (byte & 127) << shift
            shift += 7
            if not byte & 128:
                break
        end = start + length
        if end > size:
            return None if end - pos <= RECV_SIZE else False  # a larger packet: paho's path
        topic_end = start + 2 + (buf[start] << 8 | buf[start + 1]) if length >= 2 else end + 1
        body = topic_end + 2 if qos else topic_end
        if topic_end == start + 2 or body > end:
            return False  # malformed: paho's path reports it
        try:
            topic = buf[start + 2 : topic_end].decode("utf-8")
        except UnicodeDecodeError:
            return False
        self._rpos = end
        mid = buf[topic_end] << 8 | buf[topic_end + 1] if qos else 0
        with self._msgtime_mutex:
            self._last_bytes_received = mqtt.time_func()
        handler(topic, buf[body:end], qos, mid, bool(header & 0x08))
        return True

    def _fill(self) -> bool:
        """Append what the socket holds to the unread rest of the buffer; False if it holds nothing
        (``dry``), is closed or failed (paho's path then reads the rest and reports it)."""
        if self._sock is not self._rsock:
            self._rbuf, self._rpos, self._rsock = b"", 0, self._sock
        try:
            data = super()._sock_recv(RECV_SIZE)
        except BlockingIOError:
            self.dry = True
            return False
        except OSError:
            return False
        if not data:
            return False
        self._rbuf = self._rbuf[self._rpos :] + data
        self._rpos = 0
        return True

    def ack_all(self, mids: Sequence[int]) -> None:
        """Acknowledge QoS 1 messages (manual acknowledgement), in order, in one write.

        The same PUBACK packets as one :meth:`ack` each (MQTT 3.1.1 and 5: a PUBACK
        without a reason code means success), queued as one outgoing buffer."""
        if not mids or not self._manual_ack:
            return
        packets = struct.pack(f"!{len(mids)}I", *[_PUBACK | mid for mid in mids])
        self._packet_queue(mqtt.PUBACK, packets, 0, 1)


def broker_address(settings: BrokerSettings) -> tuple[str, int]:
    url = urlparse(settings.broker)
    return url.hostname or "127.0.0.1", url.port or (8883 if settings.tls else 1883)


def make_client(settings: BrokerSettings, client_id: str, *, persistent: bool = True) -> Client:
    """A paho client for a persistent session with manual acknowledgements (a subscriber that must
    lose nothing), or with ``persistent=False`` for a clean session with automatic ones (a publisher
    such as the Sparkplug edge node)."""
    if settings.protocol == "5":
        client = Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=persistent
        )
    else:
        client = Client(
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
        # paho reads one packet per loop_read; keep reading while more is there, up to a burst
        client = self.client
        if self.paused or self.sock is None:
            return
        if not isinstance(client, Client):
            for _ in range(READ_BURST):
                if client.loop_read() != mqtt.MQTT_ERR_SUCCESS or self.paused or self.sock is None:
                    return
                if not _readable(self.sock):
                    return
            return
        lean = client.read_publish
        for _ in range(READ_BURST):
            client.dry = False
            if not lean():
                if client.dry:  # nothing more on the socket: wait until it is readable
                    return
                if client.loop_read() != mqtt.MQTT_ERR_SUCCESS or client.dry:
                    return
            if self.paused or self.sock is None:
                return
        # more may be buffered (by the client or by TLS) without the socket being readable
        self.loop.call_soon(self._read)

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
            # what was already read from the socket does not make it readable again
            self.loop.call_soon(self._read)


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
