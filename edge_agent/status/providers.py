"""What the status package takes from other parts of the agent, as protocols.

None is required: without an OEE engine the twin counts parts from the
counters, without a history query the history comes from the recent points in
memory, without a setpoint writer writes are refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from edge_agent.model import Value
from edge_agent.twin.model import HealthFigures, OeeFigures

__all__ = [
    "HealthProvider",
    "HealthTrackersProvider",
    "HistoryQuery",
    "LiveOeeLike",
    "LiveOeeProvider",
    "OeeProvider",
    "OeeResultLike",
    "SetpointWriter",
]


class LossesLike(Protocol):
    def as_dict(self) -> dict[str, float]: ...


class OeeResultLike(Protocol):
    """The figures the page shows of an ``edge_agent.oee.OeeResult``."""

    @property
    def window_from(self) -> float: ...
    @property
    def planned_time_s(self) -> float: ...
    @property
    def availability(self) -> float: ...
    @property
    def performance(self) -> float: ...
    @property
    def quality(self) -> float: ...
    @property
    def oee(self) -> float: ...
    @property
    def good_count(self) -> int: ...
    @property
    def scrap_count(self) -> int: ...
    @property
    def losses(self) -> LossesLike: ...
    @property
    def mtbf_s(self) -> float | None: ...
    @property
    def mttr_s(self) -> float | None: ...


class LiveOeeLike(Protocol):
    """``edge_agent.oee.LiveOee``: fed with the device's samples by the supervisor."""

    def current_shift(self, now: float) -> OeeResultLike | None: ...


class OeeProvider(Protocol):
    """Live OEE figures of a device's current shift, or None."""

    def oee(self, device: str, now: float) -> OeeFigures | None: ...


class HealthProvider(Protocol):
    """Predictive maintenance: a device's health index and anomaly state, or None."""

    def health(self, device: str, now: float) -> HealthFigures | None: ...


class HealthTrackerLike(Protocol):
    """``edge_agent.maintenance.tracker.HealthTracker``: fed by the supervisor, asked for its figures."""

    def figures(self) -> HealthFigures | None: ...


class HistoryQuery(Protocol):
    """Stored samples of one tag in ``[start, end]``, oldest first, at most ``limit`` of them."""

    async def __call__(self, device: str, tag: str, start: float, end: float,
                       limit: int) -> Sequence[tuple[float, Value]]: ...


class SetpointWriter(Protocol):
    """The guarded write path: raises an ``EdgeError`` saying why a write was refused or failed."""

    async def write(self, device: str, tag: str, value: Value) -> None: ...


class LiveOeeProvider:
    """An :class:`OeeProvider` over ``LiveOee`` engines, one per device.

    The parts target is what the ideal cycle time allows in the planned time so far.
    """

    def __init__(self, engines: Mapping[str, LiveOeeLike], ideal_cycle_s: Mapping[str, float]) -> None:
        self.engines = engines
        self.ideal_cycle_s = ideal_cycle_s
        self.errors = 0

    def oee(self, device: str, now: float) -> OeeFigures | None:
        engine = self.engines.get(device)
        if engine is None:
            return None
        try:
            result = engine.current_shift(now)
        except ValueError:  # OeeError: the window reaches before the kept history
            self.errors += 1
            return None
        if result is None:
            return None
        cycle = self.ideal_cycle_s.get(device)
        target = int(result.planned_time_s / cycle) if cycle else None
        return OeeFigures(
            availability=result.availability, performance=result.performance, quality=result.quality,
            oee=result.oee, good=result.good_count, scrap=result.scrap_count, target=target,
            window_from=result.window_from, losses=result.losses.as_dict(), mtbf_s=result.mtbf_s,
            mttr_s=result.mttr_s,
        )


class HealthTrackersProvider:
    """A :class:`HealthProvider` over health trackers, one per device (the mapping may change later)."""

    def __init__(self, trackers: Mapping[str, HealthTrackerLike]) -> None:
        self.trackers = trackers

    def health(self, device: str, now: float) -> HealthFigures | None:
        tracker = self.trackers.get(device)
        return None if tracker is None else tracker.figures()
