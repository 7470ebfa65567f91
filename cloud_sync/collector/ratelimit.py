"""Per-gateway rate limit for batches: one token bucket per gateway, in this process.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second;
each batch takes one. An empty bucket answers how long until the next token,
which the API sends as ``Retry-After``.

The buckets live in process memory: behind a load balancer with N collector
processes a gateway may send up to N times the rate in total. That is enough
to stop a runaway gateway from starving the others; it is not a quota.
Exactly-once never depends on it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Token buckets keyed by gateway id; ``rate <= 0`` disables limiting."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = 10_000,
    ) -> None:
        if burst is not None and burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, 2 * rate)
        self._clock = clock
        self._max_buckets = max_buckets
        self._buckets: dict[str, tuple[float, float]] = {}  # gateway -> (tokens, at)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self, gateway: str) -> float:
        """Take a token for ``gateway``: ``0.0`` if there was one, else the seconds until there is."""
        if not self.enabled:
            return 0.0
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(gateway, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._store(gateway, tokens - 1.0, now)
                return 0.0
            self._store(gateway, tokens, now)
            return (1.0 - tokens) / self.rate

    def _store(self, gateway: str, tokens: float, now: float) -> None:
        if gateway not in self._buckets and len(self._buckets) >= self._max_buckets:
            self._forget_full(now)
        self._buckets[gateway] = (tokens, now)

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled: an absent bucket is a full one, so nothing changes."""
        full = [gw for gw, (tokens, at) in self._buckets.items() if tokens + (now - at) * self.rate >= self.burst]
        for gw in full:
            del self._buckets[gw]
        if len(self._buckets) >= self._max_buckets:  # still full of busy gateways: forget the oldest
            oldest = min(self._buckets, key=lambda gw: self._buckets[gw][1])
            del self._buckets[oldest]


def retry_after_header(wait_s: float) -> str:
    """``Retry-After`` in whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))
