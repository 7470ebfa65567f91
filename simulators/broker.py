"""MQTT broker helpers: probe a broker, or run an embedded amqtt broker for machines without one."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

log = logging.getLogger("simulators.broker")

DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"


def broker_reachable(host: str = "127.0.0.1", port: int = 1883, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
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
