"""Inputs and outputs of the OEE computation: options, stops, losses and the result.

All instants are epoch seconds (UTC), all durations seconds. The definitions
behind each figure are in ``docs/oee.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from types import MappingProxyType
from typing import Any, Literal

from edge_agent.errors import EdgeError
from edge_agent.profiles import Profile

__all__ = [
    "CATEGORIES",
    "Category",
    "Losses",
    "OeeError",
    "OeeOptions",
    "OeeResult",
    "Stop",
    "StopKind",
    "options_for_profile",
]

Category = Literal["running", "unplanned_stop", "planned_stop", "changeover", "excluded"]
CATEGORIES: tuple[Category, ...] = ("running", "unplanned_stop", "planned_stop", "changeover", "excluded")
StopKind = Literal["breakdown", "small_stop", "changeover", "planned_stop", "excluded"]

COUNTER_BITS = {"int16": 16, "uint16": 16, "int32": 32, "uint32": 32, "int64": 64, "uint64": 64}
REASON_TAG = "stop_reason"


class OeeError(EdgeError, ValueError):
    """The OEE inputs cannot be used (samples of several devices, a window before the kept history...)."""


@dataclass(frozen=True, slots=True)
class OeeOptions:
    """Settings of the computation that the profile's ``[oee]`` table does not (yet) carry.

    ``reason_tag``: tag whose value is the reason code of the current stop (0 or empty: none).
    ``cap_performance``: report ``performance = min(1, performance_raw)`` (and OEE with it).
    ``counter_bits``: width of each counter tag (16, 32 or 64) for rollover; without it a
    decrease is tried as a 16-bit and then a 32-bit wrap.
    ``reason_lookahead_s``: how long after a stop a reported reason is still taken for it.
    ``reason_lead_s``: a reason already showing when a stop starts counts if reported at most
    this long before the start.
    """

    reason_tag: str | None = None
    cap_performance: bool = False
    counter_bits: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    reason_lookahead_s: float = 300.0
    reason_lead_s: float = 2.0


def options_for_profile(profile: Profile, cap_performance: bool = False) -> OeeOptions:
    """Options derived from a device profile: counter widths from the tag types, and the
    tag named ``stop_reason`` (when the profile has one) as the reason tag."""
    types = {tag.name: tag.type for tag in profile.tags}
    bits = {name: COUNTER_BITS[kind] for name, kind in types.items() if kind in COUNTER_BITS}
    return OeeOptions(
        reason_tag=REASON_TAG if REASON_TAG in types else None,
        cap_performance=cap_performance,
        counter_bits=MappingProxyType(bits),
    )


@dataclass(frozen=True, slots=True)
class Stop:
    """A maximal stretch of one non-running category overlapping the window.

    ``start``/``end`` are those of the whole stop (they may lie outside the
    window; ``end`` is the last known instant while ``open``); ``planned_s`` is
    its part inside the window's calendar-planned time; ``code`` the state
    code at its start; ``reason`` the reason code ("" when none was reported).
    """

    start: float
    end: float
    category: Category
    kind: StopKind
    code: str
    reason: str
    planned_s: float
    open: bool

    @property
    def duration_s(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Losses:
    """The big losses in seconds of planned production time.

    ``breakdowns + setup_adjustments + small_stops + reduced_speed + quality``
    plus the fully productive time (ideal cycle time x good count) equals the
    planned production time. ``reduced_speed`` is negative when the machine ran
    faster than its ideal cycle time.
    """

    breakdowns: float
    setup_adjustments: float
    small_stops: float
    reduced_speed: float
    quality: float

    def as_dict(self) -> dict[str, float]:
        return {
            "breakdowns": self.breakdowns,
            "setup_adjustments": self.setup_adjustments,
            "small_stops": self.small_stops,
            "reduced_speed": self.reduced_speed,
            "quality": self.quality,
        }


def _iso(ts: float, tz: tzinfo) -> str:
    return datetime.fromtimestamp(ts, tz).isoformat()


@dataclass(frozen=True, slots=True)
class OeeResult:
    """OEE of one device over ``[window_from, window_to)`` (see docs/oee.md for each definition)."""

    device: str
    window_from: float
    window_to: float
    planned_time_s: float
    run_time_s: float
    downtime_s: float
    changeover_s: float
    small_stops_s: float
    planned_stop_s: float
    excluded_s: float
    no_data_s: float
    off_calendar_s: float
    availability: float
    performance: float
    performance_raw: float
    quality: float
    oee: float
    nothing_produced: bool
    total_count: int
    good_count: int
    scrap_count: int
    losses: Losses
    mtbf_s: float | None
    mttr_s: float | None
    breakdown_count: int
    small_stop_count: int
    changeover_count: int
    counter_resets: int
    counter_rollovers: int
    stops: tuple[Stop, ...] = ()
    unknown_codes: tuple[str, ...] = ()

    def as_dict(self, tz: tzinfo = UTC, detail: bool = False) -> dict[str, Any]:
        """The figures as JSON-ready values: the keys of ``edge-agent analyze oee``.

        Seconds are rounded to the millisecond and ratios to 1e-9; ``from``/``to``
        are ISO 8601 in ``tz``. ``detail`` adds the time split, counts and stops.
        """

        def sec(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        out: dict[str, Any] = {
            "device": self.device,
            "from": _iso(self.window_from, tz),
            "to": _iso(self.window_to, tz),
            "planned_time_s": sec(self.planned_time_s),
            "run_time_s": sec(self.run_time_s),
            "downtime_s": sec(self.downtime_s),
            "availability": round(self.availability, 9),
            "performance": round(self.performance, 9),
            "quality": round(self.quality, 9),
            "oee": round(self.oee, 9),
            "total_count": self.total_count,
            "good_count": self.good_count,
            "scrap_count": self.scrap_count,
            "losses_s": {k: sec(v) for k, v in self.losses.as_dict().items()},
            "mtbf_s": sec(self.mtbf_s),
            "mttr_s": sec(self.mttr_s),
            "performance_raw": round(self.performance_raw, 9),
            "nothing_produced": self.nothing_produced,
        }
        if detail:
            out.update({
                "changeover_s": sec(self.changeover_s),
                "small_stops_s": sec(self.small_stops_s),
                "planned_stop_s": sec(self.planned_stop_s),
                "excluded_s": sec(self.excluded_s),
                "no_data_s": sec(self.no_data_s),
                "off_calendar_s": sec(self.off_calendar_s),
                "breakdown_count": self.breakdown_count,
                "small_stop_count": self.small_stop_count,
                "changeover_count": self.changeover_count,
                "counter_resets": self.counter_resets,
                "counter_rollovers": self.counter_rollovers,
                "unknown_codes": list(self.unknown_codes),
                "stops": [
                    {
                        "start": _iso(s.start, tz), "end": _iso(s.end, tz), "duration_s": sec(s.duration_s),
                        "category": s.category, "kind": s.kind, "code": s.code, "reason": s.reason,
                        "planned_s": sec(s.planned_s), "open": s.open,
                    }
                    for s in self.stops
                ],
            })
        return out
