"""The read endpoints: gateways, samples, events; their parameters, limits and key scoping (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from collector_testkit import ANY_KEY, BOUND_KEY, batch_dict, gz, headers

from cloud_sync.collector.params import MAX_LIMIT, BadParameter, parse_time

T0 = 1763798400.0  # 2025-11-22T08:00:00Z; row n of the test kit has ts T0 + n


async def post(client: httpx.AsyncClient, **kw: Any) -> None:
    r = await client.post("/api/v1/batches", content=gz(batch_dict(**kw)), headers=headers())
    assert r.status_code == 200, r.text


async def get(client: httpx.AsyncClient, path: str, key: str | None = ANY_KEY, **params: Any) -> httpx.Response:
    return await client.get(path, params=params, headers={"x-api-key": key} if key else {})


def span(start: Any, end: Any) -> dict[str, Any]:
    """The ``from`` and ``to`` parameters (``from`` is a keyword in Python)."""
    return {"from": start, "to": end}


@pytest.fixture
async def loaded(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """gw1: samples 1..30 and events 1..4; gw2: samples 1..5 with a different device."""
    await post(client, gateway="gw1", first=1, last=30)
    await post(client, gateway="gw1", first=1, last=30)  # a duplicate batch
    await post(client, gateway="gw1", stream="events", first=1, last=4)
    rows = [[seq, "fan-9", "rpm", T0 + seq + 0.5, seq * 10, 0] for seq in range(1, 6)]
    await post(client, gateway="gw2", first=1, last=5, rows=rows)
    return client


async def test_gateways(loaded: httpx.AsyncClient) -> None:
    r = await get(loaded, "/api/v1/gateways")
    assert r.status_code == 200, r.text
    gateways = r.json()["gateways"]
    assert [g["gateway_id"] for g in gateways] == ["gw1", "gw2"]
    gw1 = gateways[0]
    assert gw1["backlog"] == {"samples": 5, "events": 0}
    assert gw1["last_batch"]["batch_id"] == "gw1:events:1:4"
    assert {k: gw1["last_batch"][k] for k in ("stream", "first_seq", "last_seq", "rows")} == {
        "stream": "events",
        "first_seq": 1,
        "last_seq": 4,
        "rows": 4,
    }
    assert (gw1["samples"], gw1["events"], gw1["batches"], gw1["duplicate_batches"]) == (30, 4, 2, 1)
    assert gw1["first_seen"] <= gw1["last_seen"] <= datetime.now(UTC).timestamp()


async def test_samples_filtered_and_ordered_by_time(loaded: httpx.AsyncClient) -> None:
    r = await get(loaded, "/api/v1/samples", device="pump-1", tag="t1", limit=100)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["limit"], body["truncated"]) == (100, False)
    seqs = [s["seq"] for s in body["samples"]]
    assert seqs == [n for n in range(1, 31) if n % 3 == 1]
    assert body["samples"][0] == {
        "gateway_id": "gw1",
        "seq": 1,
        "device": "pump-1",
        "tag": "t1",
        "ts": T0 + 1,
        "value": 7,
        "quality": 1,
    }
    both = (await get(loaded, "/api/v1/samples", **span(T0 + 3, T0 + 5))).json()["samples"]
    assert [(s["gateway_id"], s["seq"]) for s in both] == [("gw1", 3), ("gw2", 3), ("gw1", 4), ("gw2", 4)]


async def test_iso_times_and_epoch_seconds_are_the_same(loaded: httpx.AsyncClient) -> None:
    iso = await get(loaded, "/api/v1/samples", gateway="gw1", **span("2025-11-22T08:00:10Z", "2025-11-22T08:00:20"))
    epoch = await get(loaded, "/api/v1/samples", gateway="gw1", **span(str(T0 + 10), T0 + 20))
    assert iso.json() == epoch.json()
    assert [s["seq"] for s in iso.json()["samples"]] == list(range(10, 20))


async def test_limit_truncates_and_is_capped(loaded: httpx.AsyncClient) -> None:
    body = (await get(loaded, "/api/v1/samples", gateway="gw1", limit=7)).json()
    assert (len(body["samples"]), body["truncated"], body["limit"]) == (7, True, 7)
    assert [s["seq"] for s in body["samples"]] == list(range(1, 8))
    body = (await get(loaded, "/api/v1/samples", limit=10**30)).json()
    assert (body["limit"], body["truncated"], len(body["samples"])) == (MAX_LIMIT, False, 35)


async def test_events(loaded: httpx.AsyncClient) -> None:
    body = (await get(loaded, "/api/v1/events", kind="alarm", device="pump-1")).json()
    assert [e["event_id"] for e in body["events"]] == ["ev-1", "ev-2", "ev-3", "ev-4"]
    assert body["events"][0]["attributes"] == {"limit": 80.5, "tags": ["a", "b"]}
    assert body["events"][0]["gateway_id"] == "gw1"
    assert (await get(loaded, "/api/v1/events", kind="other")).json()["events"] == []
    body = (await get(loaded, "/api/v1/events", **span(T0 + 2, T0 + 4))).json()
    assert [e["seq"] for e in body["events"]] == [2, 3]


@pytest.mark.parametrize(
    ("path", "params", "field", "fragment"),
    [
        ("/api/v1/samples", {"from": "yesterday"}, "from", "neither ISO 8601"),
        ("/api/v1/samples", {"to": "nan"}, "to", "neither ISO 8601"),
        ("/api/v1/samples", {"from": "1e999"}, "from", "finite"),
        ("/api/v1/samples", {"from": 20, "to": 10}, "to", "after from"),
        ("/api/v1/samples", {"limit": 0}, "limit", "greater than or equal to 1"),
        ("/api/v1/samples", {"limit": "ten"}, "limit", "integer"),
        ("/api/v1/events", {"to": "2025-13-01"}, "to", "ISO 8601"),
        ("/api/v1/events", {"kind": "x" * 300}, "kind", "longer than"),
        ("/api/v1/samples", {"device": "a\x00b"}, "device", "NUL"),
    ],
)
async def test_bad_parameters_are_400_naming_them(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], field: str, fragment: str
) -> None:
    r = await get(client, path, **params)
    assert r.status_code == 400, r.text
    body = r.json()
    assert "query parameter" in body["detail"]
    assert body["errors"][0]["field"] == field
    assert fragment in body["errors"][0]["message"]


@pytest.mark.parametrize("path", ["/api/v1/gateways", "/api/v1/samples", "/api/v1/events"])
async def test_data_endpoints_need_a_key(client: httpx.AsyncClient, path: str) -> None:
    assert (await get(client, path, key=None)).status_code == 401
    assert (await get(client, path, key="wrong")).status_code == 401


async def test_a_gateway_key_reads_only_its_gateway(loaded: httpx.AsyncClient) -> None:
    gateways = (await get(loaded, "/api/v1/gateways", key=BOUND_KEY)).json()["gateways"]
    assert [g["gateway_id"] for g in gateways] == ["gw1"]
    samples = (await get(loaded, "/api/v1/samples", key=BOUND_KEY)).json()["samples"]
    assert {s["gateway_id"] for s in samples} == {"gw1"}
    r = await get(loaded, "/api/v1/samples", key=BOUND_KEY, gateway="gw2")
    assert r.status_code == 403
    assert "gw1" in r.json()["detail"]
    assert (await get(loaded, "/api/v1/events", key=BOUND_KEY, gateway="gw2")).status_code == 403
    assert (await get(loaded, "/api/v1/events", key=BOUND_KEY, gateway="gw1")).status_code == 200


def test_time_parsing() -> None:
    assert parse_time("from", "1763798400") == T0
    assert parse_time("from", " 1763798400.5 ") == T0 + 0.5
    assert parse_time("from", "-5") == -5.0
    assert parse_time("from", "2025-11-22T08:00:00Z") == T0
    assert parse_time("from", "2025-11-22T10:00:00+02:00") == T0
    assert parse_time("from", "2025-11-22") == T0 - 8 * 3600
    assert parse_time("from", None) is None and parse_time("from", "") is None
    for bad in ("inf", "1e999", "0x10", "noon", "2025-11-22T25:00"):
        with pytest.raises(BadParameter):
            parse_time("from", bad)
