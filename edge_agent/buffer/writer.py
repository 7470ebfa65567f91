"""The bounded queue between connectors and the buffer, and the task that drains it.

Connectors put batches of samples (and events) here; the writer commits them to
SQLite in large transactions on one worker thread and then runs each batch's
``on_commit`` callback (an MQTT QoS 1 acknowledgement, for instance). The queue is
bounded in samples: a producer waits while it is full, so a slow disk slows the
pollers down instead of growing memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from edge_agent.buffer.store import AppendResult, Buffer
from edge_agent.errors import StoreError
from edge_agent.model import Event, Sample

log = logging.getLogger("edge_agent.buffer")
T = TypeVar("T")


@dataclass
class Item:
    samples: Sequence[Sample]
    events: Sequence[Event]
    on_commit: Callable[[], None] | None


class WriteQueue:
    """A queue bounded by the number of samples it holds.

    Events are few and always admitted (``put_nowait``); sample batches wait for space.
    """

    def __init__(self, max_samples: int) -> None:
        self.max_samples = max_samples
        self._items: deque[Item] = deque()
        self._count = 0
        self._nonempty = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()

    def __len__(self) -> int:
        return self._count

    async def put(self, item: Item) -> None:
        while item.samples and self._count >= self.max_samples and self._items:
            self._space.clear()
            await self._space.wait()
        self.put_nowait(item)

    def put_nowait(self, item: Item) -> None:
        self._items.append(item)
        self._count += len(item.samples)
        self._nonempty.set()

    async def take(self, max_rows: int) -> list[Item]:
        """Wait for at least one item, then take items up to about ``max_rows`` samples."""
        while not self._items:
            self._nonempty.clear()
            await self._nonempty.wait()
        taken: list[Item] = []
        rows = 0
        while self._items and (not taken or rows + len(self._items[0].samples) <= max_rows):
            item = self._items.popleft()
            rows += len(item.samples)
            taken.append(item)
        self._count -= rows
        self._space.set()
        return taken

    def drain_nowait(self) -> list[Item]:
        items = list(self._items)
        self._items.clear()
        self._count = 0
        self._space.set()
        return items


class Writer:
    """Owns the buffer and the single thread that touches it."""

    def __init__(self, buffer: Buffer, queue: WriteQueue, write_batch: int) -> None:
        self.buffer = buffer
        self.queue = queue
        self.write_batch = write_batch
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="buffer")
        self.failures = 0
        self.last_error: str | None = None
        self.committed_samples = 0
        self.on_dropped: Callable[[AppendResult], None] | None = None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking buffer method on the buffer thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def run(self) -> None:
        while True:
            items = await self.queue.take(self.write_batch)
            await self._commit(items)

    async def flush(self) -> None:
        """Commit whatever is still queued (used at shutdown)."""
        items = self.queue.drain_nowait()
        if items:
            await self._commit(items, retry=False)

    async def _commit(self, items: list[Item], retry: bool = True) -> None:
        samples = [s for item in items for s in item.samples]
        events = [e for item in items for e in item.events]
        delay = 0.5
        while True:
            try:
                result = await self.call(self.buffer.append, samples, events)
                break
            except StoreError as exc:
                # Nothing was committed and nothing acknowledged: keep the batch and retry, so a
                # full or read-only disk holds data in memory (bounded by the queue) until it heals.
                self.failures += 1
                if self.last_error is None:
                    log.error("buffer write failed, retrying: %s", exc)
                self.last_error = str(exc)
                if not retry:
                    log.error("buffer write failed at shutdown, %d samples not stored: %s", len(samples), exc)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        if self.last_error is not None:
            log.info("buffer writes recovered")
            self.last_error = None
        self.committed_samples += result.samples
        if (result.dropped_oldest or result.dropped_newest) and self.on_dropped:
            self.on_dropped(result)
        for item in items:
            if item.on_commit is not None:
                try:
                    item.on_commit()
                except Exception:  # a failing ack must not stop the writer
                    log.exception("commit callback failed")

    def close(self) -> None:
        self.executor.submit(self.buffer.close).result()
        self.executor.shutdown(wait=True)
