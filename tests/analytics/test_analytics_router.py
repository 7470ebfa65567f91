"""The analytics API through HTTP on SQLite and PostgreSQL: answers, key scoping, events in one by one, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from analytics_testkit import T0, Db, ev
from fastapi import FastAPI, HTTPException
from test_analytics_cohort import FLEET
from test_analytics_cohort import request as cohort_request
from test_analytics_funnel import PARTS, STEPS
from test_analytics_overview import EVENTS, GATEWAYS

from cloud_sync.analytics import analytics_router, cohort, funnel
from cloud_sync.analytics.api_models import FunnelRequest
from cloud_sync.analytics.records import StoredEvent

ANY, GW1 = "key-any", "key-gw1"


class Identity:
    def __init__(self, gateway: str | None) -> None:
        self.gateway = gateway


def authenticate(key: str | None) -> Identity:
    keys = {ANY: None, GW1: "gw1"}
    if key not in keys:
        raise HTTPException(401, "missing, unknown or revoked API key")
    return Identity(keys[key])


@pytest.fixture
async def client(db: Db) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(analytics_router(lambda: (db.conn, db.dialect), authenticate=authenticate))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://collector", headers={"x-api-key": ANY}) as c:
        yield c


def funnel_body(**extra: Any) -> dict[str, Any]:
    return {"from": T0, "to": T0 + 1000, "entity_key": "part_id", "steps": STEPS, **extra}


async def test_funnel_and_cohort(db: Db, client: httpx.AsyncClient) -> None:
    db.load(PARTS + FLEET)
    answer = await client.post("/api/v1/analytics/funnel", json=funnel_body())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["from"], body["to"], body["entities"]) == (T0, T0 + 1000, 7)
    assert body == funnel(PARTS, FunnelRequest.model_validate(funnel_body())).model_dump(mode="json", by_alias=True)
    answer = await client.post("/api/v1/analytics/cohort", json=cohort_request().model_dump(by_alias=True))
    assert answer.status_code == 200, answer.text
    assert answer.json()["cohorts"][0] == {
        "period": "2025-11-17",
        "start": T0 - 2 * 86400,
        "size": 2,
        "values": [0.5, 0.5, 0.5, None, None],
    }
    assert answer.json() == cohort(PARTS + FLEET, cohort_request()).model_dump(mode="json", by_alias=True)


async def test_segments_and_overview(db: Db, client: httpx.AsyncClient) -> None:
    db.load(EVENTS)
    db.load_gateways(GATEWAYS)
    answer = await client.get("/api/v1/analytics/overview", params={"from": T0, "to": "2025-11-19T02:00:00Z"})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["gateways_online"], answer.json()["backlog_total"]) == (1, 106)
    answer = await client.get("/api/v1/analytics/segments", params={"from": T0, "to": T0 + 7200, "k": 2})
    assert answer.status_code == 200, answer.text
    assert sorted(d["device"] for d in answer.json()["devices"]) == ["cnc-1", "cnc-3", "pack-1"]


async def test_a_gateway_key_sees_only_its_gateway(db: Db, client: httpx.AsyncClient) -> None:
    db.load([*PARTS, ev("part_loaded", 1, gateway="gw2", part_id="other")])
    own = await client.post("/api/v1/analytics/funnel", json=funnel_body(), headers={"x-api-key": GW1})
    assert own.json()["entities"] == 7
    every = await client.post("/api/v1/analytics/funnel", json=funnel_body())
    assert every.json()["entities"] == 8
    other = await client.post("/api/v1/analytics/funnel", json=funnel_body(gateway="gw2"), headers={"x-api-key": GW1})
    assert other.status_code == 403 and other.json() == {"detail": "this API key may use only gateway 'gw1'"}
    nobody = await client.get("/api/v1/analytics/overview", params={"from": 1, "to": 2}, headers={"x-api-key": "?"})
    assert nobody.status_code == 401
    # the key is checked before the body: no hints about the request's shape for an unknown key
    nobody = await client.post("/api/v1/analytics/funnel", content=b"{not json", headers={"x-api-key": "?"})
    assert nobody.status_code == 401
    nobody = await client.post("/api/v1/events/batch", json={"events": []}, headers={"x-api-key": "?"})
    assert nobody.status_code == 401


async def test_bad_requests_name_the_field(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/analytics/funnel", content=b"{not json")
    assert answer.status_code == 400 and answer.json()["detail"].startswith("body is not JSON")
    answer = await client.post("/api/v1/analytics/funnel", json=funnel_body(steps=[{"kind": "x", "wher": {}}]))
    assert answer.status_code == 422
    assert answer.json()["errors"] == [{"field": "steps.0.wher", "message": "Extra inputs are not permitted"}]
    answer = await client.post("/api/v1/analytics/cohort", json={"entity_key": "device"})
    assert answer.status_code == 422
    assert {e["field"] for e in answer.json()["errors"]} == {"from", "to", "first", "return"}
    answer = await client.get("/api/v1/analytics/segments", params={"from": "soon", "to": 5, "k": 99})
    assert answer.status_code == 400
    assert [e["field"] for e in answer.json()["errors"]] == ["from", "k"]
    answer = await client.get("/api/v1/analytics/overview", params={"from": 5, "to": 1})
    assert answer.status_code == 400 and answer.json()["errors"][0]["message"].endswith("'to' must be after 'from'")


async def test_bodies_are_bounded(client: httpx.AsyncClient) -> None:
    huge = b"[" + b"1," * 600_000 + b"1]"
    answer = await client.post("/api/v1/analytics/funnel", content=huge)
    assert answer.status_code == 413 and answer.json() == {"detail": "body larger than 1048576 bytes"}


async def test_empty_window_is_an_empty_result(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/analytics/funnel", json=funnel_body())
    assert answer.status_code == 200
    assert [s["entities"] for s in answer.json()["steps"]] == [0, 0, 0, 0]
    answer = await client.post("/api/v1/analytics/cohort", json=cohort_request().model_dump(by_alias=True))
    assert answer.json()["cohorts"] == []


def posted(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"mes-{i}",
        "ts": T0 + i,
        "device": "cnc-1",
        "kind": "part_loaded",
        "attributes": {"part_id": f"P{i}"},
        **extra,
    }


def stored(db: Db) -> list[tuple[Any, ...]]:
    cur = db.conn.cursor()
    cur.execute("SELECT gateway_id, seq, event_id, kind FROM events ORDER BY gateway_id, seq DESC")
    return [tuple(row) for row in cur.fetchall()]


async def test_post_one_event(db: Db, client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/events", json=posted(1, session_id="s-9"), headers={"x-api-key": GW1})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 1, "duplicates": 0, "rejected": [], "ids": ["mes-1"]}
    again = await client.post("/api/v1/events", json=posted(1), headers={"x-api-key": GW1})
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": [], "ids": ["mes-1"]}
    assert stored(db) == [("gw1", -1, "mes-1", "part_loaded")]
    cur = db.conn.cursor()
    cur.execute("SELECT attributes FROM events")
    attributes = cur.fetchall()[0][0]
    assert "s-9" in str(attributes)  # the session id travels as an attribute
    bad = await client.post("/api/v1/events", json={**posted(2), "ts": "noon", "attributes": {"part_id": 5}})
    assert bad.status_code == 422
    assert bad.json()["errors"] == [{"field": "ts", "message": "Input should be a valid number"}]
    bad = await client.post("/api/v1/events", json={**posted(2), "attributes": {"part_id": 5}})
    assert bad.json()["errors"] == [{"field": "attributes.part_id", "message": "Input should be a valid string"}]
    unbound = await client.post("/api/v1/events", json=posted(3))
    assert unbound.status_code == 422 and unbound.json()["errors"][0]["field"] == "gateway"


async def test_post_a_batch_keeps_the_good_events(db: Db, client: httpx.AsyncClient) -> None:
    events = [
        posted(1, gateway="mes"),
        {**posted(2, gateway="mes"), "kind": "part_lodaed"},
        posted(3, gateway="mes"),
        "not an event",
        posted(1, gateway="mes"),  # a duplicate within the batch
        posted(4, gateway="gw2"),
        {**posted(5, gateway="mes"), "kind": "mes.order_released", "attributes": {"order_id": "O-1", "lines": 3}},
    ]
    answer = await client.post("/api/v1/events/batch", json={"events": events})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["accepted"], body["duplicates"], body["ids"]) == (4, 1, ["mes-1", "mes-3", "mes-1", "mes-4", "mes-5"])
    assert body["rejected"] == [
        {
            "index": 1,
            "id": "mes-2",
            "errors": [{"field": "kind", "message": "unknown kind 'part_lodaed' (did you mean 'part_loaded'?)"}],
        },
        {"index": 3, "id": None, "errors": [{"field": "event", "message": "must be a JSON object"}]},
    ]
    assert stored(db) == [
        ("gw2", -1, "mes-4", "part_loaded"),
        ("mes", -1, "mes-1", "part_loaded"),
        ("mes", -2, "mes-3", "part_loaded"),
        ("mes", -3, "mes-5", "mes.order_released"),
    ]
    as_gw1 = await client.post(
        "/api/v1/events/batch", json={"events": [posted(6, gateway="gw2"), posted(7)]}, headers={"x-api-key": GW1}
    )
    body = as_gw1.json()
    assert (body["accepted"], body["rejected"][0]["index"]) == (1, 0)
    assert body["rejected"][0]["errors"][0] == {
        "field": "gateway",
        "message": "this API key may post events only for gateway 'gw1'",
    }
    funnel_answer = await client.post("/api/v1/analytics/funnel", json=funnel_body(steps=[{"kind": "part_loaded"}]))
    assert funnel_answer.json()["entities"] == 4  # posted events are analysed like any other
    empty = await client.post("/api/v1/events/batch", json={"events": []})
    assert empty.status_code == 422


async def test_a_connection_context_manager_and_a_failing_database(db: Db) -> None:
    entered: list[str] = []

    @contextmanager
    def pooled() -> Any:
        entered.append("in")
        yield db.conn, db.dialect
        entered.append("out")

    writes: list[str] = []

    def writer() -> Any:
        writes.append("w")
        return db.conn, db.dialect

    app = FastAPI()
    app.include_router(analytics_router(pooled, get_write_connection=writer))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
        answer = await c.post("/api/v1/analytics/funnel", json=funnel_body())
        assert answer.status_code == 200 and entered == ["in", "out"] and writes == []
        answer = await c.post("/api/v1/events", json=posted(1, gateway="mes"))
        assert answer.json()["accepted"] == 1 and writes == ["w"] and entered == ["in", "out"]
    db.execute("DROP TABLE events")
    app = FastAPI()
    app.include_router(analytics_router(lambda: (db.conn, db.dialect)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
        answer = await c.post("/api/v1/analytics/funnel", json=funnel_body())
    assert answer.status_code == 503 and answer.json() == {"detail": "storage unavailable, retry later"}
    recreate(db)


def recreate(db: Db) -> None:
    from analytics_testkit import _DDL

    db.execute(_DDL[db.dialect][0])


async def test_openapi_document(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    paths = doc["paths"]
    assert set(paths) == {
        "/api/v1/analytics/funnel",
        "/api/v1/analytics/cohort",
        "/api/v1/analytics/segments",
        "/api/v1/analytics/overview",
        "/api/v1/events",
        "/api/v1/events/batch",
    }
    parameters = {p["name"] for p in paths["/api/v1/analytics/segments"]["get"]["parameters"]}
    assert parameters == {"from", "to", "gateway", "k", "seed", "period"}
    body = paths["/api/v1/analytics/funnel"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"from", "to", "steps", "entity_key"} <= set(body["properties"])
    assert "FunnelResponse" in str(paths["/api/v1/analytics/funnel"]["post"]["responses"]["200"])


def test_stored_event_helper_round_trip() -> None:
    e = ev("part_loaded", 1, part_id="x")
    assert isinstance(e, StoredEvent) and e.ts == T0 + 1
