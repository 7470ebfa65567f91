"""The hand-off of decoded MQTT messages from paho's callbacks to the sink, in batches.

paho calls ``on_message`` synchronously (from the event loop, see :mod:`.client`);
the sink's ``emit`` is a coroutine. The callback appends ``(samples, ack, mark)`` here
and one task takes everything queued as one batch: one ``sink.emit`` whose commit
callback acknowledges every message of the batch, in order: those queued with a
delivery mark through ``acknowledge`` (one call with all the batch's marks), those
queued with an ``ack`` callback one by one.

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
AckMarks = Callable[[Sequence[Mark]], None]


class Handoff:
    """A bounded queue of decoded messages between paho's callbacks and the sink.

    ``acknowledge`` (optional) is called once per committed batch with the marks of its
    messages, in order (an MQTT connector acknowledges them all in one write)."""

    def __init__(self, maxsize: int = 2000, acknowledge: AckMarks | None = None) -> None:
        self.maxsize = maxsize
        self.flow = Flow()
        self.acknowledge = acknowledge
        # the waiting messages, flattened: no object per message beyond its samples
        self._samples: list[Sample] = []
        self._acks: list[Ack] = []
        self._marks: list[Mark] = []
        self._count = 0
        self._wake = asyncio.Event()
        self._closed = False

    def put(self, samples: Sequence[Sample], ack: Ack | None = None, mark: Mark | None = None) -> bool:
        """Queue one message; pauses reading when full. False once closed (the message stays unacknowledged).

        ``mark`` is committed with the samples so a redelivery after a crash can be recognised;
        after the commit it goes to ``acknowledge``, and ``ack`` is called."""
        if self._closed:
            return False
        self._samples += samples
        if ack is not None:
            self._acks.append(ack)
        if mark is not None:
            self._marks.append(mark)
        self._count += 1
        if self._count == 1:
            self._wake.set()
        if self._count >= self.maxsize:
            self.flow.pause()
        return True

    def close(self) -> None:
        """Accept nothing more."""
        self._closed = True

    async def drain(self, sink: Sink) -> None:
        """Emit everything queued, batch by batch, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._count:
                continue
            samples, acks, marks = self._samples, self._acks, self._marks
            self._samples, self._acks, self._marks, self._count = [], [], [], 0

            def acknowledge(acks: list[Ack] = acks, marks: list[Mark] = marks) -> None:
                if marks and self.acknowledge is not None:
                    self.acknowledge(marks)
                for ack in acks:
                    ack()

            await sink.emit(samples, acknowledge, marks)
            self.flow.resume()
