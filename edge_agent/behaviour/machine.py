"""The behaviour profile of one machine over one period: reliability, stops, cycle times, energy, A/P/Q.

Inputs are the machine's events (any order; duplicates by id count once):

* ``state_changed`` give the time in each state; the state in force at the start of
  the period is that of the last change before it; before any change it is unknown
  (neither planned nor run time);
* ``stop_ended`` events that end in the period give the stops, classified by their
  whole duration: an ``unplanned_stop`` shorter than ``micro_stop_s`` is a
  **micro-stop**, a longer one a **failure**;
* ``part_count`` events in the period give good and scrap parts and cycle times.

Figures (``docs/events.md``, kind ``machine_profile``):

* ``run_s`` time running; ``planned_s`` known time minus planned stops and excluded time;
* ``mtbf_s = run_s / failures``, ``mttr_s`` = mean failure duration (``None`` without failures);
* ``micro_stops_per_h`` = micro-stops per running hour;
* ``stop_reasons``: Pareto of unplanned stops by reason, by duration (then count);
* cycle time p50/p90/p99 (linear interpolation) of ``cycle_time_s``;
* energy: positive differences of a cumulative kWh counter, a decrease being a reset;
* ``availability = run_s / planned_s``; ``performance = ideal_cycle_time_s * parts / run_s``
  (when the ideal cycle time is known); ``quality = good / (good + scrap)``.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from edge_agent.behaviour import attributes as a
from edge_agent.behaviour import kinds as k
from edge_agent.behaviour.periods import Period
from edge_agent.behaviour.stats import percentile, ratio
from edge_agent.model import Event

__all__ = ["EnergyReading", "MachineOptions", "energy_used", "machine_profile", "unique_events"]

EnergyReading = tuple[float, float]
"""``(ts, kWh)`` of a cumulative energy counter."""

_CATEGORIES = ("running", "unplanned_stop", "planned_stop", "changeover", "excluded")


@dataclass(frozen=True, slots=True)
class MachineOptions:
    """``micro_stop_s``: the micro-stop limit; ``ideal_cycle_time_s``: for performance;
    ``site``/``area``/``line``: the machine's location, copied into the profile."""

    micro_stop_s: float = 120.0
    ideal_cycle_time_s: float | None = None
    site: str | None = None
    area: str | None = None
    line: str | None = None


def unique_events(events: Iterable[Event]) -> list[Event]:
    """Events in ``(ts, id)`` order, each id once."""
    seen: set[str] = set()
    out = []
    for e in sorted(events, key=lambda e: (e.ts, e.id)):
        if e.id not in seen:
            seen.add(e.id)
            out.append(e)
    return out


def _state_times(events: Sequence[Event], period: Period) -> dict[str, float]:
    times = dict.fromkeys(_CATEGORIES, 0.0)
    state: str | None = None
    since = period.start
    for e in events:
        if e.kind != k.STATE_CHANGED or e.ts >= period.end:
            continue
        new = e.attributes.get("state")
        if new not in times:
            continue
        at = max(e.ts, period.start)
        if state is not None:
            times[state] += at - since
        state, since = str(new), at
    if state is not None:
        times[state] += period.end - since
    return times


def energy_used(readings: Iterable[EnergyReading], period: Period) -> float | None:
    """kWh used in ``period``: the increases of the counter between readings, the later one in the period.

    A decrease is a counter reset: the new value counts as used since the reset.
    ``None`` without two readings to compare.
    """
    ordered = sorted(readings)
    used, compared = 0.0, False
    for (_, before), (ts, after) in itertools.pairwise(ordered):
        if ts in period:
            used += after - before if after >= before else after
            compared = True
    return used if compared else None


def _pareto(stops: Sequence[tuple[str, float]]) -> list[a.ParetoEntry]:
    by_reason: dict[str, list[float]] = defaultdict(list)
    for reason, duration in stops:
        by_reason[reason].append(duration)
    total = sum(d for _, d in stops)
    rows = sorted(by_reason.items(), key=lambda item: (-sum(item[1]), -len(item[1]), item[0]))
    out, cumulative = [], 0.0
    for reason, durations in rows:
        duration = sum(durations)
        share = duration / total if total > 0 else 0.0
        cumulative += share
        out.append(
            a.ParetoEntry(
                reason=reason,
                count=len(durations),
                duration_s=duration,
                share=share,
                cumulative_share=min(cumulative, 1.0),
            )
        )
    return out


def machine_profile(
    events: Iterable[Event],
    period: Period,
    options: MachineOptions | None = None,
    energy: Iterable[EnergyReading] | None = None,
) -> a.MachineProfile:
    """The profile of one machine over ``period`` from its events (see the module docstring)."""
    opts = options or MachineOptions()
    ordered = unique_events(events)
    times = _state_times(ordered, period)
    run_s = times["running"]
    planned_s = sum(times.values()) - times["planned_stop"] - times["excluded"]

    failures: list[float] = []
    unplanned: list[tuple[str, float]] = []
    micro = 0
    cycles: list[float] = []
    good = scrap = 0
    for e in ordered:
        if e.ts not in period:
            continue
        attrs = e.attributes
        if e.kind == k.STOP_ENDED and attrs.get("category") == "unplanned_stop":
            duration = float(attrs.get("duration_s", 0.0))
            unplanned.append((str(attrs.get("reason", "")), duration))
            if duration < opts.micro_stop_s:
                micro += 1
            else:
                failures.append(duration)
        elif e.kind == k.PART_COUNT:
            good += int(attrs.get("good", 0))
            scrap += int(attrs.get("scrap", 0))
            cycle = attrs.get("cycle_time_s")
            if isinstance(cycle, int | float) and not isinstance(cycle, bool):
                cycles.append(float(cycle))
    cycles.sort()
    used = energy_used(energy, period) if energy is not None else None
    parts = good + scrap
    ideal = opts.ideal_cycle_time_s
    return a.MachineProfile(
        period=period.kind,
        period_start=period.start,
        period_end=period.end,
        shift=period.shift,
        site=opts.site,
        area=opts.area,
        line=opts.line,
        run_s=run_s,
        planned_s=planned_s,
        unplanned_stop_s=times["unplanned_stop"],
        failures=len(failures),
        micro_stops=micro,
        mtbf_s=run_s / len(failures) if failures else None,
        mttr_s=sum(failures) / len(failures) if failures else None,
        micro_stops_per_h=ratio(micro * 3600.0, run_s),
        stop_reasons=_pareto(unplanned),
        cycles=len(cycles),
        cycle_time_p50_s=percentile(cycles, 0.5),
        cycle_time_p90_s=percentile(cycles, 0.9),
        cycle_time_p99_s=percentile(cycles, 0.99),
        good=good,
        scrap=scrap,
        energy_kwh=used,
        energy_per_good_part_kwh=ratio(used, good) if used is not None else None,
        availability=ratio(run_s, planned_s),
        performance=ratio(ideal * parts, run_s) if ideal is not None else None,
        quality=ratio(good, parts),
    )
