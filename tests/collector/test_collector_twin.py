"""The latest twin per device, kept at ingest, and its endpoints (both backends)."""

from __future__ import annotations

from typing import Any

import httpx
from collector_testkit import ANY_KEY, BOUND_KEY, Backend, batch_dict, gz, headers

from cloud_sync.collector.twin import from_events, from_samples

T0 = 1763798400.0


async def post(client: httpx.AsyncClient, **kw: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/batches", content=gz(batch_dict(**kw)), headers=headers())
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def get(client: httpx.AsyncClient, path: str, key: str | None = ANY_KEY) -> httpx.Response:
    return await client.get(path, headers={"x-api-key": key} if key else {})


def twin_changed(seq: int, ts: float, device: str, changes: dict[str, Any]) -> list[Any]:
    return [seq, f"ev-{seq}", ts, device, "twin_changed", {"changes": changes}]


def rollup(period_start: float, oee: float) -> dict[str, Any]:
    return {
        "period": "hour", "period_start": period_start, "period_end": period_start + 3600, "planned_time_s": 3600.0,
        "run_time_s": 3600.0, "downtime_s": 0.0, "changeover_s": 0.0, "small_stops_s": 0.0, "availability": 1.0,
        "performance": oee, "performance_raw": oee, "quality": 1.0, "oee": oee, "nothing_produced": False,
        "total_count": 300, "good_count": 300, "scrap_count": 0,
        "losses_s": {"breakdowns": 0.0, "setup_adjustments": 0.0, "small_stops": 0.0, "reduced_speed": 0.0,
                     "quality": 0.0},
        "mtbf_s": None, "mttr_s": None, "breakdown_count": 0, "small_stop_count": 0,
    }


async def test_samples_keep_the_newest_value_per_tag_whatever_the_batch_order(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    # seq 1..4: temp at T0+10 and T0+5 (an older value later in the batch), rpm, and a string
    await post(client, first=1, last=4, rows=[
        [1, "cnc-1", "temp", T0 + 10, 41.5, 0],
        [2, "cnc-1", "temp", T0 + 5, 39.0, 0],
        [3, "cnc-1", "rpm", T0 + 7, 1200, 1],
        [4, "cnc-2", "mode", T0 + 3, "auto", 0],
    ])
    # a later batch with older values (a backlog sent out of order) must not replace them ...
    await post(client, first=5, last=6, rows=[[5, "cnc-1", "temp", T0 + 8, 99.0, 0], [6, "cnc-1", "rpm", T0, 1, 0]])
    # ... a newer one does; equal instants: the later batch wins
    newer = [[7, "cnc-1", "rpm", T0 + 20, 1500, 2], [8, "cnc-2", "mode", T0 + 3, "manual", 0]]
    await post(client, first=7, last=8, rows=newer)

    r = await get(client, "/api/v1/gateways/gw1/devices/cnc-1/twin")
    assert r.status_code == 200, r.text
    twin = r.json()
    assert twin["reported"] == {
        "temp": {"value": 41.5, "ts": T0 + 10, "quality": 0},
        "rpm": {"value": 1500, "ts": T0 + 20, "quality": 2},
    }
    assert (twin["gateway_id"], twin["device"], twin["last_seen"]) == ("gw1", "cnc-1", T0 + 20)
    assert (twin["state"], twin["connection"], twin["alarms_active"], twin["derived"]) == (None, None, None, {})
    r = await get(client, "/api/v1/gateways/gw1/devices/cnc-2/twin")
    assert r.json()["reported"] == {"mode": {"value": "manual", "ts": T0 + 3, "quality": 0}}
    assert backend.query("SELECT COUNT(*) FROM device_twin_tags")[0][0] == 3


async def test_events_set_state_connection_alarms_and_rollups(client: httpx.AsyncClient) -> None:
    rows = [
        [1, "e1", T0 + 1, "cnc-1", "device_connected", {"previous": "starting"}],
        [2, "e2", T0 + 2, "cnc-1", "state_changed", {"state": "running", "previous": "unknown", "code": "1"}],
        twin_changed(3, T0 + 3, "cnc-1", {
            "reported.temp": {"value": 40.0, "unit": "degC", "ts": T0 + 2.5, "quality": "uncertain", "rate": None,
                              "stale": False},
            "derived.alarms": [{"alarm_id": "a1"}, {"alarm_id": "a2"}],
            "derived.oee": {"availability": 0.9, "performance": 0.8, "quality": 1.0, "oee": 0.72},
        }),
        [4, "e4", T0 + 4, "cnc-1", "oee_rollup", rollup(T0 - 3600, 0.5)],
        [5, "e5", T0 + 5, "cnc-1", "oee_rollup", rollup(T0 - 7200, 0.4)],  # an older hour reported late
        [6, "e6", T0 + 6, "cnc-1", "device_disconnected", {"error": "timeout"}],
        [7, "e7", T0 + 7, "cnc-1", "alarm_raised", {"alarm_id": "a3"}],  # not a twin kind: changes nothing
        [8, "e8", T0 + 4.5, "cnc-1", "state_changed", {"state": "unplanned_stop", "previous": "running"}],
        [9, "e9", T0 + 9, "_gateway", "agent_started", {"devices": ["cnc-1"], "version": "1"}],
    ]
    await post(client, stream="events", first=1, last=9, rows=rows)
    twin = (await get(client, "/api/v1/gateways/gw1/devices/cnc-1/twin")).json()
    assert (twin["state"], twin["connection"], twin["alarms_active"]) == ("unplanned_stop", "disconnected", 2)
    assert twin["last_seen"] == T0 + 6
    assert twin["reported"] == {"temp": {"value": 40.0, "ts": T0 + 2.5, "quality": 1}}
    derived = twin["derived"]
    assert set(derived) == {"state", "connection", "alarms", "oee", "oee_rollup.hour"}
    assert derived["connection"] == {"value": {"state": "disconnected", "since": T0 + 6, "last_error": "timeout"},
                                     "ts": T0 + 6}
    assert derived["state"]["value"]["category"] == "unplanned_stop"
    assert derived["oee"]["value"]["oee"] == 0.72
    assert derived["oee_rollup.hour"]["ts"] == T0  # the newest period, not the last reported
    assert derived["oee_rollup.hour"]["value"]["oee"] == 0.5

    # a later batch with an older state (an out-of-order backlog) leaves the newer one
    await post(client, stream="events", first=10, last=11, rows=[
        [10, "e10", T0 + 3, "cnc-1", "state_changed", {"state": "planned_stop"}],
        [11, "e11", T0 + 30, "cnc-1", "device_connected", {"previous": "disconnected"}],
    ])
    twin = (await get(client, "/api/v1/gateways/gw1/devices/cnc-1/twin")).json()
    assert (twin["state"], twin["connection"], twin["last_seen"]) == ("unplanned_stop", "connected", T0 + 30)


async def test_devices_of_a_gateway(client: httpx.AsyncClient) -> None:
    await post(client, first=1, last=3, rows=[
        [1, "cnc-1", "temp", T0 + 1, 1.0, 0], [2, "cnc-1", "rpm", T0 + 2, 2, 0], [3, "press-4", "force", T0 + 9, 3, 0],
    ])
    await post(client, stream="events", first=1, last=1, rows=[
        [1, "e1", T0 + 5, "cnc-1", "state_changed", {"state": "running"}],
    ])
    await post(client, gateway="gw2", first=1, last=1, rows=[[1, "other", "x", T0, 1, 0]])
    r = await get(client, "/api/v1/gateways/gw1/devices")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["gateway_id"] == "gw1"
    devices = [{k: d[k] for k in ("device", "state", "connection", "tags", "last_seen")} for d in body["devices"]]
    assert devices == [
        {"device": "cnc-1", "state": "running", "connection": None, "tags": 2, "last_seen": T0 + 5},
        {"device": "press-4", "state": None, "connection": None, "tags": 1, "last_seen": T0 + 9},
    ]
    assert all(d["updated_at"] > T0 for d in body["devices"])


async def test_unknown_gateway_or_device_is_404_and_keys_are_scoped(client: httpx.AsyncClient) -> None:
    await post(client, first=1, last=1, rows=[[1, "cnc-1", "temp", T0, 1.0, 0]])
    await post(client, gateway="gw2", first=1, last=1, rows=[[1, "cnc-9", "temp", T0, 1.0, 0]])
    r = await get(client, "/api/v1/gateways/nope/devices/cnc-1/twin")
    assert (r.status_code, r.json()) == (404, {"detail": "unknown gateway 'nope'"})
    r = await get(client, "/api/v1/gateways/gw1/devices/cnc-9/twin")
    assert (r.status_code, r.json()) == (404, {"detail": "gateway 'gw1' has no device 'cnc-9'"})
    r = await get(client, "/api/v1/gateways/nope/devices")
    assert (r.status_code, r.json()) == (404, {"detail": "unknown gateway 'nope'"})
    assert (await get(client, "/api/v1/gateways/gw1/devices", key=None)).status_code == 401
    assert (await get(client, "/api/v1/gateways/gw1/devices/cnc-1/twin", key="wrong")).status_code == 401
    assert (await get(client, "/api/v1/gateways/gw1/devices/cnc-1/twin", key=BOUND_KEY)).status_code == 200
    r = await get(client, "/api/v1/gateways/gw2/devices/cnc-9/twin", key=BOUND_KEY)
    assert r.status_code == 403 and "gw1" in r.json()["detail"]
    assert (await get(client, "/api/v1/gateways/gw2/devices", key=BOUND_KEY)).status_code == 403


async def test_duplicate_batch_leaves_the_twin_alone(client: httpx.AsyncClient, backend: Backend) -> None:
    await post(client, first=1, last=1, rows=[[1, "cnc-1", "temp", T0, 1.0, 0]])
    before = backend.query("SELECT updated_at FROM device_twins")
    ack = await post(client, first=1, last=1, rows=[[1, "cnc-1", "temp", T0, 1.0, 0]])
    assert ack["duplicate_batch"] is True
    assert backend.query("SELECT updated_at FROM device_twins") == before


def test_reduction_in_python_keeps_one_row_per_key() -> None:
    rows: list[list[Any]] = [[i, f"d{i % 2}", f"t{i % 3}", T0 + (i * 7) % 10, float(i), 0] for i in range(1, 61)]
    update = from_samples(rows)
    assert len(update.tag_rows()) == 6
    for device, tag, ts, _value, _q in update.tag_rows():
        assert ts == max(float(r[3]) for r in rows if (r[1], r[2]) == (device, tag))
    assert update.seen == {"d0": T0 + 8, "d1": T0 + 9}  # even i: (7 i) mod 10 is even
    # attributes not shaped as the catalogue defines them change nothing (and do not fail the batch)
    odd = from_events([
        [1, "e", T0, "d", "twin_changed", {"changes": {"reported.x": {"value": {"nested": 1}}, "derived.state": 3}}],
        [2, "e", T0, "d", "oee_rollup", {"period": "hour"}],
        [3, "e", T0, "d", "state_changed", {"state": 7}],
    ])
    assert not odd.tags and list(odd.derived) == [("d", "state")]
