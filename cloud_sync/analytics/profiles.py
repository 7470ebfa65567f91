"""Adding up ``machine_profile`` events (rolled up at the edge, see ``docs/events.md``) over a window.

Totals add: run, planned and unplanned stop time, failures and their repair time,
micro-stops, good and scrap parts. Ratios are weighted: availability by planned
time, performance by run time, quality by parts. Profiles are taken once per
event id (a profile computed again has the same id) and only of one period kind,
so hourly and daily profiles of the same hours are not counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cloud_sync.analytics.records import StoredEvent
from edge_agent.behaviour.kinds import MACHINE_PROFILE
from edge_agent.behaviour.stats import ratio

__all__ = ["ProfileTotals", "by_device", "unique_profiles"]


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass
class ProfileTotals:
    """The sums of some profiles and the weighted ratios derived from them."""

    run_s: float = 0.0
    planned_s: float = 0.0
    unplanned_stop_s: float = 0.0
    failures: int = 0
    repair_s: float = 0.0
    micro_stops: int = 0
    good: int = 0
    scrap: int = 0
    site: str | None = None
    area: str | None = None
    line: str | None = None
    _weighted: dict[str, list[float]] = field(default_factory=lambda: {"a": [0, 0], "p": [0, 0], "q": [0, 0]})

    def add(self, attributes: Mapping[str, Any]) -> None:
        """Add one profile's attributes."""
        run, planned = _num(attributes.get("run_s")) or 0.0, _num(attributes.get("planned_s")) or 0.0
        failures = int(_num(attributes.get("failures")) or 0)
        good, scrap = int(_num(attributes.get("good")) or 0), int(_num(attributes.get("scrap")) or 0)
        self.run_s += run
        self.planned_s += planned
        self.unplanned_stop_s += _num(attributes.get("unplanned_stop_s")) or 0.0
        self.failures += failures
        self.repair_s += (_num(attributes.get("mttr_s")) or 0.0) * failures
        self.micro_stops += int(_num(attributes.get("micro_stops")) or 0)
        self.good += good
        self.scrap += scrap
        for key, name, weight in (
            ("a", "availability", planned),
            ("p", "performance", run),
            ("q", "quality", good + scrap),
        ):
            value = _num(attributes.get(name))
            if value is not None and weight > 0:
                self._weighted[key][0] += value * weight
                self._weighted[key][1] += weight
        for name in ("site", "area", "line"):
            value = attributes.get(name)
            if isinstance(value, str):
                setattr(self, name, value)

    def merge(self, other: ProfileTotals) -> None:
        """Add another total (for groups of devices)."""
        for name in ("run_s", "planned_s", "unplanned_stop_s", "failures", "repair_s", "micro_stops", "good", "scrap"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for key, (num, den) in other._weighted.items():
            self._weighted[key][0] += num
            self._weighted[key][1] += den

    def _ratio(self, key: str) -> float | None:
        num, den = self._weighted[key]
        return ratio(num, den)

    @property
    def availability(self) -> float | None:
        return self._ratio("a")

    @property
    def performance(self) -> float | None:
        return self._ratio("p")

    @property
    def quality(self) -> float | None:
        return self._ratio("q")

    @property
    def oee(self) -> float | None:
        a, p, q = self.availability, self.performance, self.quality
        return a * p * q if a is not None and p is not None and q is not None else None

    @property
    def mtbf_s(self) -> float | None:
        return self.run_s / self.failures if self.failures else None

    @property
    def mttr_s(self) -> float | None:
        return self.repair_s / self.failures if self.failures else None

    @property
    def micro_stops_per_h(self) -> float | None:
        return ratio(self.micro_stops * 3600.0, self.run_s)


def unique_profiles(events: Iterable[StoredEvent], period: str, kind: str = MACHINE_PROFILE) -> list[StoredEvent]:
    """Profile events of ``kind`` and ``period``, each event id once, in ``(gateway, device, ts)`` order."""
    seen: set[str] = set()
    out = []
    for e in sorted(events, key=lambda e: (e.gateway_id, e.device, e.ts, e.event_id)):
        if e.kind == kind and e.attributes.get("period") == period and e.event_id not in seen:
            seen.add(e.event_id)
            out.append(e)
    return out


def by_device(events: Iterable[StoredEvent], period: str) -> dict[tuple[str, str], ProfileTotals]:
    """Totals per ``(gateway_id, device)`` of the machine profiles of ``period``."""
    out: dict[tuple[str, str], ProfileTotals] = {}
    for e in unique_profiles(events, period):
        out.setdefault((e.gateway_id, e.device), ProfileTotals()).add(e.attributes)
    return out
