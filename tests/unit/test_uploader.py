"""The uploader: batches, acks only after 2xx, retry classes, backoff, Retry-After."""

from __future__ import annotations

import gzip
import time
from typing import Any

import httpx
import orjson

from cloud_sync.schema import Batch
from cloud_sync.uploader import Uploader


class Source:
    def __init__(self, samples: int, events: int = 0) -> None:
        self.rows = {
            "samples": [[i, "d", "t", float(i), float(i), 0] for i in range(1, samples + 1)],
            "events": [[i, f"e{i}", float(i), "d", "k", {}] for i in range(1, events + 1)],
        }
        self.acked = {"samples": 0, "events": 0}

    async def read(self, stream: str, limit: int) -> list[list[Any]]:
        return [r for r in self.rows[stream] if r[0] > self.acked[stream]][:limit]

    async def ack(self, stream: str, last_seq: int) -> None:
        self.acked[stream] = max(self.acked[stream], last_seq)

    async def backlog(self) -> dict[str, int]:
        return {s: len([r for r in rows if r[0] > self.acked[s]]) for s, rows in self.rows.items()}


def make(source: Source, handler: Any, batch_size: int = 100) -> Uploader:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return Uploader(source, client, gateway_id="gw", url="http://collector", api_key="k", batch_size=batch_size)


async def test_sends_events_first_then_samples_in_batches_and_acks() -> None:
    seen: list[Batch] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["x-api-key"] == "k"
        assert request.headers["content-encoding"] == "gzip"
        batch = Batch.model_validate(orjson.loads(gzip.decompress(request.content)))
        seen.append(batch)
        return httpx.Response(200, json={"batch_id": batch.batch_id, "accepted": len(batch.rows),
                                         "duplicates": 0, "duplicate_batch": False})

    source = Source(samples=250, events=3)
    up = make(source, handler)
    assert await up.sync_once() == 253
    assert [(b.stream, b.first_seq, b.last_seq) for b in seen] == [
        ("events", 1, 3), ("samples", 1, 100), ("samples", 101, 200), ("samples", 201, 250)
    ]
    assert seen[1].batch_id == "gw:samples:1:100"
    assert source.acked == {"samples": 250, "events": 3}
    assert up.status.last_result == "ok" and up.status.batches_sent == 4


async def test_collector_down_acks_nothing_and_backs_off() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    source = Source(samples=10)
    up = make(source, handler)
    assert await up.sync_once() == 0
    assert source.acked["samples"] == 0
    assert up.status.consecutive_failures == 1
    assert up.status.next_attempt > time.time()
    assert "unreachable" in (up.status.last_error or "")
    assert await up.sync_once() == 0  # still in backoff: nothing attempted
    assert up.status.consecutive_failures == 1


async def test_server_error_is_retried_and_retry_after_honoured() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(503, headers={"retry-after": "7"}, text="busy")
        return httpx.Response(200, json={"duplicate_batch": False})

    source = Source(samples=5)
    up = make(source, handler)
    await up.sync_once()
    assert up.status.last_result == "failed"
    assert up.status.next_attempt - time.time() > 6
    up.status.next_attempt = 0
    assert await up.sync_once() == 5
    assert source.acked["samples"] == 5
    assert up.status.consecutive_failures == 0


async def test_client_error_is_not_retryable_and_reported() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"detail": [{"field": "rows[0]", "message": "bad"}]})

    source = Source(samples=5)
    up = make(source, handler)
    await up.sync_once()
    assert up.status.last_result == "rejected"
    assert "422" in (up.status.last_error or "")
    assert source.acked["samples"] == 0


async def test_duplicate_batches_counted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"duplicate_batch": True})

    up = make(Source(samples=5), handler)
    await up.sync_once()
    assert up.status.duplicate_batches == 1
