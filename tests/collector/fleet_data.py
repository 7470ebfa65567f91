"""A small hand-built fleet for the fleet page: three gateways, seven machines, parts, alarms, operators.

``fleet(end)`` gives the events of the three days before ``end``: what each
gateway syncs in its event stream (states, stops, hourly machine profiles and
alarm KPIs, alarm transitions, logins) and what an MES posts (part flow). Every
event fits the catalogue (checked with :func:`validate_attributes`).

The behaviour is chosen so that every part of the page has something to show:
``cnc-2`` has long breakdowns, the packaging machines many short stops, the
presses lose quality; ``plant-b-gw1`` stopped syncing (offline); parts skip a
step, fail inspection, arrive twice or out of order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from edge_agent.behaviour.kinds import validate_attributes

DAY = 86400.0
HOUR = 3600.0


@dataclass(frozen=True)
class Machine:
    gateway: str
    name: str
    site: str
    area: str
    line: str
    commissioned_day: int
    """Day of the window (0, 1, 2) the machine first connected."""
    mtbf_h: float
    mttr_min: float
    micro_per_h: float
    performance: float
    quality: float
    state: str


MACHINES = (
    Machine("plant-a-gw1", "cnc-1", "plant-a", "machining", "cell-1", 2, 6.0, 8.0, 0.5, 0.93, 0.99, "running"),
    Machine("plant-a-gw1", "cnc-2", "plant-a", "machining", "cell-1", 2, 2.0, 45.0, 0.5, 0.90, 0.98, "unplanned_stop"),
    Machine("plant-a-gw1", "cnc-3", "plant-a", "machining", "cell-2", 1, 5.0, 10.0, 1.0, 0.92, 0.99, "running"),
    Machine("plant-a-gw2", "pack-1", "plant-a", "packaging", "line-1", 2, 4.0, 6.0, 9.0, 0.80, 0.99, "running"),
    Machine("plant-a-gw2", "pack-2", "plant-a", "packaging", "line-1", 1, 4.0, 5.0, 10.0, 0.78, 0.985, "planned_stop"),
    Machine("plant-b-gw1", "press-1", "plant-b", "forming", "line-3", 0, 5.0, 12.0, 1.0, 0.91, 0.90, "running"),
    Machine("plant-b-gw1", "press-2", "plant-b", "forming", "line-3", 0, 5.0, 12.0, 1.5, 0.90, 0.88, "running"),
)
GATEWAYS = ("plant-a-gw1", "plant-a-gw2", "plant-b-gw1")
OFFLINE = "plant-b-gw1"
DISCONNECTED = ("plant-b-gw1", "press-2")
MES = "mes"
OPERATORS = {"plant-a-gw1": ("anna", "ben"), "plant-a-gw2": ("chen",), "plant-b-gw1": ("dora",)}
PROFILE_HOURS = 6
"""Hourly machine profiles and alarm KPIs per machine, the last hours of the window."""


@dataclass
class Fleet:
    start: float
    end: float
    gateway_events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Per gateway: ``{"id", "ts", "device", "kind", "attributes"}`` in time order."""
    mes_events: list[dict[str, Any]] = field(default_factory=list)
    """Envelopes for ``POST /api/v1/events/batch``, in the order the MES posts them (not time order)."""


def _profile(m: Machine, start: float, hour: int) -> dict[str, Any]:
    planned = HOUR
    failures = 1 if hour % max(1, round(m.mtbf_h)) == 0 else 0
    down = min(failures * m.mttr_min * 60.0, planned * 0.8)
    micro = round(m.micro_per_h)
    run = planned - down - micro * 40.0
    ideal = 30.0
    cycles = int(run / ideal * m.performance)
    scrap = round(cycles * (1 - m.quality))
    good = cycles - scrap
    reasons = []
    if failures:
        reason = "spindle fault" if m.area == "machining" else "film break" if m.area == "packaging" else "die jam"
        reasons.append({"reason": reason, "count": failures, "duration_s": down, "share": 1.0, "cumulative_share": 1.0})
    return {
        "period": "hour", "period_start": start, "period_end": start + HOUR,
        "site": m.site, "area": m.area, "line": m.line,
        "run_s": run, "planned_s": planned, "unplanned_stop_s": down, "failures": failures, "micro_stops": micro,
        "mtbf_s": run / failures if failures else None, "mttr_s": down / failures if failures else None,
        "micro_stops_per_h": micro * HOUR / run, "stop_reasons": reasons, "cycles": cycles,
        "cycle_time_p50_s": ideal / m.performance, "cycle_time_p90_s": ideal / m.performance * 1.2,
        "cycle_time_p99_s": ideal / m.performance * 1.6, "good": good, "scrap": scrap,
        "availability": run / planned, "performance": m.performance, "quality": good / cycles if cycles else None,
    }


