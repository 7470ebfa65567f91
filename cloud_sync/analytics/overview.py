"""Overview: the fleet at a glance, from what the collector knows, whatever stores it.

Input (:class:`FleetSnapshot`): the gateways (last seen, backlog they reported)
and the events of the window that matter here -- device states
(``state_changed``, ``device_connected``, ``device_disconnected``), rolled-up
``machine_profile`` and ``alarm_kpis`` events. Output:

* **gateways** online when seen within ``online_within_s`` of ``now``; the sync
  backlog per gateway and in total;
* **devices by state**: a device's state is set by its latest state or
  connection event: ``device_disconnected`` gives ``disconnected``, otherwise the
  last ``state_changed`` state (``unknown`` without one); devices of a gateway
  that is offline are ``gateway_offline``;
* **OEE** for the fleet, each site, area and line (profiles of one period kind,
  added up as in :mod:`cloud_sync.analytics.profiles`);
* **worst losses**: unplanned stop reasons across the fleet by total duration (top 10);
* **alarm KPIs** across operator positions: alarms per 10 min and position,
  share of 10-min intervals in flood, peak, unacknowledged, chattering and stale
  alarm points, the most frequent alarm points.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cloud_sync.analytics.api_models import (
    AlarmCountEntry,
    AlarmOverview,
    DeviceStatus,
    GatewayStatus,
    LossEntry,
    OeeGroup,
    OverviewQuery,
    OverviewResponse,
)
from cloud_sync.analytics.profiles import ProfileTotals, by_device, unique_profiles
from cloud_sync.analytics.records import StoredEvent
from edge_agent.behaviour import kinds as k

__all__ = ["STATE_KINDS", "FleetSnapshot", "GatewayRecord", "overview"]

STATE_KINDS = (k.STATE_CHANGED, k.DEVICE_CONNECTED, k.DEVICE_DISCONNECTED)
TOP = 10


@dataclass(frozen=True, slots=True)
class GatewayRecord:
    """A gateway as the collector knows it: when it was last seen and the backlog it reported."""

    gateway_id: str
    last_seen: float
    backlog: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FleetSnapshot:
    """What :func:`overview` needs: the gateways, and the state, profile and alarm KPI events of the window."""

    gateways: Sequence[GatewayRecord]
    events: Sequence[StoredEvent]


def _latest_states(events: Iterable[StoredEvent]) -> dict[tuple[str, str], tuple[str, float]]:
    latest_state: dict[tuple[str, str], StoredEvent] = {}
    latest_link: dict[tuple[str, str], StoredEvent] = {}
    for e in sorted(events, key=lambda e: (e.ts, e.seq, e.event_id)):
        key = (e.gateway_id, e.device)
        if e.kind == k.STATE_CHANGED and isinstance(e.attributes.get("state"), str):
            latest_state[key] = e
        elif e.kind in (k.DEVICE_CONNECTED, k.DEVICE_DISCONNECTED):
            latest_link[key] = e
    out = {}
    for key in set(latest_state) | set(latest_link):
        link, state = latest_link.get(key), latest_state.get(key)
        if link is not None and link.kind == k.DEVICE_DISCONNECTED and (state is None or link.ts >= state.ts):
            out[key] = ("disconnected", link.ts)
        elif state is not None:
            out[key] = (str(state.attributes["state"]), state.ts)
        else:
            out[key] = ("unknown", link.ts if link is not None else 0.0)
    return out


def _group(level: str, key: tuple[str | None, ...], members: list[ProfileTotals]) -> OeeGroup:
    total = ProfileTotals()
    for m in members:
        total.merge(m)
    site, area, line = (*key, None, None, None)[:3]
    return OeeGroup(
        level=level,  # type: ignore[arg-type]
        site=site,
        area=area,
        line=line,
        devices=len(members),
        planned_s=total.planned_s,
        availability=total.availability,
        performance=total.performance,
        quality=total.quality,
        oee=total.oee,
    )


def _oee(totals: Mapping[tuple[str, str], ProfileTotals]) -> list[OeeGroup]:
    if not totals:
        return []
    groups: dict[tuple[str, tuple[str | None, ...]], list[ProfileTotals]] = defaultdict(list)
    for t in totals.values():
        groups["site", (t.site,)].append(t)
        groups["area", (t.site, t.area)].append(t)
        groups["line", (t.site, t.area, t.line)].append(t)
    order = {"site": 1, "area": 2, "line": 3}
    keys = sorted(groups, key=lambda g: (order[g[0]], [(v is None, v or "") for v in g[1]]))
    return [_group("fleet", (), list(totals.values()))] + [
        _group(level, key, groups[level, key]) for level, key in keys
    ]


def _losses(profiles: Sequence[StoredEvent]) -> list[LossEntry]:
    count: dict[str, int] = defaultdict(int)
    duration: dict[str, float] = defaultdict(float)
    devices: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for e in profiles:
        for entry in e.attributes.get("stop_reasons") or []:
            if not isinstance(entry, dict):
                continue
            reason = str(entry.get("reason", ""))
            count[reason] += int(entry.get("count", 0))
            duration[reason] += float(entry.get("duration_s", 0.0))
            devices[reason].add((e.gateway_id, e.device))
    total = sum(duration.values())
    ranked = sorted(duration, key=lambda r: (-duration[r], -count[r], r))[:TOP]
    return [
        LossEntry(
            reason=r,
            count=count[r],
            duration_s=duration[r],
            share=duration[r] / total if total > 0 else 0.0,
            devices=len(devices[r]),
        )
        for r in ranked
    ]


def _alarms(records: Sequence[StoredEvent]) -> AlarmOverview:
    per_position: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    flood = intervals = 0.0
    peak = unacked = total = 0
    chattering: set[str] = set()
    stale: set[str] = set()
    points: dict[str, int] = defaultdict(int)
    for e in records:
        a: Mapping[str, Any] = e.attributes
        position = f"{e.gateway_id}/{a.get('position', '')}"
        alarms, periods = int(a.get("alarms", 0)), int(a.get("periods_10min", 0))
        per_position[position][0] += alarms
        per_position[position][1] += periods
        flood += round(float(a.get("flood_share", 0.0)) * periods)
        intervals += periods
        peak = max(peak, int(a.get("peak_10min", 0)))
        unacked += int(a.get("unacknowledged", 0))
        total += alarms
        chattering.update(str(x) for x in a.get("chattering") or [])
        stale.update(str(x) for x in a.get("stale") or [])
        for entry in a.get("top") or []:
            if isinstance(entry, dict):
                points[str(entry.get("alarm_id"))] += int(entry.get("count", 0))
    rates = [n / p for n, p in per_position.values() if p > 0]
    top = sorted(points.items(), key=lambda item: (-item[1], item[0]))[:TOP]
    return AlarmOverview(
        positions=len(per_position),
        alarms=total,
        avg_per_10min=sum(rates) / len(rates) if rates else None,
        flood_share=flood / intervals if intervals > 0 else None,
        peak_10min=peak,
        unacknowledged=unacked,
        chattering=sorted(chattering),
        stale=sorted(stale),
        top=[AlarmCountEntry(alarm_id=p, count=c, share=c / total if total else 0.0) for p, c in top],
    )


def overview(snapshot: FleetSnapshot, query: OverviewQuery) -> OverviewResponse:
    """The fleet overview of ``query``'s window (see the module docstring)."""
    now = query.now if query.now is not None else query.end
    events = [
        e
        for e in snapshot.events
        if query.start <= e.ts < query.end and (query.gateway is None or e.gateway_id == query.gateway)
    ]
    gateways = [
        GatewayStatus(
            gateway_id=g.gateway_id,
            online=now - g.last_seen <= query.online_within_s,
            last_seen=g.last_seen,
            backlog=dict(g.backlog),
            backlog_total=sum(g.backlog.values()),
        )
        for g in sorted(snapshot.gateways, key=lambda g: g.gateway_id)
        if query.gateway is None or g.gateway_id == query.gateway
    ]
    offline = {g.gateway_id for g in gateways if not g.online}
    totals = by_device(events, query.period)
    states = _latest_states(e for e in events if e.kind in STATE_KINDS)
    devices = []
    for key in sorted(key for key in set(states) | set(totals) if key[1] != k.GATEWAY_DEVICE):
        state, since = states.get(key, ("unknown", None))
        if key[0] in offline:
            state = "gateway_offline"
        t = totals.get(key)
        devices.append(
            DeviceStatus(
                gateway_id=key[0],
                device=key[1],
                state=state,
                since=since,
                site=t.site if t else None,
                area=t.area if t else None,
                line=t.line if t else None,
            )
        )
    by_state: dict[str, int] = defaultdict(int)
    for d in devices:
        by_state[d.state] += 1
    return OverviewResponse(
        start=query.start,
        end=query.end,
        now=now,
        gateways_online=sum(1 for g in gateways if g.online),
        gateways_total=len(gateways),
        gateways=gateways,
        backlog_total=sum(g.backlog_total for g in gateways),
        devices_by_state=dict(sorted(by_state.items())),
        devices=devices,
        oee=_oee(totals),
        worst_losses=_losses(unique_profiles(events, query.period)),
        alarms=_alarms(unique_profiles(events, query.period, k.ALARM_KPIS)),
    )
