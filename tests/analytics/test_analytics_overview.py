"""Overview: the fleet at a glance from a hand-built snapshot (figures written out); the SQL reader agrees."""

from __future__ import annotations

from typing import Any

import pytest
from analytics_testkit import T0, Db, ev, profile

from cloud_sync.analytics import FleetSnapshot, GatewayRecord, OverviewQuery, overview, sql_overview

NOW = T0 + 7200
GATEWAYS = [
    GatewayRecord("gw1", NOW - 10, {"samples": 5, "events": 1}),
    GatewayRecord("gw2", NOW - 1000, {"samples": 100}),
]


def kpis(at: float, position: str, **fields: Any) -> Any:
    base = {
        "period": "hour",
        "period_start": T0 + at - 3600,
        "period_end": T0 + at,
        "position": position,
        "alarms": 0,
        "periods_10min": 6,
        "avg_per_10min": 0.0,
        "flood_share": 0.0,
        "peak_10min": 0,
        "top": [],
        "top10_share": 0.0,
        "chattering": [],
        "stale": [],
        "unacknowledged": 0,
        "time_to_ack": {"count": 0, "p50_s": None, "p90_s": None, "p99_s": None, "max_s": None},
    }
    return ev("alarm_kpis", at, device="_gateway", **{**base, **fields})


EVENTS = [
    ev("state_changed", 100, device="cnc-1", state="unplanned_stop"),
    ev("state_changed", 200, device="cnc-1", state="running"),
    ev("state_changed", 100, device="cnc-2", state="running"),
    ev("device_disconnected", 300, device="cnc-2", error="timeout"),
    ev("state_changed", 400, device="cnc-3", state="unplanned_stop"),
    ev("device_disconnected", 300, device="cnc-3", error="timeout"),  # reconnected since: the state counts
    ev("state_changed", 100, device="pack-1", gateway="gw2", state="running"),
    ev("state_changed", 100, device="_gateway", state="running"),  # not a device
    ev("state_changed", 9000, device="cnc-1", state="planned_stop"),  # after the window
    profile(
        3600,
        "cnc-1",
        run_s=3000,
        availability=3000 / 3600,
        performance=0.8,
        quality=0.9,
        good=90,
        scrap=10,
        reasons=[("jam", 2, 100.0), ("tool", 1, 500.0)],
        location=("A", "M", "L1"),
    ),
    profile(
        3600,
        "cnc-3",
        run_s=1800,
        availability=0.5,
        performance=0.5,
        quality=1.0,
        good=50,
        reasons=[("jam", 1, 50.0)],
        location=("A", "M", "L2"),
    ),
    profile(
        3600,
        "pack-1",
        "gw2",
        availability=1.0,
        performance=1.0,
        quality=0.95,
        good=190,
        scrap=10,
        location=("B", "P", "L3"),
    ),
    profile(3600, "pack-1", "gw2", period="day", availability=0.0),  # another period kind: ignored
    kpis(
        3600,
        "c1",
        alarms=30,
        flood_share=1 / 6,
        peak_10min=12,
        unacknowledged=3,
        chattering=["temp.hi"],
        top=[
            {"alarm_id": "press.lo", "count": 20, "share": 2 / 3},
            {"alarm_id": "temp.hi", "count": 10, "share": 1 / 3},
        ],
    ),
    kpis(
        3600,
        "c2",
        alarms=6,
        peak_10min=2,
        stale=["valve.stuck"],
        top=[{"alarm_id": "pump.trip", "count": 6, "share": 1.0}],
    ),
]

QUERY = OverviewQuery.model_validate({"from": T0, "to": T0 + 7200})


def test_overview() -> None:
    result = overview(FleetSnapshot(GATEWAYS, EVENTS), QUERY)
    assert (result.now, result.gateways_online, result.gateways_total, result.backlog_total) == (NOW, 1, 2, 106)
    assert [(g.gateway_id, g.online, g.backlog_total) for g in result.gateways] == [
        ("gw1", True, 6),
        ("gw2", False, 100),
    ]
    assert [(d.gateway_id, d.device, d.state, d.since) for d in result.devices] == [
        ("gw1", "cnc-1", "running", T0 + 200),
        ("gw1", "cnc-2", "disconnected", T0 + 300),
        ("gw1", "cnc-3", "unplanned_stop", T0 + 400),
        ("gw2", "pack-1", "gateway_offline", T0 + 100),
    ]
    assert result.devices_by_state == {"disconnected": 1, "gateway_offline": 1, "running": 1, "unplanned_stop": 1}
    fleet, site_a, site_b = result.oee[0], result.oee[1], result.oee[2]
    assert (fleet.level, fleet.devices, fleet.planned_s) == ("fleet", 3, 10800.0)
    assert fleet.availability == pytest.approx(8400 / 10800)
    assert fleet.performance == pytest.approx(6900 / 8400)
    assert fleet.quality == pytest.approx(330 / 350)
    assert fleet.oee == pytest.approx(8400 / 10800 * 6900 / 8400 * 330 / 350)
    assert [(g.level, g.site, g.area, g.line, g.devices) for g in result.oee[1:]] == [
        ("site", "A", None, None, 2),
        ("site", "B", None, None, 1),
        ("area", "A", "M", None, 2),
        ("area", "B", "P", None, 1),
        ("line", "A", "M", "L1", 1),
        ("line", "A", "M", "L2", 1),
        ("line", "B", "P", "L3", 1),
    ]
    assert site_a.availability == pytest.approx(4800 / 7200) and site_b.oee == pytest.approx(0.95)
    assert [(x.reason, x.count, x.duration_s, x.devices) for x in result.worst_losses] == [
        ("tool", 1, 500.0, 1),
        ("jam", 3, 150.0, 2),
    ]
    assert [x.share for x in result.worst_losses] == pytest.approx([500 / 650, 150 / 650])
    alarms = result.alarms
    assert (alarms.positions, alarms.alarms, alarms.peak_10min, alarms.unacknowledged) == (2, 36, 12, 3)
    assert alarms.avg_per_10min == pytest.approx(3.0)
    assert alarms.flood_share == pytest.approx(1 / 12)
    assert (alarms.chattering, alarms.stale) == (["temp.hi"], ["valve.stuck"])
    assert [(t.alarm_id, t.count) for t in alarms.top] == [("press.lo", 20), ("temp.hi", 10), ("pump.trip", 6)]


def test_overview_of_one_gateway_and_of_nothing() -> None:
    gw2 = overview(FleetSnapshot(GATEWAYS, EVENTS), QUERY.model_copy(update={"gateway": "gw2"}))
    assert [d.device for d in gw2.devices] == ["pack-1"] and gw2.gateways_total == 1
    empty = overview(FleetSnapshot([], []), QUERY)
    assert (empty.gateways_total, empty.devices, empty.oee, empty.worst_losses) == (0, [], [], [])
    assert (empty.alarms.positions, empty.alarms.avg_per_10min, empty.alarms.flood_share) == (0, None, None)


def test_sql_overview(db: Db) -> None:
    db.load(EVENTS)
    db.load_gateways(GATEWAYS)
    expected = overview(FleetSnapshot(GATEWAYS, EVENTS), QUERY)
    assert sql_overview(db.conn, db.dialect, QUERY) == expected
    later = QUERY.model_copy(update={"now": NOW + 5000, "gateway": "gw1"})
    assert sql_overview(db.conn, db.dialect, later) == overview(FleetSnapshot(GATEWAYS, EVENTS), later)
