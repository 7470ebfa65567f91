"""systemd's notify protocol (``Type=notify``, ``WatchdogSec=``) without a libsystemd dependency.

``READY=1`` is sent once the buffer is open and the HTTP server listens; ``WATCHDOG=1``
is sent from the agent's main loop at half the interval systemd asks for, so a loop
that hangs gets the service restarted. Outside systemd (no ``NOTIFY_SOCKET``) every
call is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable

log = logging.getLogger("edge_agent.ops")


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET")

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields in one datagram; returns False (and logs once) on failure."""
        if not self.address:
            return False
        target = self.address
        if target.startswith("@"):
            target = "\0" + target[1:]  # abstract socket namespace
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(target)
                sock.sendall("\n".join(fields).encode())
            return True
        except OSError as exc:
            log.warning("cannot notify the service manager at %s: %s", self.address, exc)
            return False

    def ready(self, status: str = "") -> bool:
        fields = ["READY=1"] + ([f"STATUS={status}"] if status else [])
        return self.send(*fields)

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")


def watchdog_interval(environ: dict[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings (half of WatchdogSec), or None when no watchdog is asked for."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(0.05, int(usec) / 1_000_000 / 2)
    except ValueError:
        return None


async def feed_watchdog(notifier: Notifier, interval: float, healthy: Callable[[], bool]) -> None:
    """Ping the watchdog while ``healthy()`` holds; stop pinging (so systemd restarts us) when it does not."""
    while True:
        if healthy():
            notifier.send("WATCHDOG=1")
        else:
            log.error("main loop unhealthy: watchdog not fed")
        await asyncio.sleep(interval)
