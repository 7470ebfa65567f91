"""Turning buffer drops into a few ``buffer_overflow`` events instead of one per write.

While the buffer is full every write batch drops rows. The reporter adds the drops
up and yields one event (and one WARNING line) at the first drop and then at most
one per ``interval_s`` with the counts since the previous one, so a long outage costs
a handful of events rather than thousands (events are never dropped themselves).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from edge_agent.model import Event

log = logging.getLogger("edge_agent.buffer")
GATEWAY = "_gateway"


@dataclass
class OverflowReporter:
    policy: str
    max_rows: int
    max_bytes: int
    interval_s: float = 60.0
    device: str = GATEWAY

    def __post_init__(self) -> None:
        self.pending = {"dropped_oldest": 0, "dropped_newest": 0}
        self.totals = {"dropped_oldest": 0, "dropped_newest": 0}
        self.pending_since: float | None = None
        self.last_emit: float | None = None
        self.events_emitted = 0

    def add(self, dropped_oldest: int, dropped_newest: int, now: float) -> Event | None:
        """Count one write's drops; returns an event when one is due."""
        if not dropped_oldest and not dropped_newest:
            return None
        self.pending["dropped_oldest"] += dropped_oldest
        self.pending["dropped_newest"] += dropped_newest
        self.totals["dropped_oldest"] += dropped_oldest
        self.totals["dropped_newest"] += dropped_newest
        if self.pending_since is None:
            self.pending_since = now
        return self.flush(now)

    def flush(self, now: float, force: bool = False) -> Event | None:
        """The aggregated event if drops are pending and the interval has passed (or ``force``)."""
        if self.pending_since is None:
            return None
        if not force and self.last_emit is not None and now - self.last_emit < self.interval_s:
            return None
        counts = dict(self.pending)
        event = Event(self.device, "buffer_overflow", {
            "policy": self.policy,
            **counts,
            "since": self.pending_since,
            "until": now,
            "total_dropped_oldest": self.totals["dropped_oldest"],
            "total_dropped_newest": self.totals["dropped_newest"],
            "max_rows": self.max_rows,
            "max_bytes": self.max_bytes,
        }, ts=now)
        log.warning(
            "buffer full (cap %d rows / %.1f MB): dropped %d oldest and %d newest samples in the last %.0f s "
            "(policy %s; %d dropped since start)",
            self.max_rows, self.max_bytes / 1e6, counts["dropped_oldest"], counts["dropped_newest"],
            now - self.pending_since, self.policy, sum(self.totals.values()),
        )
        self.pending = {"dropped_oldest": 0, "dropped_newest": 0}
        self.pending_since = None
        self.last_emit = now
        self.events_emitted += 1
        return event
