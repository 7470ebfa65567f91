"""The bounded queue between connectors and the buffer, and the task that drains it.

Connectors put batches of samples (and events) here; the writer commits them to
SQLite in large transactions on one worker thread and then runs each batch's
``on_commit`` callback (an MQTT QoS 1 acknowledgement, for instance). The queue is
bounded in samples: a producer waits while it is full, so a slow disk slows the
pollers down instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from edge_agent.buffer.overflow import GATEWAY
from edge_agent.buffer.store import AppendResult, Buffer
from edge_agent.errors import StoreError
from edge_agent.model import Event, Mark, Sample

log = logging.getLogger("edge_agent.buffer")
T = TypeVar("T")


@dataclass
class Item:
    samples: Sequence[Sample]
    events: Sequence[Event]
    on_commit: Callable[[], None] | None
    marks: Sequence[Mark] = ()


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
        self.closed = False

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

    def close(self) -> None:
        """Wake the consumer for good: :meth:`take` returns ``[]`` once the queue is empty."""
        self.closed = True
        self._nonempty.set()

    async def take(self, max_rows: int) -> list[Item]:
        """Wait for at least one item, then take items up to about ``max_rows`` samples
        (``[]`` when the queue is closed and empty)."""
        while not self._items:
            if self.closed:
                return []
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
    """Owns the buffer and the single thread that touches it.

    A failed write (disk full, read-only file system, I/O error) commits nothing and
    acknowledges nothing: the batch is kept and retried with a capped backoff while
    the bounded queue holds what arrives meanwhile and then slows the producers down.
    The first failure is logged as an ERROR and recorded as a ``buffer_write_failed``
    event, repeats at DEBUG, the recovery once at INFO with a ``buffer_write_recovered``
    event. On a full disk, synced rows are deleted first to make room inside the file.
    Values SQLite cannot store are set aside (counted, logged) instead of blocking the queue.
    """

    def __init__(self, buffer: Buffer, queue: WriteQueue, write_batch: int) -> None:
        self.buffer = buffer
        self.queue = queue
        self.write_batch = write_batch
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="buffer")
        self.failures = 0
        self.last_error: str | None = None
        self.fault_kind: str | None = None
        self.failing_since: float | None = None
        self.held_samples = 0
        self.committed_samples = 0
        self.rejected_samples = 0
        self.on_dropped: Callable[[AppendResult], None] | None = None
        self.on_event: Callable[[Event], None] | None = None
        self._stopping = asyncio.Event()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking buffer method on the buffer thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def run(self) -> None:
        """Commit queued batches until :meth:`stop`; the batch in hand is finished first."""
        while True:
            items = await self.queue.take(self.write_batch)
            if not items:
                return
            await self._commit(items, retry=not self._stopping.is_set())

    def stop(self) -> None:
        """Let :meth:`run` return after the batch in hand (a failing write is then tried once more)."""
        self._stopping.set()
        self.queue.close()

    async def flush(self) -> None:
        """Commit whatever is still queued (used at shutdown)."""
        items = self.queue.drain_nowait()
        if items:
            await self._commit(items, retry=False)

    def health(self) -> dict[str, Any]:
        """The write path's state for the status API."""
        return {
            "state": "failing" if self.last_error else "ok",
            "kind": self.fault_kind,
            "error": self.last_error,
            "since": self.failing_since,
            "failures": self.failures,
            "held_samples": self.held_samples,
            "rejected_samples": self.rejected_samples,
        }

    async def _commit(self, items: list[Item], retry: bool = True) -> None:
        samples: Sequence[Sample] = [s for item in items for s in item.samples]
        events: Sequence[Event] = [e for item in items for e in item.events]
        marks: Sequence[Mark] = [m for item in items for m in item.marks]
        delay = 0.5
        self.held_samples = len(samples)
        while True:
            try:
                result = await self.call(self.buffer.append, samples, events, marks)
                break
            except StoreError as exc:
                kind = getattr(exc, "kind", "error")
                if kind == "bad_value":
                    samples, events = self._set_aside_unstorable(samples, events, exc)
                    continue
                self._failed(exc, kind)
                if kind == "disk_full" and await self._free_synced():
                    continue
                if not retry or self._stopping.is_set():
                    log.error("buffer write failed at shutdown, %d samples not stored: %s", len(samples), exc)
                    self.held_samples = 0
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                delay = min(delay * 2, 10.0)
        self.held_samples = 0
        if self.last_error is not None:
            self._recovered()
        self.committed_samples += result.samples
        if (result.dropped_oldest or result.dropped_newest) and self.on_dropped:
            self.on_dropped(result)
        for item in items:
            if item.on_commit is not None:
                try:
                    item.on_commit()
                except Exception:  # a failing ack must not stop the writer
                    log.exception("commit callback failed")

    def _failed(self, exc: StoreError, kind: str) -> None:
        # Nothing was committed and nothing acknowledged: the batch is kept and retried, so a
        # full or read-only disk holds data in memory (bounded by the queue) until it heals.
        self.failures += 1
        if self.last_error is None:
            self.failing_since = time.time()
            self.fault_kind = kind
            log.error(
                "buffer write failed (%s): %s; holding %d samples in memory and slowing the devices down "
                "until it heals (the status page and latest values keep working)",
                kind.replace("_", " "), exc, self.held_samples + len(self.queue),
            )
            self._event("buffer_write_failed", {"kind": kind, "error": str(exc)})
        else:
            log.debug("buffer write still failing: %s", exc)
        self.last_error = str(exc)

    def _recovered(self) -> None:
        since = self.failing_since or time.time()
        log.info(
            "buffer writes recovered after %.1f s (%s, %d failed attempts); the held samples are committed",
            time.time() - since, self.fault_kind, self.failures,
        )
        self._event("buffer_write_recovered", {
            "kind": self.fault_kind, "failed_s": round(time.time() - since, 3), "failed_attempts": self.failures,
        })
        self.last_error = None
        self.fault_kind = None
        self.failing_since = None

    async def _free_synced(self) -> bool:
        """On a full disk, delete synced rows so SQLite can reuse their pages; True if any were freed."""
        try:
            freed = await self.call(self.buffer.free_synced)
        except StoreError as exc:
            log.debug("could not free synced rows: %s", exc)
            return False
        if freed:
            log.warning("disk full: deleted %d already synced samples to make room in the buffer", freed)
        return freed > 0

    def _set_aside_unstorable(
        self, samples: Sequence[Sample], events: Sequence[Event], exc: StoreError
    ) -> tuple[list[Sample], list[Event]]:
        good_samples = [s for s in samples if _storable(s.value)]
        good_events = [e for e in events if _serialisable(e.attributes)]
        rejected = len(samples) - len(good_samples) + len(events) - len(good_events)
        if not rejected:  # cannot tell which row is bad: do not loop on it
            raise exc
        self.rejected_samples += len(samples) - len(good_samples)
        log.error("%d rows hold values the buffer cannot store; they were set aside: %s", rejected, exc)
        return good_samples, good_events

    def close(self) -> None:
        self.executor.submit(self.buffer.close).result()
        self.executor.shutdown(wait=True)

    def _event(self, kind: str, attributes: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(Event(GATEWAY, kind, attributes))


def _storable(value: Any) -> bool:
    if value is None or isinstance(value, bool | float | str):
        return True
    return isinstance(value, int) and -(2**63) <= value < 2**63


def _serialisable(attributes: dict[str, Any]) -> bool:
    try:
        orjson.dumps(attributes)
    except TypeError:
        return False
    return True
