"""The live stream: Server-Sent Events fanned out to every connected client through bounded queues.

A message is serialised once and put on each client's queue. A client that
cannot keep up loses its oldest messages (``drop_oldest``); the drops are
counted per client and in total, and the client is told to ``resync`` (fetch
the full state again) before its next message.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import orjson

__all__ = ["Broadcaster", "StreamClosed", "Subscription", "TooManyClients", "frame"]


class TooManyClients(Exception):
    """``max_clients`` streams are open already."""


class StreamClosed(Exception):
    """The broadcaster closed (the agent is stopping)."""


def frame(kind: str, data: Any, msg_id: int | None = None) -> bytes:
    """One SSE message."""
    head = f"id: {msg_id}\n" if msg_id is not None else ""
    return f"{head}event: {kind}\n".encode() + b"data: " + orjson.dumps(data) + b"\n\n"


class Subscription:
    """One client's queue."""

    def __init__(self, broadcaster: Broadcaster, size: int) -> None:
        self.broadcaster = broadcaster
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=size)
        self.dropped = 0
        self._unreported = 0

    def put(self, message: bytes) -> None:
        if self.queue.full():
            self.queue.get_nowait()  # drop_oldest: the newest state matters more on a live page
            self.dropped += 1
            self._unreported += 1
            self.broadcaster.dropped += 1
        self.queue.put_nowait(message)

    def close(self) -> None:
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def next(self, timeout: float) -> bytes | None:
        """The next message; None if nothing came within ``timeout``; StreamClosed at the end."""
        if self._unreported:
            lost, self._unreported = self._unreported, 0
            return frame("resync", {"dropped": lost, "dropped_total": self.dropped})
        try:
            message = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None
        if message is None:
            raise StreamClosed
        return message


class Broadcaster:
    """Fan-out of messages to at most ``max_clients`` subscriptions of ``queue_size`` each."""

    def __init__(self, queue_size: int = 256, max_clients: int = 64) -> None:
        self.queue_size = queue_size
        self.max_clients = max_clients
        self.clients: set[Subscription] = set()
        self.published = 0
        self.dropped = 0
        self.closed = False
        self._ids = itertools.count(1)

    def subscribe(self) -> Subscription:
        if self.closed:
            raise StreamClosed
        if len(self.clients) >= self.max_clients:
            raise TooManyClients(f"{self.max_clients} live streams are open already")
        sub = Subscription(self, self.queue_size)
        self.clients.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.clients.discard(sub)

    def publish(self, kind: str, data: Any) -> None:
        if self.closed or not self.clients:
            return
        message = frame(kind, data, next(self._ids))
        self.published += 1
        for sub in self.clients:
            sub.put(message)

    def close(self) -> None:
        """End every stream (at shutdown, so the HTTP server is not held open by them)."""
        self.closed = True
        for sub in self.clients:
            sub.close()

    def stats(self) -> dict[str, int]:
        return {"clients": len(self.clients), "published": self.published, "dropped": self.dropped}

    async def iterate(self, sub: Subscription, hello: bytes, heartbeat_s: float) -> AsyncIterator[bytes]:
        """The bytes of one client's stream: ``hello``, then messages, a comment line when idle."""
        try:
            yield b"retry: 2000\n\n" + hello
            while True:
                try:
                    message = await sub.next(heartbeat_s)
                except StreamClosed:
                    return
                yield b": idle\n\n" if message is None else message
        finally:
            self.unsubscribe(sub)