def _alarm_kpis(position: str, start: float, alarms: int, unacked: int, top: list[tuple[str, int]]) -> dict[str, Any]:
    return {
        "period": "hour", "period_start": start, "period_end": start + HOUR, "position": position,
        "alarms": alarms, "periods_10min": 6, "avg_per_10min": alarms / 6, "flood_share": 1 / 6 if alarms > 10 else 0.0,
        "peak_10min": min(alarms, 11 if alarms > 10 else alarms), "top": [
            {"alarm_id": a, "count": c, "share": c / alarms} for a, c in top
        ], "top10_share": 1.0, "chattering": ["cnc-2/spindle_temp/hi"] if alarms > 10 else [], "stale": [],
        "unacknowledged": unacked,
        "time_to_ack": {"count": alarms - unacked, "p50_s": 60.0, "p90_s": 240.0, "p99_s": 400.0, "max_s": 420.0},
    }


def fleet(end: float) -> Fleet:
    """The fleet's events of ``[end - 3 days, end)`` (``end`` is rounded down to a whole minute).

    "Day ``d``" below is the 24 hours from ``end - 3 days + d days``.
    """
    end = math.floor(end / 60) * 60
    start = end - 3 * DAY

    def day(d: int) -> float:
        return start + d * DAY
    out = Fleet(start=start, end=end, gateway_events={g: [] for g in GATEWAYS})
    seq = {g: 0 for g in GATEWAYS}

    def add(gateway: str, ts: float, device: str, kind: str, **attributes: Any) -> None:
        assert start <= ts < end, (kind, ts)
        validate_attributes(kind, attributes)
        seq[gateway] += 1
        out.gateway_events[gateway].append(
            {"id": f"{gateway}-{seq[gateway]}", "ts": ts, "device": device, "kind": kind, "attributes": attributes}
        )

    first_profile = math.floor(end / HOUR) * HOUR - PROFILE_HOURS * HOUR
    for m in MACHINES:
        connected = day(m.commissioned_day) + HOUR + 600 * MACHINES.index(m)
        add(m.gateway, connected, m.name, "device_connected", previous="unknown")
        # unplanned stops ended, one per day for the troubled machines, on every day since commissioning
        for d in range(3):
            t = connected + d * DAY + 2 * HOUR
            if t < end - 60 and (m.mttr_min >= 30 or m.micro_per_h >= 9 or m.quality < 0.95 or d == 0):
                add(m.gateway, t, m.name, "stop_ended", started_at=t - m.mttr_min * 60, duration_s=m.mttr_min * 60,
                    category="unplanned_stop", reason="spindle fault" if m.area == "machining" else "jam")
        for h in range(PROFILE_HOURS):
            p0 = first_profile + h * HOUR
            add(m.gateway, p0 + HOUR, m.name, "machine_profile", **_profile(m, p0, h))
        add(m.gateway, end - 1800, m.name, "state_changed", state="running", previous="unplanned_stop")
        if m.state != "running":
            add(m.gateway, end - 600, m.name, "state_changed", state=m.state, previous="running")
    add(DISCONNECTED[0], end - 300, DISCONNECTED[1], "device_disconnected", error="connection refused")

    # alarms: raised -> acknowledged -> cleared, per occurrence, with operator logins
    occurrence = 0
    for gateway, users in OPERATORS.items():
        for i, user in enumerate(users):
            add(gateway, day(i) + 2 * HOUR, "gateway", "operator_login", user=user, role="operator")
            add(gateway, day(2) + 3 * HOUR + 600 * i, "gateway", "operator_login", user=user, role="operator")
    for m in MACHINES:
        alarm_id = f"{m.name}/{'spindle_temp' if m.area == 'machining' else 'motor_current'}/hi"
        count = 6 if m.name == "cnc-2" else 2
        for j in range(count):
            occurrence += 1
            raised = end - 5 * HOUR + j * 1500 + MACHINES.index(m) * 60
            base = {"alarm_id": alarm_id, "occurrence_id": f"occ-{occurrence}", "priority": "high", "position": "main"}
            add(m.gateway, raised, m.name, "alarm_raised", **base)
            user = OPERATORS[m.gateway][j % len(OPERATORS[m.gateway])]
            if j % 3 != 2:  # every third one is never acknowledged in the window
                add(m.gateway, raised + 60 + 90 * j, m.name, "alarm_acknowledged", user=user, **base)
                if j % 2 == 0:
                    add(m.gateway, raised + 900, m.name, "alarm_cleared", **base)
    for g in GATEWAYS:
        for h in range(PROFILE_HOURS):
            p0 = first_profile + h * HOUR
            busy = g == "plant-a-gw1" and h == PROFILE_HOURS - 2
            alarms = 14 if busy else 3 + h % 3
            top = [("cnc-2/spindle_temp/hi", alarms - 1), ("cnc-1/spindle_temp/hi", 1)] if g == "plant-a-gw1" else [
                (f"{g}/motor_current/hi", alarms)]
            add(g, p0 + HOUR, "gateway", "alarm_kpis", **_alarm_kpis("main", p0, alarms, 1 if busy else 0, top))
    for g in GATEWAYS:
        out.gateway_events[g].sort(key=lambda e: e["ts"])
        for i, e in enumerate(out.gateway_events[g], start=1):
            e["seq"] = i

    # the MES: parts through load -> machine -> inspect -> pack, orders of 8 parts
    n = 0

    def mes(ts: float, device: str, kind: str, **attributes: Any) -> dict[str, Any]:
        nonlocal n
        n += 1
        validate_attributes(kind, attributes)
        assert start <= ts < end, (kind, ts)
        return {"id": f"mes-{n:05d}", "ts": ts, "gateway": MES, "device": device, "kind": kind,
                "attributes": attributes}

    for p in range(36):
        d = p // 12
        t = day(d) + 2 * HOUR + (p % 12) * 900
        part, order = f"P-{p + 1:04d}", f"O-{d + 1:02d}{(p % 12) // 6 + 1}"
        cnc = MACHINES[p % 3].name
        flow = [mes(t, cnc, "part_loaded", part_id=part, order_id=order, station=cnc)]
        if p % 9 == 8:
            out.mes_events += flow  # loaded, then scrapped at the machine: never machined
            continue
        flow.append(mes(t + 300 + 20 * (p % 5), cnc, "part_machined", part_id=part, order_id=order, station=cnc,
                        cycle_time_s=290.0 + 20 * (p % 5)))
        if p % 7 == 3:  # skipped inspection: packed without it, so not counted as packed in order
            flow.append(mes(t + 1500, "pack-1", "part_packed", part_id=part, order_id=order, station="pack-1"))
        else:
            result = "nok" if p % 5 == 4 else "ok"
            flow.append(mes(t + 600 + 30 * (p % 4), "qs-1", "part_inspected", part_id=part, order_id=order,
                            station="qs-1", result=result, **({"defect": "bore oversize"} if result == "nok" else {})))
            if result == "ok" and p % 6 != 5:  # some good parts still wait for packing
                flow.append(mes(t + 1500, "pack-1", "part_packed", part_id=part, order_id=order, station="pack-1",
                                package_id=f"PK-{p // 4:03d}"))
        if p % 8 == 6:
            flow.reverse()  # posted out of order: the analytics go by time, not by arrival
        out.mes_events += flow
    out.mes_events += out.mes_events[3:6]  # re-sent: stored once
    return out
