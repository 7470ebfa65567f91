"""The notify protocol against a fake NOTIFY_SOCKET, as systemd would receive it."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.ops.notify import Notifier, feed_watchdog, watchdog_interval


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield path, sock
    sock.close()


def test_ready_and_status_datagrams(notify_socket: tuple[str, socket.socket]) -> None:
    path, sock = notify_socket
    notifier = Notifier(path)
    assert notifier.ready("5 devices")
    assert sock.recv(4096) == b"READY=1\nSTATUS=5 devices"
    assert notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1"


def test_abstract_namespace_socket() -> None:
    name = f"edge-agent-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        assert Notifier("@" + name).ready()
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_no_socket_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    assert notifier.ready() is False


def test_unreachable_socket_does_not_raise(tmp_path: Path) -> None:
    assert Notifier(str(tmp_path / "missing.sock")).ready() is False


def test_watchdog_interval_is_half_of_watchdog_sec() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "10000000"}) == 5.0
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}) == 5.0
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None


async def test_watchdog_fed_only_while_healthy(notify_socket: tuple[str, socket.socket]) -> None:
    path, sock = notify_socket
    sock.setblocking(False)
    healthy = True
    task = asyncio.create_task(feed_watchdog(Notifier(path), 0.05, lambda: healthy))
    await asyncio.sleep(0.22)
    pings = _drain(sock)
    assert pings and set(pings) == {b"WATCHDOG=1"}
    healthy = False
    await asyncio.sleep(0.06)
    _drain(sock)
    await asyncio.sleep(0.2)
    assert _drain(sock) == []
    task.cancel()


def _drain(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096))
        except BlockingIOError:
            return out
