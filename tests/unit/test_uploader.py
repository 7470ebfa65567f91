"""The uploader: batches by count and bytes, acks only after 2xx, retry classes, backoff, Retry-After,
quarantine of refused batches, and the live tail interleaved with a draining backlog."""

from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cloud_sync.schema import Batch
from cloud_sync.uploader import Refused, Uploader, parse_retry_after
from edge_agent.buffer import Buffer, QuarantineRecord
from edge_agent.model import Sample


class Source:
    """An in-memory BatchSource: rows 1..n per stream and the set of acknowledged seqs."""

    def __init__(self, samples: int, events: int = 0) -> None:
        self.rows: dict[str, list[tuple[Any, ...]]] = {
            "samples": [(i, "d", "t", float(i), float(i), 0) for i in range(1, samples + 1)],
            "events": [(i, f"e{i}", float(i), "d", "k", {}) for i in range(1, events + 1)],
        }
        self.acked: dict[str, set[int]] = {"samples": set(), "events": set()}
        self.refused: list[Refused] = []

    async def read(self, stream: str, limit: int, *, newest: bool = False) -> list[Any]:
        pending = [r for r in self.rows[stream] if r[0] not in self.acked[stream]]
        return pending[-limit:] if newest else pending[:limit]

    async def ack(self, stream: str, first_seq: int, last_seq: int) -> None:
        self.acked[stream].update(range(first_seq, last_seq + 1))

    async def quarantine(self, refused: Refused) -> None:
        self.refused.append(refused)
        await self.ack(refused.stream, refused.first_seq, refused.last_seq)

    async def backlog(self) -> dict[str, int]:
        return {s: len([r for r in rows if r[0] not in self.acked[s]]) for s, rows in self.rows.items()}

    def all_acked(self, stream: str) -> bool:
        return self.acked[stream] == {r[0] for r in self.rows[stream]}


def decode(request: httpx.Request) -> Batch:
    return Batch.model_validate(orjson.loads(gzip.decompress(request.content)))


def ok(batch: Batch) -> httpx.Response:
    return httpx.Response(200, json={"batch_id": batch.batch_id, "accepted": len(batch.rows),
                                     "duplicates": 0, "duplicate_batch": False})


def make(source: Any, handler: Any, batch_size: int = 100, **kwargs: Any) -> Uploader:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return Uploader(source, client, gateway_id="gw", url="http://collector", api_key="k", batch_size=batch_size,
                    **kwargs)


async def test_sends_events_first_then_samples_in_batches_and_acks() -> None:
    seen: list[Batch] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["x-api-key"] == "k"
        assert request.headers["content-encoding"] == "gzip"
        seen.append(decode(request))
        return ok(seen[-1])

    source = Source(samples=250, events=3)
    up = make(source, handler)
    assert await up.sync_once() == 253
    assert [(b.stream, b.first_seq, b.last_seq) for b in seen] == [
        ("events", 1, 3), ("samples", 1, 100), ("samples", 101, 200), ("samples", 201, 250)
    ]
    assert seen[1].batch_id == "gw:samples:1:100"
    assert source.all_acked("samples") and source.all_acked("events")
    assert up.status.last_result == "ok" and up.status.batches_sent == 4
    assert up.status.as_dict()["wire_bytes_per_row"] > 0


