"""OEE rollups: one ``oee_rollup`` event per device for every complete hour, shift and day.

The figures are those of ``edge-agent analyze oee`` over the period (:meth:`LiveOee.result`,
rounded as :meth:`OeeResult.as_dict` rounds them). Pure: :meth:`OeeRollups.tick` takes ``now``.

* Hours start on the hour and days at midnight of the calendar's time zone; shifts are the
  calendar's shift occurrences (none with the 24/7 default calendar).
* A period is rolled up once, at the first tick after it ended, and only if the engine has
  data from before its end and still keeps its start (``history_from``); a period the engine
  saw only part of is rolled up with the rest as ``no_data_s``.
* The event's ``ts`` is the period end and its id is derived from (kind, device, period)
  (:func:`edge_agent.behaviour.rollup.profile_id`): a rollup computed again is the same event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from edge_agent.behaviour import kinds as k
from edge_agent.behaviour.periods import Period, PeriodKind, periods, shift_periods
from edge_agent.behaviour.rollup import profile_id
from edge_agent.model import Event
from edge_agent.oee.calendar import ALWAYS, Calendar
from edge_agent.oee.live import LiveOee
from edge_agent.oee.model import OeeError, OeeResult

__all__ = ["OeeRollups", "Place", "rollup_attributes"]

_LOOK_BACK_S = {"hour": 3600.0, "day": 26 * 3600.0}


@dataclass(frozen=True, slots=True)
class Place:
    """Where a machine stands, copied into its rollups (empty: left out)."""

    site: str = ""
    area: str = ""
    line: str = ""


def _sec(value: float) -> float:
    return max(0.0, round(value, 3))


def _ratio(value: float) -> float:
    return max(0.0, round(value, 9))


def rollup_attributes(result: OeeResult, period: Period, place: Place | None = None) -> dict[str, object]:
    """The attributes of an ``oee_rollup`` event (``docs/events.md``) from the result over ``period``."""
    place = place or Place()
    losses = result.losses
    out: dict[str, object] = {
        "period": period.kind,
        "period_start": period.start,
        "period_end": period.end,
    }
    if period.shift is not None:
        out["shift"] = period.shift
    for name in ("site", "area", "line"):
        value = getattr(place, name)
        if value:
            out[name] = value
    out.update({
        "planned_time_s": _sec(result.planned_time_s),
        "run_time_s": _sec(result.run_time_s),
        "downtime_s": _sec(result.downtime_s),
        "changeover_s": _sec(result.changeover_s),
        "small_stops_s": _sec(result.small_stops_s),
        "no_data_s": _sec(result.no_data_s),
        "availability": _ratio(result.availability),
        "performance": _ratio(result.performance),
        "performance_raw": _ratio(result.performance_raw),
        "quality": _ratio(result.quality),
        "oee": _ratio(result.oee),
        "nothing_produced": result.nothing_produced,
        "total_count": result.total_count,
        "good_count": result.good_count,
        "scrap_count": result.scrap_count,
        "losses_s": {
            "breakdowns": _sec(losses.breakdowns),
            "setup_adjustments": _sec(losses.setup_adjustments),
            "small_stops": _sec(losses.small_stops),
            "reduced_speed": round(losses.reduced_speed, 3),
            "quality": _sec(losses.quality),
        },
        "mtbf_s": None if result.mtbf_s is None else _sec(result.mtbf_s),
        "mttr_s": None if result.mttr_s is None else _sec(result.mttr_s),
        "breakdown_count": result.breakdown_count,
        "small_stop_count": result.small_stop_count,
    })
    return out


class OeeRollups:
    """Which periods are rolled up, and the rollup events of the live engines.

    ``kinds``: the periods to roll up (``hour``, ``shift``, ``day``); periods that ended at or
    before ``since`` are never rolled up (the agent passes its start).
    """

    def __init__(self, kinds: Iterable[PeriodKind], calendar: Calendar | None, since: float) -> None:
        self.kinds: tuple[PeriodKind, ...] = tuple(dict.fromkeys(kinds))
        self.calendar = calendar or ALWAYS
        self._done: dict[PeriodKind, float] = dict.fromkeys(self.kinds, since)
        self.skipped = 0

    def due(self, now: float) -> list[Period]:
        """The periods that ended after the last call (or ``since``) and by ``now``, in end order."""
        out: list[Period] = []
        for kind in self.kinds:
            done = self._done[kind]
            if now <= done:
                continue
            if kind == "shift":
                found = shift_periods(self.calendar.shifts(done, now))
            else:
                found = periods(kind, done - _LOOK_BACK_S[kind], now, self.calendar.tz)
            out += [p for p in found if done < p.end <= now]
            self._done[kind] = now
        return sorted(out, key=lambda p: (p.end, p.start))

    def tick(
        self, now: float, engines: Mapping[str, LiveOee], places: Mapping[str, Place] | None = None
    ) -> list[Event]:
        """The rollup events of every device of ``engines`` for the periods :meth:`due` by ``now``."""
        due = self.due(now)
        out: list[Event] = []
        for period in due:
            for device in sorted(engines):
                event = rollup_event(engines[device], period, (places or {}).get(device))
                if event is None:
                    self.skipped += 1
                else:
                    out.append(event)
        return out


def rollup_event(engine: LiveOee, period: Period, place: Place | None = None) -> Event | None:
    """The ``oee_rollup`` event of ``engine``'s device over ``period``; None without data for it."""
    if engine.first_ts >= period.end or period.start < engine.history_from:
        return None
    try:
        result = engine.result(period.start, period.end)
    except OeeError:
        return None
    return Event(
        engine.device,
        k.OEE_ROLLUP,
        rollup_attributes(result, period, place),
        period.end,
        profile_id(k.OEE_ROLLUP, engine.device, period),
    )
