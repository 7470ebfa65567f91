"""Rate limit (429 + Retry-After), Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from collector_testkit import ANY_KEY, BOUND_KEY, KEYS, batch_dict, gz, headers

from cloud_sync.collector.app import create_app
from cloud_sync.collector.ratelimit import RateLimiter, retry_after_header
from cloud_sync.collector.store import Store

URL = "/api/v1/batches"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, burst=3, clock=clock)
    assert [limiter.acquire("gw1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("gw1") == pytest.approx(0.5)
    assert limiter.acquire("gw2") == 0.0  # buckets are per gateway
    clock.now += 0.5
    assert limiter.acquire("gw1") == 0.0
    assert limiter.acquire("gw1") == pytest.approx(0.5)
    clock.now += 100
    assert [limiter.acquire("gw1") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # refilled to the burst, no more
    assert RateLimiter(0).acquire("gw1") == 0.0  # disabled
    assert RateLimiter(5).burst == 10
    assert [retry_after_header(w) for w in (0.01, 1.0, 1.2)] == ["1", "1", "2"]


def test_token_buckets_stay_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, burst=1, clock=clock, max_buckets=10)
    for i in range(100):
        limiter.acquire(f"gw{i}")
    assert len(limiter._buckets) <= 10
    clock.now += 5
    limiter.acquire("new")
    assert len(limiter._buckets) == 1  # the refilled ones were forgotten


@pytest.fixture
async def limited(store: Store) -> AsyncIterator[tuple[httpx.AsyncClient, Clock]]:
    clock = Clock()
    app = create_app(store, KEYS, limiter=RateLimiter(1.0, burst=2, clock=clock))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
        yield c, clock


async def post(client: httpx.AsyncClient, key: str = BOUND_KEY, **kw: Any) -> httpx.Response:
    return await client.post(URL, content=gz(batch_dict(**kw)), headers=headers(key=key))


async def test_too_many_batches_are_429_with_retry_after(
    limited: tuple[httpx.AsyncClient, Clock], store: Store
) -> None:
    client, clock = limited
    assert (await post(client, first=1, last=10)).status_code == 200
    assert (await post(client, first=11, last=20)).status_code == 200
    r = await post(client, first=21, last=30)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "1"
    assert "gw1" in r.json()["detail"]
    assert store.stats()["gateways"]["gw1"]["samples"] == 20  # nothing of the refused batch was written
    # another gateway is not held back; a key for any gateway is limited by the batch's gateway
    assert (await post(client, key=ANY_KEY, gateway="gw2")).status_code == 200
    assert (await post(client, key=ANY_KEY, gateway="gw1", first=21, last=30)).status_code == 429
    clock.now += 1.0
    assert (await post(client, first=21, last=30)).status_code == 200


async def test_metrics(client: httpx.AsyncClient) -> None:
    await client.post(URL, content=gz(batch_dict(first=1, last=10)), headers=headers())
    await client.post(URL, content=gz(batch_dict(first=1, last=10)), headers=headers())
    await client.post(URL, content=gz(batch_dict(stream="events", first=1, last=3)), headers=headers())
    await client.post(URL, content=gz(batch_dict()), headers=headers(key="wrong"))
    await client.post(URL, content=gz({"not": "a batch"}), headers=headers())
    await client.get("/api/v1/stats")
    await client.get("/no/such/path")
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    for line in (
        'edge_collector_batches_received_total{stream="samples"} 1.0',
        'edge_collector_batches_received_total{stream="events"} 1.0',
        'edge_collector_batches_duplicate_total{stream="samples"} 1.0',
        'edge_collector_rows_ingested_total{stream="samples"} 10.0',
        'edge_collector_rows_ingested_total{stream="events"} 3.0',
        'edge_collector_batches_rejected_total{reason="unauthorized"} 1.0',
        'edge_collector_batches_rejected_total{reason="invalid"} 1.0',
        'edge_collector_batches_rejected_total{reason="rate_limited"} 0.0',
        "edge_collector_ingest_seconds_count 2.0",
        'edge_collector_http_requests_total{method="POST",route="/api/v1/batches",status="200"} 3.0',
        'edge_collector_http_requests_total{method="POST",route="/api/v1/batches",status="401"} 1.0',
        'edge_collector_http_requests_total{method="GET",route="/api/v1/stats",status="200"} 1.0',
        'edge_collector_http_requests_total{method="GET",route="unmatched",status="404"} 1.0',
    ):
        assert line in text, line


async def test_openapi_describes_the_batch_endpoint(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    post_op = doc["paths"]["/api/v1/batches"]["post"]
    body = post_op["requestBody"]["content"]["application/json"]["schema"]
    assert post_op["requestBody"]["required"] is True
    assert set(body["required"]) >= {"gateway_id", "batch_id", "stream", "first_seq", "last_seq", "rows", "sent_at"}
    assert body["properties"]["stream"]["enum"] == ["samples", "events"]
    assert body["properties"]["rows"]["items"]["minItems"] == 6
    responses = post_op["responses"]
    assert set(responses) == {"200", "400", "401", "403", "413", "415", "422", "429", "503"}
    ack = responses["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ack.endswith("/BatchAck")
    assert responses["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert doc["components"]["securitySchemes"]["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "A gateway's key (edge-collector keys add) or one given with --api-key",
    }
    assert "content-encoding" in {p["name"] for p in post_op["parameters"]}
    samples = doc["paths"]["/api/v1/samples"]["get"]
    assert {p["name"] for p in samples["parameters"]} == {"gateway", "device", "tag", "from", "to", "limit"}
    assert set(samples["responses"]) == {"200", "400", "401", "403", "503"}
    assert set(doc["paths"]) == {
        "/api/v1/batches",
        "/api/v1/stats",
        "/api/v1/gateways",
        "/api/v1/samples",
        "/api/v1/events",
        "/health",
        "/metrics",
        "/api/v1/events/batch",
        "/api/v1/analytics/funnel",
        "/api/v1/analytics/cohort",
        "/api/v1/analytics/segments",
        "/api/v1/analytics/overview",
        "/api/v1/gateways/{gateway}/devices",
        "/api/v1/gateways/{gateway}/devices/{device}/twin",
        "/api/v1/oee",
        "/api/v1/export",
    }