async def test_batches_are_cut_by_bytes_as_well_as_count() -> None:
    sizes: list[tuple[int, int]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        raw = gzip.decompress(request.content)
        batch = Batch.model_validate(orjson.loads(raw))
        sizes.append((len(raw), len(batch.rows)))
        return ok(batch)

    source = Source(samples=1000)
    up = make(source, handler, batch_size=1000, batch_max_bytes=8 * 1024)
    assert await up.sync_once() == 1000
    assert len(sizes) > 3 and all(size <= 8 * 1024 for size, _ in sizes)
    assert sum(rows for _, rows in sizes) == 1000 and source.all_acked("samples")


async def test_reads_shrink_to_what_fits_the_byte_limit_and_grow_back() -> None:
    """Large events: a read of batch_size rows would hold many batches' bytes in memory at once, so after a
    batch is cut by bytes the next reads ask for about what fitted; small rows let the read size grow back."""
    limits: list[tuple[str, int]] = []

    class Recording(Source):
        async def read(self, stream: str, limit: int, *, newest: bool = False) -> list[Any]:
            limits.append((stream, limit))
            return await super().read(stream, limit, newest=newest)

    source = Recording(samples=3000, events=400)
    source.rows["events"] = [(i, f"e{i}", float(i), "d", "k", {"text": "x" * 2000}) for i in range(1, 401)]
    up = make(source, lambda request: ok(decode(request)), batch_size=1000, batch_max_bytes=64 * 1024)
    assert await up.sync_once() == 3400
    assert source.all_acked("events") and source.all_acked("samples")
    events = [limit for stream, limit in limits if stream == "events"]
    assert events[0] == 1000 and max(events[1:]) <= 40  # about 30 events of 2 KB fit in 64 KB
    assert up.read_limit("samples") == 1000  # small rows: whole reads fit, the limit is never cut


async def test_collector_down_acks_nothing_and_backs_off() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    source = Source(samples=10)
    up = make(source, handler)
    assert await up.sync_once() == 0
    assert source.acked["samples"] == set()
    assert up.status.consecutive_failures == 1
    assert up.status.next_attempt > time.time()
    assert "unreachable" in (up.status.last_error or "")
    assert await up.sync_once() == 0  # still in backoff: nothing attempted
    assert up.status.consecutive_failures == 1


def test_backoff_is_exponential_capped_and_jittered() -> None:
    up = make(Source(0), lambda r: httpx.Response(200), backoff_initial_s=1.0, backoff_max_s=30.0)
    delays = []
    for n in range(1, 12):
        up.status.consecutive_failures = n
        delays.append(up.backoff_delay())
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0 and 2.0 <= delays[2] <= 4.0
    assert all(15.0 <= d <= 30.0 for d in delays[6:])
    assert len({round(d, 6) for d in delays[6:]}) > 1  # jitter spreads gateways out
    up.status.consecutive_failures = 1
    assert up.backoff_delay(retry_after=120.0) == 120.0


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
    assert source.all_acked("samples")
    assert up.status.consecutive_failures == 0


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = time.time()
    assert parse_retry_after("12") == 12.0
    when = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(seconds=90), usegmt=True)
    assert 88 <= (parse_retry_after(when, now=now) or 0) <= 91
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize("code", [408, 429, 500, 503])
async def test_retryable_answers_keep_the_batch(code: int) -> None:
    source = Source(samples=5)
    up = make(source, lambda r: httpx.Response(code, text="later"))
    await up.sync_once()
    assert up.status.last_result == "failed" and source.acked["samples"] == set() and not source.refused


@pytest.mark.parametrize("code", [401, 403, 404, 415])
async def test_gateway_level_refusals_are_reported_not_quarantined(code: int) -> None:
    source = Source(samples=5)
    up = make(source, lambda r: httpx.Response(code, json={"detail": "unknown API key"}))
    await up.sync_once()
    assert up.status.last_result == "rejected"
    assert str(code) in (up.status.last_error or "")
    assert source.acked["samples"] == set() and not source.refused


async def test_a_refused_batch_is_quarantined_with_an_event_and_sync_goes_on() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    delivered: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        batch = decode(request)
        if batch.first_seq == 101:
            return httpx.Response(422, json={"detail": "invalid batch", "errors": [{"field": "rows[3]"}]})
        delivered.extend(row[0] for row in batch.rows)
        return ok(batch)

    source = Source(samples=300)
    up = make(source, handler, on_event=lambda kind, attrs: events.append((kind, attrs)))
    assert await up.sync_once() == 300
    assert delivered == list(range(1, 101)) + list(range(201, 301))
    assert [(r.batch_id, r.status, r.rows) for r in source.refused] == [("gw:samples:101:200", 422, 100)]
    assert "rows[3]" in source.refused[0].answer and source.refused[0].body
    assert source.all_acked("samples")
    assert events[0][0] == "batch_quarantined" and events[0][1]["batch_id"] == "gw:samples:101:200"
    assert events[0][1]["status"] == 422 and "invalid batch" in events[0][1]["answer"]
    assert up.status.quarantined_batches == 1 and up.status.last_result == "ok"


