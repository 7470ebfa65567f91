"""Alarm-management KPIs of one period per operator position (ISA-18.2, EEMUA 191).

An **alarm** (``alarm_id``: one condition of one tag of one device, as
``edge_agent.alarms`` names it) is raised again and again; each ``alarm_raised``
starts an **occurrence**, which ends when the condition goes (``alarm_returned``
before an acknowledgement, ``alarm_cleared`` after one). A transition belongs to
the occurrence named by its ``occurrence_id`` when it has one, else to the
alarm's latest occurrence. An occurrence belongs to the operator position named
by its ``alarm_raised`` (``"default"`` when none is named). Per position and
period:

* ``alarms``: occurrences raised in the period; ``avg_per_10min`` = alarms per
  10-minute interval, the intervals counted from the period start
  (``periods_10min`` of them, the last possibly shorter);
* ``flood_share``: share of those intervals with more than ``flood_threshold``
  (10) alarms; ``peak_10min``: the most alarms in one interval;
* ``top``: the 10 most frequent alarms with their counts and share of all
  alarms of the position; ``top10_share`` their total share;
* ``chattering``: alarms raised ``chatter_count`` (3) or more times within
  ``chatter_window_s`` (60 s) in the period;
* ``stale``: alarms with an occurrence still active (its condition not gone)
  at the period end that was raised more than ``stale_after_s`` (24 h) earlier --
  the events given must reach back that far;
* ``unacknowledged``: occurrences raised in the period without an
  acknowledgement by its end; ``time_to_ack``: distribution of the time from
  raise to first acknowledgement (inside the period) of the others, overall and
  per shift of the raise (``shift_of``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from edge_agent.behaviour import attributes as a
from edge_agent.behaviour import kinds as k
from edge_agent.behaviour.machine import unique_events
from edge_agent.behaviour.periods import Period
from edge_agent.behaviour.stats import percentile
from edge_agent.model import Event

__all__ = ["DEFAULT_POSITION", "AlarmOptions", "Occurrence", "alarm_kpis", "occurrences"]

DEFAULT_POSITION = "default"
INTERVAL_S = 600.0


@dataclass(frozen=True, slots=True)
class AlarmOptions:
    """Thresholds of the KPIs (defaults from ISA-18.2 and EEMUA 191)."""

    flood_threshold: int = 10
    chatter_count: int = 3
    chatter_window_s: float = 60.0
    stale_after_s: float = 86_400.0
    top: int = 10


_GONE = (k.ALARM_RETURNED, k.ALARM_CLEARED)


@dataclass(slots=True)
class Occurrence:
    """One raise of an alarm: raised, first acknowledged, condition gone (epoch seconds)."""

    occurrence_id: str
    alarm_id: str
    position: str
    raised: float
    acknowledged: float | None = None
    cleared: float | None = None


def occurrences(events: Iterable[Event]) -> list[Occurrence]:
    """Alarm occurrences from alarm events (any order, duplicates by id once), in raise order.

    Transitions before any raise of their alarm are ignored, as is a second raise with the same
    ``occurrence_id``.
    """
    by_id: dict[str, Occurrence] = {}
    latest: dict[str, Occurrence] = {}
    for e in unique_events(x for x in events if x.kind in k.ALARM_KINDS):
        attrs = e.attributes
        alarm_id, given = attrs.get("alarm_id"), attrs.get("occurrence_id")
        if not isinstance(alarm_id, str):
            continue
        if e.kind == k.ALARM_RAISED:
            key = given if isinstance(given, str) else f"{alarm_id}@{e.ts!r}"
            if key not in by_id:
                position = attrs.get("position")
                where = position if isinstance(position, str) and position else DEFAULT_POSITION
                by_id[key] = latest[alarm_id] = Occurrence(key, alarm_id, where, e.ts)
            continue
        occ = by_id.get(given) if isinstance(given, str) else latest.get(alarm_id)
        if occ is None or e.ts < occ.raised:
            continue
        if e.kind == k.ALARM_ACKNOWLEDGED and occ.acknowledged is None:
            occ.acknowledged = e.ts
        elif e.kind in _GONE and occ.cleared is None:
            occ.cleared = e.ts
    return sorted(by_id.values(), key=lambda o: (o.raised, o.occurrence_id))


def _distribution(values: list[float]) -> a.Distribution:
    values.sort()
    return a.Distribution(
        count=len(values),
        p50_s=percentile(values, 0.5),
        p90_s=percentile(values, 0.9),
        p99_s=percentile(values, 0.99),
        max_s=values[-1] if values else None,
    )


def _chattering(raises: Sequence[tuple[float, str]], opts: AlarmOptions) -> list[str]:
    by_point: dict[str, list[float]] = defaultdict(list)
    for ts, point in raises:
        by_point[point].append(ts)
    found = []
    n = opts.chatter_count
    for point, times in by_point.items():
        times.sort()
        if any(times[i + n - 1] - times[i] <= opts.chatter_window_s for i in range(len(times) - n + 1)):
            found.append(point)
    return sorted(found)


def alarm_kpis(
    events: Iterable[Event],
    period: Period,
    options: AlarmOptions | None = None,
    shift_of: Callable[[float], str | None] | None = None,
    positions: Iterable[str] = (),
) -> list[a.AlarmKpis]:
    """The KPIs of ``period``, one record per operator position, in position order.

    ``positions`` are reported even without alarms; ``shift_of`` names the shift of an
    instant (``None`` outside shifts) for ``time_to_ack_by_shift``.
    """
    opts = options or AlarmOptions()
    occs = occurrences(e for e in events if e.ts < period.end)
    intervals = max(1, math.ceil((period.end - period.start) / INTERVAL_S))
    by_position: dict[str, list[Occurrence]] = defaultdict(list)
    stale: dict[str, set[str]] = defaultdict(set)
    for occ in occs:
        if occ.raised in period:
            by_position[occ.position].append(occ)
        active = occ.cleared is None or occ.cleared >= period.end
        if active and period.end - occ.raised > opts.stale_after_s:
            stale[occ.position].add(occ.alarm_id)
    names = sorted(set(by_position) | set(stale) | set(positions))
    out = []
    for position in names:
        raised = by_position.get(position, [])
        bins = Counter(int((o.raised - period.start) // INTERVAL_S) for o in raised)
        points = Counter(o.alarm_id for o in raised)
        top = sorted(points.items(), key=lambda item: (-item[1], item[0]))[: opts.top]
        total = len(raised)
        acked: list[float] = []
        by_shift: dict[str, list[float]] = defaultdict(list)
        for o in raised:
            if o.acknowledged is None or o.acknowledged >= period.end:
                continue
            acked.append(o.acknowledged - o.raised)
            if shift_of is not None:
                by_shift[shift_of(o.raised) or "(none)"].append(o.acknowledged - o.raised)
        out.append(
            a.AlarmKpis(
                period=period.kind,
                period_start=period.start,
                period_end=period.end,
                shift=period.shift,
                position=position,
                alarms=total,
                periods_10min=intervals,
                avg_per_10min=total / intervals,
                flood_share=sum(1 for c in bins.values() if c > opts.flood_threshold) / intervals,
                peak_10min=max(bins.values(), default=0),
                top=[a.AlarmCount(alarm_id=p, count=c, share=c / total) for p, c in top],
                top10_share=sum(c for _, c in top) / total if total else 0.0,
                chattering=_chattering([(o.raised, o.alarm_id) for o in raised], opts),
                stale=sorted(stale.get(position, set())),
                unacknowledged=total - len(acked),
                time_to_ack=_distribution(acked),
                time_to_ack_by_shift={name: _distribution(v) for name, v in sorted(by_shift.items())},
            )
        )
    return out
