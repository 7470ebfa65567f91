"""The MQTT hand-off: messages reach the sink in batches, are acknowledged only by the commit callback
(all of a batch's delivery marks in one call, in order), and a full hand-off pauses reading."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from edge_agent.connectors.base import CommitCallback
from edge_agent.connectors.mqtt.handoff import Handoff
from edge_agent.model import Mark, Sample
from tests.connectors.connector_testkit import FakeSink, wait_until


class HoldingSink(FakeSink):
    """Records each batch and keeps its commit callback instead of running it."""

    def __init__(self) -> None:
        super().__init__("dev", "mqtt")
        self.batches: list[tuple[list[Sample], list[Mark], CommitCallback | None]] = []

    async def emit(
        self, samples: Sequence[Sample], on_commit: CommitCallback | None = None, marks: Sequence[Mark] = ()
    ) -> None:
        self.batches.append((list(samples), list(marks), on_commit))


def sample(n: int) -> Sample:
    return Sample("dev", "n", float(n), n)


async def test_marks_are_acknowledged_in_one_call_after_the_commit_only() -> None:
    acknowledged: list[list[Mark]] = []
    callbacks: list[str] = []
    handoff = Handoff(acknowledge=lambda marks: acknowledged.append(list(marks)))
    sink = HoldingSink()
    drain = asyncio.create_task(handoff.drain(sink))
    try:
        handoff.put([sample(1), sample(2)], None, ("src", 1, "d1"))
        handoff.put([sample(3)], None, None)  # QoS 0: nothing to acknowledge
        handoff.put([sample(4)], lambda: callbacks.append("ack"), ("src", 2, "d2"))
        await wait_until(lambda: len(sink.batches) == 1, what="one batch")
        samples, marks, on_commit = sink.batches[0]
        assert [s.value for s in samples] == [1, 2, 3, 4]
        assert marks == [("src", 1, "d1"), ("src", 2, "d2")]
        assert acknowledged == [] and callbacks == []  # not committed yet
        assert on_commit is not None
        on_commit()
        assert acknowledged == [[("src", 1, "d1"), ("src", 2, "d2")]]
        assert callbacks == ["ack"]

        handoff.put([sample(5)], None, ("src", 3, "d3"))
        await wait_until(lambda: len(sink.batches) == 2, what="a second batch")
        assert sink.batches[1][1] == [("src", 3, "d3")]
    finally:
        drain.cancel()
        await asyncio.gather(drain, return_exceptions=True)


async def test_a_full_handoff_pauses_reading_until_its_batch_is_handed_over() -> None:
    handoff = Handoff(maxsize=3)
    calls: list[str] = []
    handoff.flow.pause = lambda: calls.append("pause")
    handoff.flow.resume = lambda: calls.append("resume")
    for n in range(3):
        assert handoff.put([sample(n)])
    assert calls == ["pause"]
    sink = HoldingSink()
    drain = asyncio.create_task(handoff.drain(sink))
    try:
        await wait_until(lambda: "resume" in calls, what="reading resumed")
        assert [s.value for s in sink.batches[0][0]] == [0, 1, 2]
        handoff.close()
        assert not handoff.put([sample(9)])  # closed: left unacknowledged for the broker to redeliver
    finally:
        drain.cancel()
        await asyncio.gather(drain, return_exceptions=True)
