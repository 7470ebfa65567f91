"""Fleet OEE from the gateways' ``oee_rollup`` events: selection, de-duplication and aggregation.

Each ``oee_rollup`` event holds the figures of one device over one complete
period (hour, shift or day; ``edge_agent.behaviour.attributes.OeeRollup``).
Aggregating several of them never averages ratios: the times and counts are
summed and the ratios computed again from the sums (docs/oee.md, "At the
collector"):

* ``availability = Σ run_time_s / Σ planned_time_s``
* ``ideal_time_s = Σ performance_raw * run_time_s`` (each rollup's ideal cycle
  time is ``performance_raw * run_time_s / total_count``, so this is
  ``Σ ideal_cycle_time * total_count``, also for rollups with nothing produced)
* ``performance_raw = ideal_time_s / Σ run_time_s``; ``performance`` is
  ``min(1, performance_raw)`` when any rollup was capped, else the raw value
* ``quality = Σ good_count / Σ total_count`` (1 with nothing produced)
* ``oee = availability * performance * quality``
* losses, stop counts and times are sums; ``mtbf_s = run / breakdowns``,
  ``mttr_s = downtime / breakdowns`` (null without breakdowns).

A period reported twice (a gateway re-sending or recomputing it) counts once:
rollups are keyed by (gateway, device, period kind, period start) and the last
one read wins. Pure: the caller feeds event rows in (ts, gateway, seq) order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from edge_agent.behaviour.attributes import OeeRollup

__all__ = ["GROUPS", "Aggregate", "FleetOee", "Group", "RollupFilter", "TooManyRollups"]

Granularity = Literal["hour", "shift", "day"]
Group = Literal["device", "line", "area", "site", "gateway"]
GROUPS: Mapping[str, tuple[str, ...]] = {
    "device": ("gateway_id", "device"),
    "line": ("site", "area", "line"),
    "area": ("site", "area"),
    "site": ("site",),
    "gateway": ("gateway_id",),
}
"""What each ``group`` option groups by (fields of a rollup)."""

_LOSSES = ("breakdowns", "setup_adjustments", "small_stops", "reduced_speed", "quality")
_TIMES = ("planned_time_s", "run_time_s", "downtime_s", "changeover_s", "small_stops_s")
_COUNTS = ("total_count", "good_count", "scrap_count", "breakdown_count", "small_stop_count")
_CAP_SLACK = 1e-9


class TooManyRollups(Exception):
    """More rollups match than one request may aggregate; narrow the filters."""


@dataclass(frozen=True)
class RollupFilter:
    """Which rollups count: period kind, window (a period counts when it *starts* in ``[start, end)``), place."""

    granularity: Granularity = "hour"
    start: float | None = None
    end: float | None = None
    site: str | None = None
    area: str | None = None
    line: str | None = None

    def admits(self, rollup: OeeRollup) -> bool:
        if rollup.period != self.granularity:
            return False
        if self.start is not None and rollup.period_start < self.start:
            return False
        if self.end is not None and rollup.period_start >= self.end:
            return False
        return all(
            wanted is None or wanted == got
            for wanted, got in ((self.site, rollup.site), (self.area, rollup.area), (self.line, rollup.line))
        )


@dataclass(slots=True)
class _Figures:
    """What aggregation needs of one rollup (kept for every matching rollup, so small)."""

    gateway_id: str
    device: str
    site: str | None
    area: str | None
    line: str | None
    times: tuple[float, ...]
    counts: tuple[int, ...]
    losses: tuple[float, ...]
    ideal_time_s: float
    capped: bool


@dataclass
class Aggregate:
    """Sums over rollups and the ratios computed from them (see the module docstring)."""

    periods: int = 0
    devices: set[tuple[str, str]] = field(default_factory=set)
    times: list[float] = field(default_factory=lambda: [0.0] * len(_TIMES))
    counts: list[int] = field(default_factory=lambda: [0] * len(_COUNTS))
    losses: list[float] = field(default_factory=lambda: [0.0] * len(_LOSSES))
    ideal_time_s: float = 0.0
    capped: bool = False

    def add(self, f: _Figures) -> None:
        self.periods += 1
        self.devices.add((f.gateway_id, f.device))
        for i, v in enumerate(f.times):
            self.times[i] += v
        for i, n in enumerate(f.counts):
            self.counts[i] += n
        for i, v in enumerate(f.losses):
            self.losses[i] += v
        self.ideal_time_s += f.ideal_time_s
        self.capped = self.capped or f.capped

    def figures(self) -> dict[str, Any]:
        planned, run, downtime, changeover, small_stops = self.times
        total, good, scrap, breakdowns, small_stop_count = self.counts
        availability = run / planned if planned > 0 else 0.0
        performance_raw = self.ideal_time_s / run if run > 0 else 0.0
        performance = min(1.0, performance_raw) if self.capped else performance_raw
        quality = good / total if total > 0 else 1.0
        return {
            "periods": self.periods,
            "devices": len(self.devices),
            "planned_time_s": _s(planned),
            "run_time_s": _s(run),
            "downtime_s": _s(downtime),
            "changeover_s": _s(changeover),
            "small_stops_s": _s(small_stops),
            "ideal_time_s": _s(self.ideal_time_s),
            "availability": _r(availability),
            "performance": _r(performance),
            "performance_raw": _r(performance_raw),
            "quality": _r(quality),
            "oee": _r(availability * performance * quality),
            "nothing_produced": total == 0,
            "total_count": total,
            "good_count": good,
            "scrap_count": scrap,
            "losses_s": {name: _s(v) for name, v in zip(_LOSSES, self.losses, strict=True)},
            "mtbf_s": _s(run / breakdowns) if breakdowns else None,
            "mttr_s": _s(downtime / breakdowns) if breakdowns else None,
            "breakdown_count": breakdowns,
            "small_stop_count": small_stop_count,
        }


class FleetOee:
    """Feed ``oee_rollup`` event rows (:meth:`add`), then read :meth:`result`.

    At most ``max_rollups`` distinct rollups are kept (:class:`TooManyRollups`
    beyond); the listing keeps the attributes of the first ``limit`` only.
    """

    def __init__(
        self, rule: RollupFilter, *, group: Group | None = None, limit: int = 1000, max_rollups: int = 200_000
    ) -> None:
        self.rule = rule
        self.group = group
        self.limit = limit
        self.max_rollups = max_rollups
        self.skipped = 0
        self._figures: dict[tuple[str, str, str, float], _Figures] = {}
        self._listed: dict[tuple[str, str, str, float], dict[str, Any]] = {}

    def add(self, event: Mapping[str, Any]) -> None:
        """One stored event (``gateway_id``, ``device``, ``attributes``, ...) of kind ``oee_rollup``."""
        try:
            rollup = OeeRollup.model_validate(event["attributes"])
        except ValidationError:
            self.skipped += 1  # not shaped as the catalogue defines it: counted, not guessed at
            return
        if not self.rule.admits(rollup):
            return
        gateway, device = event["gateway_id"], event["device"]
        key = (gateway, device, rollup.period, rollup.period_start)
        if key not in self._figures and len(self._figures) >= self.max_rollups:
            raise TooManyRollups(
                f"more than {self.max_rollups} rollups match; narrow the window or filter by gateway, device or place"
            )
        self._figures[key] = _Figures(
            gateway_id=gateway,
            device=device,
            site=rollup.site,
            area=rollup.area,
            line=rollup.line,
            times=tuple(getattr(rollup, name) for name in _TIMES),
            counts=tuple(getattr(rollup, name) for name in _COUNTS),
            losses=tuple(getattr(rollup.losses_s, name) for name in _LOSSES),
            ideal_time_s=rollup.performance_raw * rollup.run_time_s,
            capped=rollup.performance < rollup.performance_raw - _CAP_SLACK,
        )
        if key in self._listed or len(self._listed) < self.limit:
            self._listed[key] = {"gateway_id": gateway, "device": device, **rollup.model_dump()}

    def result(self) -> dict[str, Any]:
        """``rollups`` (sorted by period start, gateway, device), ``groups`` (with a group option), ``total``."""
        total = Aggregate()
        groups: dict[tuple[str | None, ...], Aggregate] = {}
        fields = GROUPS[self.group] if self.group else ()
        for figures in self._figures.values():
            total.add(figures)
            if self.group:
                key = tuple(getattr(figures, name) for name in fields)
                groups.setdefault(key, Aggregate()).add(figures)
        rollups = sorted(self._listed.values(), key=lambda r: (r["period_start"], r["gateway_id"], r["device"]))
        out: dict[str, Any] = {
            "rollups": rollups,
            "truncated": len(self._figures) > len(self._listed),
            "skipped": self.skipped,
            "total": total.figures(),
        }
        if self.group:
            out["groups"] = [
                {**dict(zip(fields, key, strict=True)), **groups[key].figures()}
                for key in sorted(groups, key=lambda k: tuple("" if v is None else v for v in k))
            ]
        return out


def _s(seconds: float) -> float:
    return round(seconds, 3)


def _r(ratio: float) -> float:
    return round(ratio, 9)
