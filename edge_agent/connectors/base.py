"""The one connector protocol and the sink connectors write into.

A connector is built from one :class:`~edge_agent.config.Device` and runs until
cancelled::

    async def run(self, sink: Sink, ready: Callable[[], None]) -> None

It calls ``ready()`` once connected or subscribed, reconnects by itself with a
capped exponential backoff, and reports its state through the sink. It never
touches storage or HTTP: its only output is the sink.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Protocol

from edge_agent.model import Event, Mark, Sample

if TYPE_CHECKING:
    from edge_agent.config import Device

log = logging.getLogger("edge_agent.connectors")

CommitCallback = Callable[[], None]


LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Latency:
    """A fixed-bucket histogram of request durations (Prometheus style: cumulative counts per upper bound).

    ``observe`` counts one bucket (the first upper bound not below the duration; past the last one:
    only ``count``), found by bisection: it runs once per request. ``counts`` adds them up.
    """

    hits: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    count: int = 0
    sum_s: float = 0.0

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.sum_s += seconds
        self.hits[bisect_left(LATENCY_BUCKETS_S, seconds)] += 1

    @property
    def counts(self) -> list[int]:
        """Cumulative counts per upper bound of ``LATENCY_BUCKETS_S``."""
        return list(accumulate(self.hits[: len(LATENCY_BUCKETS_S)]))

    def as_dict(self) -> dict[str, Any]:
        return {"buckets_s": list(LATENCY_BUCKETS_S), "counts": self.counts, "count": self.count,
                "sum_s": round(self.sum_s, 6)}


@dataclass
class DeviceStatus:
    """Connection state and counters of one device, read by the status API."""

    device: str
    protocol: str
    state: str = "starting"  # starting | connected | disconnected | stopped
    last_error: str | None = None
    since: float = field(default_factory=time.time)
    samples: int = 0
    errors: int = 0
    reconnects: int = 0
    malformed: int = 0
    duplicates: int = 0
    last_sample_ts: float | None = None
    requests: int = 0
    latency: Latency = field(default_factory=Latency)  # of answered requests (polled reads)

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["latency"] = self.latency.as_dict()
        return out


class Sink(Protocol):
    """Where a connector puts what it reads. Implemented by the supervisor."""

    status: DeviceStatus

    async def emit(
        self, samples: Sequence[Sample], on_commit: CommitCallback | None = None, marks: Sequence[Mark] = ()
    ) -> None:
        """Queue samples for the buffer, waiting while the queue is full.

        ``on_commit`` runs in the event loop once the samples are committed to disk; ``marks`` are
        committed in the same transaction (see :meth:`delivered`).
        """

    async def delivered(self, source: str) -> dict[int, str]:
        """The delivery marks committed for ``source``: message id -> digest."""

    def event(self, event: Event) -> None:
        """Record an event (device state changes and the like)."""

    def connected(self) -> None:
        """The device is reachable again; logs and records the recovery once."""

    def disconnected(self, error: BaseException | str) -> None:
        """The device failed; the first failure is logged as an error, repeats at debug level."""


class Connector(Protocol):
    def __init__(self, device: Device, gateway_id: str) -> None: ...

    async def run(self, sink: Sink, ready: Callable[[], None]) -> None: ...


def describe_error(exc: BaseException | str) -> str:
    if isinstance(exc, str):
        return exc
    text = str(exc).strip()
    name = type(exc).__name__
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    return f"{name}: {text}" if text else name


class Backoff:
    """Capped exponential backoff with jitter: delay doubles per failure up to a maximum."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = max(maximum, initial)
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def next_delay(self) -> float:
        delay = min(self.maximum, self.initial * (2 ** min(self.failures, 30)))
        self.failures += 1
        return delay * random.uniform(0.8, 1.0)

    async def wait(self) -> None:
        await asyncio.sleep(self.next_delay())
