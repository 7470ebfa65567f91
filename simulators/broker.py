"""MQTT broker helpers: probe a broker, or run an embedded amqtt broker for machines without one."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

log = logging.getLogger("simulators.broker")

DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"


def broker_reachable(host: str = "127.0.0.1", port: int = 1883, timeout: float = 1.0) -> bool:
    """True if an MQTT broker answers on ``host:port``.

    Does a real MQTT 3.1.1 CONNECT/CONNACK exchange (then DISCONNECT), so a
    broker sees a well-behaved client rather than a connection that closes
    without a word. A refused CONNACK (bad credentials) still counts as reachable.
    """
    client_id = f"edge-sim-probe-{uuid.uuid4().hex[:8]}".encode()
    variable = b"\x00\x04MQTT\x04\x02\x00\x0a"  # protocol name, level 4, clean session, keepalive 10 s
    payload = len(client_id).to_bytes(2, "big") + client_id
    body = variable + payload
    connect = b"\x10" + bytes([len(body)]) + body
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(connect)
            connack = b""
            while len(connack) < 4:
                chunk = sock.recv(4 - len(connack))
                if not chunk:
                    return False
                connack += chunk
            if connack[:2] != b"\x20\x02":
                return False
            if connack[3] == 0:
                sock.sendall(b"\xe0\x00")  # DISCONNECT
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def parse_mqtt_url(url: str) -> tuple[str, int]:
    """``mqtt://host[:port]`` -> (host, port); port defaults to 1883."""
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ValueError(f"expected mqtt://host[:port], got {url!r}")
    return parts.hostname, parts.port or 1883


def amqtt_config(host: str, port: int) -> dict[str, object]:
    """Broker config with one TCP listener on ``host:port``, anonymous access and no chatty plugins."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


@asynccontextmanager
async def embedded_broker(port: int, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Run an amqtt broker on ``host:port`` in the current event loop; yields its ``mqtt://`` URL."""
    try:
        from amqtt.broker import Broker
    except ImportError as exc:  # pragma: no cover - amqtt is an optional dependency
        raise RuntimeError("the embedded broker needs amqtt (extra 'broker' of this package)") from exc

    broker = Broker(amqtt_config(host, port))
    await broker.start()
    url = f"mqtt://{host}:{port}"
    log.info("embedded MQTT broker on %s", url)
    try:
        yield url
    finally:
        await broker.shutdown()
