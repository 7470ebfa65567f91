"""The hand-off between asyncua callbacks and the connector's run task.

Subscription callbacks, the poller and the watchdog run in the event loop but
must never block; they put batches of samples (or a failure) into a bounded
queue that the run task drains into the sink. Samples put by the callbacks of
one publish response are gathered into one batch (flushed on the next turn of the
event loop), so ``maxsize`` counts publish responses, not single values. When the
queue is full the oldest batch is dropped and its samples are counted as errors.
A failure is delivered once, after the batches already queued, and ends the
connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from edge_agent.connectors.base import Sink
from edge_agent.connectors.schedule import raise_if_cancelled
from edge_agent.errors import ConnectorError
from edge_agent.model import Sample

log = logging.getLogger("edge_agent.connectors.opcua")

Item = Sequence[Sample] | ConnectorError


class Feed:
    """Bounded queue of sample batches, ended by at most one failure."""

    def __init__(self, sink: Sink, device: str, maxsize: int = 1000, max_batch: int = 5000) -> None:
        self.sink = sink
        self.device = device
        self.max_batch = max_batch
        self.queue: asyncio.Queue[Item] = asyncio.Queue(maxsize)
        self.failed = False
        self.dropped = 0
        self.pending: list[Sample] = []

    def add(self, samples: Sequence[Sample]) -> None:
        """Gather samples of a callback into the batch flushed on the next turn of the loop."""
        if self.failed or not samples:
            return
        if not self.pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self.pending.extend(samples)

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        self.put(batch)

    def put(self, samples: Sequence[Sample]) -> None:
        """Queue a batch without waiting (for callbacks); drops the oldest batch when full."""
        if self.failed or not samples:
            return
        if self.queue.full():
            oldest = self.queue.get_nowait()
            if not isinstance(oldest, ConnectorError):
                lost = len(oldest)
                self.dropped += lost
                self.sink.status.errors += lost
                if self.dropped == lost:
                    log.warning("%s: sample queue full, dropping the oldest samples", self.device)
        self.queue.put_nowait(samples)

    async def put_wait(self, samples: Sequence[Sample]) -> None:
        """Queue a batch, waiting while the queue is full (for the poller)."""
        if not self.failed and samples:
            await self.queue.put(samples)

    def fail(self, error: ConnectorError) -> None:
        """End the connection with ``error``; later calls are ignored."""
        if self.failed:
            return
        self.failed = True
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(error)

    async def drain(self) -> None:
        """Emit queued batches into the sink until a failure arrives, then raise it."""
        while True:
            raise_if_cancelled()
            item = await self.queue.get()
            batch: list[Sample] = []
            while True:
                if isinstance(item, ConnectorError):
                    if batch:
                        await self.sink.emit(batch)
                    raise item
                batch.extend(item)
                if len(batch) >= self.max_batch or self.queue.empty():
                    break
                item = self.queue.get_nowait()
            await self.sink.emit(batch)
