"""Live OEE of one device: feed samples as they arrive, ask for any recent window.

The engine keeps only change points of the state and reason and the
increments of the counters (see :mod:`edge_agent.oee.tracks`), forgets what
is older than ``retention_s`` and never keeps more than ``max_points``; the
figures come from :func:`edge_agent.oee.compute.compute`, the same code as the
offline analysis. No clock inside: callers pass ``now``.
"""

from __future__ import annotations

from datetime import datetime

from edge_agent.model import Quality, Sample
from edge_agent.oee.calendar import ALWAYS, Calendar
from edge_agent.oee.compute import compute, epoch
from edge_agent.oee.model import OeeError, OeeOptions, OeeResult
from edge_agent.oee.tracks import DeviceTracks
from edge_agent.profiles import OeeSignals

__all__ = ["LiveOee"]

DEFAULT_RETENTION_S = 8 * 86_400.0
DEFAULT_MAX_POINTS = 1_000_000
PRUNE_EVERY_S = 600.0


class LiveOee:
    """Incremental OEE of ``device``.

    ``feed(sample)`` takes the device's samples in time order per tag (older
    ones are counted in ``out_of_order`` and dropped, other devices' and tags'
    ignored); ``result(from, to)`` computes any window inside the kept history,
    ``current_shift(now)`` and ``last_hour(now)`` the usual ones.
    """

    def __init__(
        self,
        device: str,
        signals: OeeSignals,
        calendar: Calendar | None = None,
        *,
        options: OeeOptions | None = None,
        retention_s: float = DEFAULT_RETENTION_S,
        max_points: int = DEFAULT_MAX_POINTS,
    ) -> None:
        if retention_s <= 0 or max_points < 10:
            raise ValueError("retention_s must be > 0 and max_points >= 10")
        self.device = device
        self.calendar = calendar or ALWAYS
        self.retention_s = retention_s
        self.max_points = max_points
        self._tracks = DeviceTracks(signals, options, device=device)
        self._latest = float("-inf")
        self._first = float("inf")
        self._pruned_at = float("-inf")

    @property
    def tags(self) -> frozenset[str]:
        """The tags this engine uses (the others can be left out of :meth:`feed`)."""
        return self._tracks.tags

    @property
    def history_from(self) -> float:
        """Windows must start at or after this instant (-inf until something was forgotten)."""
        return self._tracks.history_from

    @property
    def first_ts(self) -> float:
        """Instant of the earliest sample taken (inf before the first): no window before it has data."""
        return self._first

    @property
    def bad_values(self) -> int:
        return self._tracks.bad_values

    @property
    def out_of_order(self) -> int:
        return self._tracks.out_of_order

    def size(self) -> int:
        """Points kept over all signals."""
        return self._tracks.size()

    def feed(self, sample: Sample) -> None:
        """Take one sample (BAD quality, other devices and unused tags are ignored)."""
        if sample.device != self.device or sample.quality == Quality.BAD:
            return
        self._tracks.feed(sample.tag, sample.ts, sample.value)
        if sample.ts < self._first and sample.tag in self._tracks.by_tag:
            self._first = sample.ts
        if sample.ts > self._latest:
            self._latest = sample.ts
            if sample.ts - self._pruned_at >= PRUNE_EVERY_S:
                self._prune()

    def _prune(self) -> None:
        self._pruned_at = self._latest
        horizon = self._latest - self.retention_s
        if horizon > self._tracks.history_from:
            self._tracks.prune(horizon)
        while self._tracks.size() > self.max_points:
            # too many points even within the retention: give up the oldest half of the kept time
            start = max(self._tracks.history_from, self._earliest())
            cut = start + (self._latest - start) / 2
            if cut <= self._tracks.history_from:
                break
            self._tracks.prune(cut)

    def _earliest(self) -> float:
        tracks = self._tracks
        firsts = [c.ts[0] for c in tracks.counters if len(c.ts)]
        if len(tracks.state.ts):
            firsts.append(tracks.state.ts[0])
        return min(firsts, default=self._latest)

    def result(self, window_from: datetime | float, window_to: datetime | float) -> OeeResult:
        """OEE over ``[window_from, window_to)``; OeeError if the window starts before :attr:`history_from`."""
        start = epoch(window_from)
        if start < self._tracks.history_from:
            raise OeeError(
                f"window starts at {start:.0f}, before the kept history ({self._tracks.history_from:.0f}); "
                "use the offline analysis for older windows"
            )
        return compute(self._tracks, self.calendar, start, window_to)

    def last_hour(self, now: datetime | float) -> OeeResult:
        """OEE over the hour before ``now``."""
        end = epoch(now)
        return self.result(end - 3600.0, end)

    def current_shift(self, now: datetime | float) -> OeeResult | None:
        """OEE from the start of the shift running at ``now`` up to ``now``.

        None outside shifts and at the very first instant of a shift (nothing to measure yet).

        With the 24/7 default calendar the "shift" is the current UTC day.
        """
        end = epoch(now)
        if self.calendar.always:
            start = end - end % 86_400.0
        else:
            span = self.calendar.shift_at(end)
            if span is None:
                return None
            start = span.start
        return self.result(start, end) if end > start else None
