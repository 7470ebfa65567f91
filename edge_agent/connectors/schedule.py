"""Loop timing for connectors: a fixed-rate poll schedule and a cancellation guard.

Slot ``k`` of a :class:`PollSchedule` is due at ``start + k * interval``, so polls
do not drift by the time each poll takes. When a poll overruns one or more slots,
the missed slots are skipped (counted in ``skipped``) instead of being run back
to back.
"""

from __future__ import annotations

import asyncio
import math
import time


class PollSchedule:
    """Next-slot bookkeeping for a poll loop; ``now`` values are ``time.monotonic()`` seconds."""

    def __init__(self, interval: float, start: float | None = None) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.due = time.monotonic() if start is None else start
        self.skipped = 0

    def advance(self, now: float) -> float:
        """Move to the next slot after ``now`` and return the seconds to wait for it."""
        self.due += self.interval
        if self.due < now:
            missed = math.floor((now - self.due) / self.interval) + 1
            self.due += missed * self.interval
            self.skipped += missed
        return self.due - now

    async def wait(self) -> None:
        """Sleep until the next slot."""
        raise_if_cancelled()
        await asyncio.sleep(self.advance(time.monotonic()))


def raise_if_cancelled() -> None:
    """Raise CancelledError if the current task was cancelled but is still running.

    On Python 3.11, ``asyncio.wait_for`` returns the result instead of raising when
    a cancellation races with the completion of the awaited future; pymodbus and
    asyncua await every response that way. Call this after each library call so a
    swallowed cancellation still stops the connector. (Cancellations our own
    ``asyncio.timeout`` guards issue are withdrawn when the guard exits.)
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
