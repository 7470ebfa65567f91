"""Streaming anomaly detection of a device's tags, as the agent runs it (pure: no clock, no I/O).

One detector and one alarm per tag named in the profile's ``[maintenance] anomaly_tags``;
:meth:`AnomalyMonitor.feed` returns the alarm transitions a sample causes, which the agent
passes to the alarms of the status page. It also keeps each tag's latest score (``scores``) and an
exponential moving average of it over about ``smoothing`` points (``smoothed``), which the health index
reads (:mod:`edge_agent.maintenance.health`).
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.maintenance.anomaly import AnomalyAlarm, Detector, make_detector
from edge_agent.model import Quality, Sample
from edge_agent.profiles import MaintenanceSettings


@dataclass(frozen=True, slots=True)
class AnomalyChange:
    device: str
    tag: str
    active: bool
    score: float


class AnomalyMonitor:
    def __init__(self, device: str, settings: MaintenanceSettings) -> None:
        self.device = device
        self.settings = settings
        self.detectors: dict[str, Detector] = {
            tag: make_detector(settings.detector, warmup=settings.warmup) for tag in settings.anomaly_tags
        }
        self.alarms = {
            tag: AnomalyAlarm(settings.threshold, min(settings.hysteresis, settings.threshold), settings.clear_after)
            for tag in settings.anomaly_tags
        }
        self._tags = frozenset(self.detectors)
        self.scores: dict[str, float] = {}
        self.smoothed: dict[str, float] = {}
        self._alpha = 2.0 / (settings.smoothing + 1.0)

    @property
    def tags(self) -> frozenset[str]:
        return self._tags

    @property
    def active(self) -> frozenset[str]:
        """The tags whose anomaly alarm is up."""
        return frozenset(tag for tag, alarm in self.alarms.items() if alarm.active)

    def feed(self, sample: Sample) -> AnomalyChange | None:
        detector = self.detectors.get(sample.tag)
        if detector is None or sample.quality == Quality.BAD or isinstance(sample.value, str | bool):
            return None
        detector.update(float(sample.value))
        level = detector.level
        self.scores[sample.tag] = level
        previous = self.smoothed.get(sample.tag)
        self.smoothed[sample.tag] = level if previous is None else previous + self._alpha * (level - previous)
        change = self.alarms[sample.tag].update(level)
        if change is None:
            return None
        return AnomalyChange(self.device, sample.tag, change.active, change.score)
