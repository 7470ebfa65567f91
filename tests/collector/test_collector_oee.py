"""Fleet OEE from hand-built ``oee_rollup`` events, with the expected figures written out (both backends).

The plant, one hour (H1 = T0 .. T0+1h) and the next (H2):

=========== ============ ===== ======= ====== ======== ========= ===== ==== ===== =========
device      line         hour  planned run    downtime changeover ideal total good  breakdowns
=========== ============ ===== ======= ====== ======== ========= ===== ==== ===== =========
gw1/cnc-1   s1/mach/L1   H1    3600    3000   600      0          10 s  270  260   1
gw1/cnc-1   s1/mach/L1   H2    3600    3600   0        0          10 s  300  300   0
gw2/press-1 s1/mach/L1   H1    3600    1800   1200     600        20 s  81   72    2
gw2/pack-1  s1/pack/L2   H1    3600    0      3600     0          --    0    0     1
=========== ============ ===== ======= ====== ======== ========= ===== ==== ===== =========
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from collector_testkit import ANY_KEY, BOUND_KEY, batch_dict, gz, headers

from cloud_sync.collector.oee_rollups import FleetOee, RollupFilter, TooManyRollups
from edge_agent.behaviour.attributes import OeeRollup

T0 = 1763798400.0  # 2025-11-22T08:00:00Z
H = 3600.0


def rollup(
    start: float,
    *,
    ict: float,
    run: float,
    downtime: float,
    total: int,
    good: int,
    breakdowns: int,
    changeover: float = 0.0,
    period: str = "hour",
    place: tuple[str, str, str] = ("s1", "machining", "L1"),
    cap: bool = False,
) -> dict[str, Any]:
    """The attributes the agent would send for one device and period (its own figures, as docs/oee.md defines)."""
    planned = 3600.0 if period == "hour" else 8 * 3600.0
    p_raw = ict * total / run if run else 0.0
    a = run / planned
    q = good / total if total else 1.0
    p = min(1.0, p_raw) if cap else p_raw
    attrs = {
        "period": period, "period_start": start, "period_end": start + planned,
        "site": place[0], "area": place[1], "line": place[2],
        "planned_time_s": planned, "run_time_s": run, "downtime_s": downtime, "changeover_s": changeover,
        "small_stops_s": 0.0, "availability": a, "performance": p, "performance_raw": p_raw, "quality": q,
        "oee": a * p * q, "nothing_produced": total == 0, "total_count": total, "good_count": good,
        "scrap_count": total - good,
        "losses_s": {"breakdowns": downtime, "setup_adjustments": changeover, "small_stops": 0.0,
                     "reduced_speed": run - ict * total, "quality": ict * (total - good)},
        "mtbf_s": run / breakdowns if breakdowns else None, "mttr_s": downtime / breakdowns if breakdowns else None,
        "breakdown_count": breakdowns, "small_stop_count": 0,
    }
    OeeRollup.model_validate(attrs)  # as the catalogue defines the kind
    return attrs


CNC_H1 = rollup(T0, ict=10, run=3000, downtime=600, total=270, good=260, breakdowns=1)
CNC_H2 = rollup(T0 + H, ict=10, run=3600, downtime=0, total=300, good=300, breakdowns=0)
PRESS_H1 = rollup(T0, ict=20, run=1800, downtime=1200, changeover=600, total=81, good=72, breakdowns=2)
PACK_H1 = rollup(T0, ict=20, run=0, downtime=3600, total=0, good=0, breakdowns=1, place=("s1", "packing", "L2"))


def event(seq: int, device: str, attrs: dict[str, Any], kind: str = "oee_rollup") -> list[Any]:
    return [seq, f"oee-{seq}", attrs["period_end"] + 5 if "period_end" in attrs else T0, device, kind, attrs]


async def post(client: httpx.AsyncClient, gateway: str, rows: list[list[Any]]) -> None:
    body = batch_dict(gateway=gateway, stream="events", first=rows[0][0], last=rows[-1][0], rows=rows)
    r = await client.post("/api/v1/batches", content=gz(body), headers=headers())
    assert r.status_code == 200, r.text


@pytest.fixture
async def plant(client: httpx.AsyncClient) -> httpx.AsyncClient:
    wrong = {**CNC_H1, "good_count": 250, "scrap_count": 20, "quality": 250 / 270}  # corrected by seq 4
    shift = rollup(T0, ict=10, run=20000, downtime=8800, total=1800, good=1790, breakdowns=3, period="shift")
    await post(client, "gw1", [
        event(1, "cnc-1", wrong),
        event(2, "cnc-1", shift),  # another granularity
        event(3, "cnc-1", {"period": "hour", "oee": "high"}),  # not a valid rollup: skipped, counted
        event(4, "cnc-1", CNC_H1),  # the same period again: this one counts
        event(5, "cnc-1", CNC_H2),
        event(6, "cnc-1", {"state": "running"}, kind="state_changed"),
    ])
    await post(client, "gw2", [event(1, "press-1", PRESS_H1), event(2, "pack-1", PACK_H1)])
    return client


async def get_oee(client: httpx.AsyncClient, key: str = ANY_KEY, **params: Any) -> dict[str, Any]:
    r = await client.get("/api/v1/oee", params=params, headers={"x-api-key": key})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def ratios(figures: dict[str, Any]) -> tuple[float, ...]:
    return tuple(figures[k] for k in ("availability", "performance", "quality", "oee"))


async def test_per_device_and_period_figures_are_the_rollups(plant: httpx.AsyncClient) -> None:
    body = await get_oee(plant, device="cnc-1")
    assert (body["granularity"], body["group"], body["truncated"], body["skipped"]) == ("hour", None, False, 1)
    assert [(r["gateway_id"], r["device"], r["period_start"]) for r in body["rollups"]] == [
        ("gw1", "cnc-1", T0), ("gw1", "cnc-1", T0 + H)
    ]
    first = body["rollups"][0]
    assert first["good_count"] == 260 and first["scrap_count"] == 10  # the corrected report
    assert ratios(first) == pytest.approx((3000 / 3600, 0.9, 260 / 270, 10 * 260 / 3600), abs=1e-12)
    # cnc-1 over both hours: A = 6600/7200, P = (2700 + 3000)/6600, Q = 560/570, OEE = 10 x 560 / 7200
    assert ratios(body["total"]) == (0.916666667, 0.863636364, 0.98245614, 0.777777778)


async def test_window_total_recomputes_from_sums_never_averages(plant: httpx.AsyncClient) -> None:
    body = await get_oee(plant)
    total = body["total"]
    assert (total["periods"], total["devices"]) == (4, 3)
    assert {k: total[k] for k in ("planned_time_s", "run_time_s", "downtime_s", "changeover_s", "ideal_time_s")} == {
        "planned_time_s": 14400.0, "run_time_s": 8400.0, "downtime_s": 5400.0, "changeover_s": 600.0,
        "ideal_time_s": 7320.0,  # 0.9 x 3000 + (10/12) x 3600 + 0.9 x 1800 + 0
    }
    assert (total["total_count"], total["good_count"], total["scrap_count"]) == (651, 632, 19)
    # A = 8400/14400, P = 7320/8400, Q = 632/651, OEE = 7320 x 632 / (14400 x 651); the mean of the
    # four OEEs would be 0.488889
    assert ratios(total) == (0.583333333, 0.871428571, 0.970814132, 0.493497184)
    assert total["performance_raw"] == total["performance"]
    assert total["losses_s"] == {
        "breakdowns": 5400.0, "setup_adjustments": 600.0, "small_stops": 0.0, "reduced_speed": 1080.0, "quality": 280.0,
    }
    assert (total["breakdown_count"], total["mtbf_s"], total["mttr_s"]) == (4, 2100.0, 1350.0)
    assert total["nothing_produced"] is False


async def test_group_by_line_and_filters(plant: httpx.AsyncClient) -> None:
    body = await get_oee(plant, group="line")
    lines = {g["line"]: g for g in body["groups"]}
    assert [(g["site"], g["area"], g["line"]) for g in body["groups"]] == [
        ("s1", "machining", "L1"), ("s1", "packing", "L2")
    ]
    # L1: A = 8400/10800, P = 7320/8400, Q = 632/651
    assert ratios(lines["L1"]) == (0.777777778, 0.871428571, 0.970814132, 0.657996245)
    assert ratios(lines["L2"]) == (0.0, 0.0, 1.0, 0.0)
    assert lines["L2"]["nothing_produced"] is True and lines["L2"]["mtbf_s"] == 0.0

    hour1 = await get_oee(plant, **{"from": "2025-11-22T08:00:00Z", "to": "2025-11-22T09:00:00Z"}, line="L1")
    assert [(r["device"], r["period_start"]) for r in hour1["rollups"]] == [("cnc-1", T0), ("press-1", T0)]
    # H1 of L1: run 4800 of 7200, ideal 2700 + 1620, good 332 of 351
    assert ratios(hour1["total"]) == (0.666666667, 0.9, 0.945868946, 0.567521368)

    shifts = await get_oee(plant, granularity="shift", group="device")
    assert [(g["gateway_id"], g["device"], g["periods"]) for g in shifts["groups"]] == [("gw1", "cnc-1", 1)]
    assert (await get_oee(plant, site="elsewhere"))["total"]["periods"] == 0

    only_gw1 = await get_oee(plant, key=BOUND_KEY)
    assert {r["gateway_id"] for r in only_gw1["rollups"]} == {"gw1"}
    r = await plant.get("/api/v1/oee", params={"gateway": "gw2"}, headers={"x-api-key": BOUND_KEY})
    assert r.status_code == 403
    r = await plant.get("/api/v1/oee", params={"granularity": "week"}, headers={"x-api-key": ANY_KEY})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "granularity"
    assert (await plant.get("/api/v1/oee")).status_code == 401


async def test_limit_truncates_the_listing_not_the_totals(plant: httpx.AsyncClient) -> None:
    body = await get_oee(plant, limit=1)
    assert len(body["rollups"]) == 1 and body["truncated"] is True
    assert body["total"]["periods"] == 4


def test_capped_performance_stays_capped_and_the_rollup_count_is_bounded() -> None:
    fast = rollup(T0, ict=10, run=3000, downtime=600, total=330, good=330, breakdowns=1, cap=True)  # P raw 1.1
    fleet = FleetOee(RollupFilter(), max_rollups=2)
    fleet.add({"gateway_id": "gw1", "device": "a", "attributes": fast})
    fleet.add({"gateway_id": "gw1", "device": "b", "attributes": CNC_H2})
    total = fleet.result()["total"]
    # ideal 3300 + 3000 over run 6600: raw 0.954545; a capped input keeps the cap at 1 (not reached here)
    assert (total["performance_raw"], total["performance"]) == (0.954545455, 0.954545455)
    fleet.add({"gateway_id": "gw1", "device": "a", "attributes": {**fast, "run_time_s": 2500.0}})
    total = fleet.result()["total"]  # ideal (1.1 x 2500 = 2750) + 3000 over 6100: raw 0.942623
    assert total["periods"] == 2 and total["run_time_s"] == 6100.0
    over = rollup(T0 + H, ict=12, run=3000, downtime=600, total=300, good=300, breakdowns=1, cap=True)  # raw 1.2
    fleet = FleetOee(RollupFilter(), max_rollups=2)
    fleet.add({"gateway_id": "gw1", "device": "a", "attributes": over})
    assert (fleet.result()["total"]["performance_raw"], fleet.result()["total"]["performance"]) == (1.2, 1.0)
    fleet.add({"gateway_id": "gw1", "device": "b", "attributes": over})
    with pytest.raises(TooManyRollups):
        fleet.add({"gateway_id": "gw1", "device": "c", "attributes": over})