async def test_too_large_is_split_instead_of_quarantined() -> None:
    delivered: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        batch = decode(request)
        if len(batch.rows) > 30:
            return httpx.Response(413, json={"detail": "too large"})
        delivered.extend(row[0] for row in batch.rows)
        return ok(batch)

    source = Source(samples=100)
    up = make(source, handler)
    assert await up.sync_once() == 100
    assert delivered == list(range(1, 101)) and not source.refused


async def test_duplicate_batches_counted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"duplicate_batch": True})

    up = make(Source(samples=5), handler)
    await up.sync_once()
    assert up.status.duplicate_batches == 1


class BufferSource:
    """A BatchSource over a real Buffer (called directly, as the supervisor does on its thread)."""

    def __init__(self, buffer: Buffer) -> None:
        self.buffer = buffer

    async def read(self, stream: str, limit: int, *, newest: bool = False) -> list[Any]:
        return (self.buffer.read_newest if newest else self.buffer.read_unsynced)(stream, limit)

    async def ack(self, stream: str, first_seq: int, last_seq: int) -> None:
        self.buffer.ack(stream, last_seq, first_seq)

    async def quarantine(self, refused: Refused) -> None:
        self.buffer.quarantine(QuarantineRecord(refused.batch_id, refused.stream, refused.first_seq,
                                                refused.last_seq, refused.rows, refused.status, refused.answer,
                                                refused.at, refused.body))

    async def backlog(self) -> dict[str, int]:
        return self.buffer.backlog()


async def test_backlog_drains_oldest_first_while_live_rows_keep_flowing(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite")
    buffer.append([Sample("d", "t", float(i), float(i)) for i in range(3000)])
    order: list[tuple[int, int]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        batch = decode(request)
        order.append((batch.first_seq, batch.last_seq))
        # live data keeps arriving while the backlog drains: 20 new rows per batch sent
        n = buffer.stats().last_seq["samples"]
        buffer.append([Sample("d", "t", float(n + i), float(n + i)) for i in range(20)])
        return ok(batch)

    up = make(BufferSource(buffer), handler, batch_size=100, drain_threshold=200, live_every_s=0.0)
    await up.sync_once()
    assert up.status.mode == "live" and up.status.backlog_rows_sent >= 2900 and up.status.live_rows_sent > 0
    assert up.status.drain_rate and up.status.drain_rate > 0
    assert order[0] == (2901, 3000)  # the live tail starts with the newest rows
    backlog_batches = [b for b in order[1:] if b[1] <= 2900]
    live_batches = [b for b in order[1:] if b[0] > 3000]
    assert backlog_batches == sorted(backlog_batches) and backlog_batches[0] == (1, 100)  # oldest first
    # live rows kept arriving before the backlog was done
    assert order.index(live_batches[0]) < order.index(backlog_batches[-1])
    # once drained, everything in the buffer has been sent exactly once
    sent = sorted(seq for first, last in order for seq in range(first, last + 1))
    assert sent == list(range(1, len(sent) + 1))
    assert buffer.stats().live_tail["samples"] is None
    await up.sync_once()
    assert buffer.backlog()["samples"] <= 20  # only what the last batch sent brought in
    buffer.close()


async def test_a_short_rate_limit_is_waited_out_within_the_round() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 2:
            return httpx.Response(429, headers={"retry-after": "0.05"}, json={"detail": "slow down"})
        return ok(decode(request))

    source = Source(samples=300)
    up = make(source, handler)
    assert await up.sync_once() == 300
    assert up.status.throttled == 1 and up.status.consecutive_failures == 0 and source.all_acked("samples")
