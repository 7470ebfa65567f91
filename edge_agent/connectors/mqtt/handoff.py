"""The hand-off of decoded MQTT messages from paho's callbacks to the sink, in batches.

paho calls ``on_message`` synchronously (from the event loop, see :mod:`.client`);
the sink's ``emit`` is a coroutine. The callback appends ``(samples, ack)`` here and
one task takes everything queued as one batch: one ``sink.emit`` whose commit
callback acknowledges every message of the batch, in order.

When ``maxsize`` messages are waiting, reading from the broker is paused (the
broker holds the rest) until the batch is handed to the sink. After
:meth:`Handoff.close` nothing is accepted: a message not handed over is never
acknowledged, and the broker delivers it again to the next session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from edge_agent.connectors.base import Sink
from edge_agent.connectors.mqtt.client import Flow
from edge_agent.model import Mark, Sample

Ack = Callable[[], None]


class Handoff:
    """A bounded queue of decoded messages between paho's callbacks and the sink."""

    def __init__(self, maxsize: int = 2000) -> None:
        self.maxsize = maxsize
        self.flow = Flow()
        self._items: list[tuple[Sequence[Sample], Ack, Mark | None]] = []
        self._wake = asyncio.Event()
        self._closed = False

    def put(self, samples: Sequence[Sample], ack: Ack, mark: Mark | None = None) -> bool:
        """Queue one message; pauses reading when full. False once closed (the message stays unacknowledged).

        ``mark`` is committed with the samples so a redelivery after a crash can be recognised."""
        if self._closed:
            return False
        self._items.append((samples, ack, mark))
        self._wake.set()
        if len(self._items) >= self.maxsize:
            self.flow.pause()
        return True

    def close(self) -> None:
        """Accept nothing more."""
        self._closed = True

    async def drain(self, sink: Sink) -> None:
        """Emit everything queued, batch by batch, until cancelled."""
        while True:
            await self._wake.wait()
            items, self._items = self._items, []
            self._wake.clear()
            if not items:
                continue
            samples = [sample for batch, _, _ in items for sample in batch]
            acks = [ack for _, ack, _ in items]
            marks = [mark for _, _, mark in items if mark is not None]

            def acknowledge(acks: list[Ack] = acks) -> None:
                for ack in acks:
                    ack()

            await sink.emit(samples, acknowledge, marks)
            self.flow.resume()
