"""A device's health as the agent runs it: index, maintenance recommendation and hourly/daily rollups.

:class:`HealthTracker` is fed the device's samples after its ``AnomalyMonitor`` (it reads the monitor's
smoothed scores and alarm states) and feeds its own :class:`~edge_agent.maintenance.edge_rul.EdgeRul` when
the profile has ``[maintenance.rul]``. Each batch of samples that changes the index returns the events to
record: ``maintenance_recommended`` (once, until the device recovers) and the ``health_rollup`` of each period
it closed. No clock: times are the samples'. :class:`HealthTrackers` serves the figures to the live view (the
twin's ``derived.health``) and the metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, tzinfo

from edge_agent.behaviour import kinds as k
from edge_agent.behaviour.attributes import MaintenanceRecommended
from edge_agent.maintenance.edge_rul import EdgeRul, load_edge_rul
from edge_agent.maintenance.health import HealthIndex, MaintenanceTrigger, health_index
from edge_agent.maintenance.health_rollup import HealthPeriods
from edge_agent.maintenance.monitor import AnomalyMonitor
from edge_agent.maintenance.rul_data import RulError
from edge_agent.model import Event, Sample
from edge_agent.profiles import MaintenanceSettings
from edge_agent.status.providers import HealthTrackersProvider
from edge_agent.twin.model import HealthFigures

__all__ = ["HealthTracker", "HealthTrackers", "health_tracker", "wants_health"]

log = logging.getLogger("edge_agent.maintenance")

DEFAULT_RUL_HYSTERESIS = 0.2
"""Without ``[maintenance.rul] hysteresis``: re-arm once the RUL is back above 120% of the horizon."""


class HealthTracker:
    """Health of one device (see the module docstring)."""

    def __init__(
        self,
        device: str,
        settings: MaintenanceSettings,
        monitor: AnomalyMonitor | None = None,
        rul: EdgeRul | None = None,
        tz: tzinfo = UTC,
        rul_error: str | None = None,
    ) -> None:
        self.device = device
        self.rul_error = rul_error
        """Why the configured RUL model does not run (shown with the health), or None."""
        self.settings = settings
        self.monitor = monitor
        self.rul = rul
        self.periods = HealthPeriods(device, tz)
        rs = settings.rul
        self.trigger = MaintenanceTrigger(
            horizon=rs.horizon if rs is not None and rul is not None else None,
            rul_hysteresis=0.0 if rs is None else (
                rs.hysteresis if rs.hysteresis is not None else DEFAULT_RUL_HYSTERESIS * rs.horizon
            ),
            floor=settings.health_floor,
            floor_hysteresis=settings.health_hysteresis,
        )
        self.current: HealthIndex | None = None
        self.recommendations = 0
        self._watched = monitor.tags if monitor is not None else frozenset()
        self.tags = self._watched | (rul.tags if rul is not None else frozenset())
        """The tags that change the health index (the monitor's and the RUL model's)."""

    def feed(self, samples: Sequence[Sample]) -> list[Event]:
        """Samples of the device (after the monitor took them); the events they cause."""
        watched = self._watched
        scored = [s.ts for s in samples if s.tag in watched]
        estimate = self.rul.feed(samples) if self.rul is not None else None
        if not scored and estimate is None:
            return []
        scores = dict(self.monitor.smoothed) if self.monitor is not None else {}
        health = health_index(scores, self.rul.estimate if self.rul is not None else None)
        if health is None:
            return []
        self.current = health
        ts = max(s.ts for s in samples if s.tag in self.tags)
        active = self.monitor is not None and bool(self.monitor.active)
        events = self.periods.add(ts, health, active)
        reason = self.trigger.update(health)
        if reason is not None:
            self.recommendations += 1
            events.append(Event(self.device, k.MAINTENANCE_RECOMMENDED, self._recommendation(health, reason), ts))
        return events

    def _recommendation(self, health: HealthIndex, reason: str) -> dict[str, object]:
        rul, rs = health.rul, self.settings.rul
        attributes = MaintenanceRecommended.model_validate({
            "health": health.index,
            "rul": None if rul is None else round(rul.value, 2),
            "rul_unit": None if rul is None else rul.unit,
            "horizon": None if rs is None or self.rul is None else rs.horizon,
            "reason": reason,
            "model": None if self.rul is None or not self.rul.name else self.rul.name,
        })
        return attributes.model_dump(mode="json")

    def figures(self) -> HealthFigures | None:
        """What the twin shows: the index, whether an anomaly alarm is up, the top smoothed score, the reason."""
        h = self.current
        if h is None:
            return None
        active = sorted(self.monitor.active) if self.monitor is not None else []
        detail = h.reason if not active else f"{h.reason}; anomaly alarm on {', '.join(active)}"
        if self.rul_error is not None:
            detail += f"; no RUL: {self.rul_error}"
        return HealthFigures(index=h.index, anomaly=bool(active), score=h.score, detail=detail)


HealthTrackers = HealthTrackersProvider
"""The live view's health provider over the agent's trackers (by device name)."""


def wants_health(settings: MaintenanceSettings | None) -> bool:
    """A profile's ``[maintenance]`` gives a health index when it scores tags or estimates RUL."""
    return settings is not None and (bool(settings.anomaly_tags) or settings.rul is not None)


def health_tracker(
    device: str, settings: MaintenanceSettings, monitor: AnomalyMonitor | None, tz: tzinfo = UTC
) -> HealthTracker:
    """A tracker with its RUL model loaded when configured.

    A model that cannot run (no TFLite interpreter installed, say) is logged as an error and the device keeps
    its anomaly-based health: the agent goes on collecting data rather than stopping.
    """
    rul, error = None, None
    if settings.rul is not None:
        try:
            rul = load_edge_rul(settings.rul)
        except RulError as exc:
            error = str(exc)
            log.error("%s: remaining useful life disabled: %s", device, error)
    return HealthTracker(device, settings, monitor, rul, tz, rul_error=error)
