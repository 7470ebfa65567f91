"""The HTTP API: auth, body limits and decoding, validation errors, acks, stats, health (both backends)."""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import orjson
import pytest
from collector_testkit import ANY_KEY, BOUND_KEY, KEYS, batch_dict, gz, headers, sample_rows

from cloud_sync.collector.app import create_app
from cloud_sync.collector.body import MAX_BODY, MAX_DECODED
from cloud_sync.collector.store import Store

URL = "/api/v1/batches"


async def post(client: httpx.AsyncClient, batch: Any, **kw: Any) -> httpx.Response:
    return await client.post(URL, content=gz(batch), headers=headers(**kw))


async def stats_of(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/api/v1/stats")
    assert r.status_code == 200
    return r.json()


def only_problem(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 422, r.text
    body = r.json()
    assert isinstance(body["detail"], str)
    assert len(body["errors"]) == 1, body
    return body["errors"][0]


async def test_good_batch_is_acked_and_stored(client: httpx.AsyncClient) -> None:
    r = await post(client, batch_dict(first=1, last=100))
    assert r.status_code == 200, r.text
    assert r.json() == {"batch_id": "gw1:samples:1:100", "accepted": 100, "duplicates": 0, "duplicate_batch": False}
    assert await stats_of(client) == {
        "gateways": {"gw1": {"samples": 100, "events": 0, "batches": 1, "duplicate_batches": 0}}
    }


async def test_resent_batch_is_a_duplicate(client: httpx.AsyncClient) -> None:
    batch = batch_dict(first=1, last=50)
    assert (await post(client, batch)).status_code == 200
    r = await post(client, batch)
    assert r.status_code == 200
    assert r.json() == {"batch_id": "gw1:samples:1:50", "accepted": 0, "duplicates": 50, "duplicate_batch": True}
    assert (await stats_of(client))["gateways"]["gw1"] == {
        "samples": 50,
        "events": 0,
        "batches": 1,
        "duplicate_batches": 1,
    }


async def test_overlapping_batch_adds_only_new_rows(client: httpx.AsyncClient) -> None:
    await post(client, batch_dict(first=1, last=50))
    r = await post(client, batch_dict(first=41, last=60))
    assert r.json() == {"batch_id": "gw1:samples:41:60", "accepted": 10, "duplicates": 10, "duplicate_batch": False}
    assert (await stats_of(client))["gateways"]["gw1"]["samples"] == 60


async def test_events_batch(client: httpx.AsyncClient) -> None:
    r = await post(client, batch_dict(stream="events", first=1, last=4))
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 4
    assert (await stats_of(client))["gateways"]["gw1"]["events"] == 4


async def test_identity_encoding_is_accepted(client: httpx.AsyncClient) -> None:
    body = orjson.dumps(batch_dict(first=1, last=3))
    r = await client.post(URL, content=body, headers=headers(encoding=None))
    assert r.status_code == 200, r.text
    r = await client.post(URL, content=body, headers=headers(encoding="identity"))
    assert r.json()["duplicate_batch"] is True


@pytest.mark.parametrize("key", [None, "", "wrong-key", ANY_KEY + "x"])
async def test_missing_or_unknown_key_is_401(client: httpx.AsyncClient, key: str | None) -> None:
    r = await post(client, batch_dict(), key=key)
    assert r.status_code == 401
    assert "API key" in r.json()["detail"]
    assert await stats_of(client) == {"gateways": {}}


async def test_key_bound_to_another_gateway_is_403(client: httpx.AsyncClient) -> None:
    r = await post(client, batch_dict(gateway="gw2"), key=BOUND_KEY)
    assert r.status_code == 403
    assert "gw2" in r.json()["detail"]
    assert await stats_of(client) == {"gateways": {}}
    # the same key may send for its own gateway, an unbound key for any
    assert (await post(client, batch_dict(gateway="gw1"), key=BOUND_KEY)).status_code == 200
    assert (await post(client, batch_dict(gateway="gw2"), key=ANY_KEY)).status_code == 200


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"this is not gzip", "not valid gzip"),
        (gz({"a": 1})[:-12], "truncated"),
        (b"", "truncated"),
    ],
)
async def test_bad_gzip_is_400(client: httpx.AsyncClient, body: bytes, fragment: str) -> None:
    r = await client.post(URL, content=body, headers=headers())
    assert r.status_code == 400
    assert fragment in r.json()["detail"]


async def test_multi_member_gzip_is_accepted(client: httpx.AsyncClient) -> None:
    raw = orjson.dumps(batch_dict(first=1, last=5))
    body = gzip.compress(raw[:40]) + gzip.compress(raw[40:])
    r = await client.post(URL, content=body, headers=headers())
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("raw", [b'{"gateway_id": "gw1",', b"", b"\xff\xfe", b"{'single': 'quotes'}"])
async def test_bad_json_is_400(client: httpx.AsyncClient, raw: bytes) -> None:
    r = await client.post(URL, content=gzip.compress(raw), headers=headers())
    assert r.status_code == 400
    assert r.json()["detail"].startswith("body is not valid JSON")


async def test_unsupported_encoding_is_415(client: httpx.AsyncClient) -> None:
    r = await client.post(URL, content=gz(batch_dict()), headers=headers(encoding="br"))
    assert r.status_code == 415
    assert "br" in r.json()["detail"]


async def test_missing_and_extra_fields_are_422_by_field(client: httpx.AsyncClient) -> None:
    batch = batch_dict()
    del batch["stream"]
    batch["colour"] = "red"
    r = await post(client, batch)
    assert r.status_code == 422
    problems = {p["field"]: p["message"] for p in r.json()["errors"]}
    assert problems.keys() == {"stream", "colour"}
    assert "required" in problems["stream"].lower()


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"batch_id": "gw1:samples:1:11"}, "batch_id", "does not match"),
        ({"first_seq": 0}, "first_seq", "greater than or equal to 1"),
        ({"gateway_id": "gw 1"}, "gateway_id", "pattern"),
        ({"stream": "logs"}, "stream", "samples"),
        ({"schema_version": 2}, "schema_version", "1"),
        ({"backlog": {"samples": "many"}}, "backlog.samples", "integer"),
    ],
)
async def test_schema_errors_are_422_naming_the_field(
    client: httpx.AsyncClient, change: dict[str, Any], field: str, fragment: str
) -> None:
    problem = only_problem(await post(client, {**batch_dict(), **change}))
    assert problem["field"] == field
    assert fragment in problem["message"]


async def test_last_seq_below_first_seq_names_last_seq(client: httpx.AsyncClient) -> None:
    batch = {**batch_dict(), "first_seq": 10, "last_seq": 5, "batch_id": "gw1:samples:10:5", "rows": []}
    problem = only_problem(await post(client, batch))
    assert problem == {"field": "last_seq", "message": "last_seq is below first_seq"}


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ([4, "pump-1", "t1", 1.0, 1.0], "expected 6 columns"),
        ([40, "pump-1", "t1", 1.0, 1.0, 0], "outside 1..10"),
        ([4, "pump-1", 17, 1.0, 1.0, 0], "tag (column 2) must be a string, got int"),
        ([4, None, "t1", 1.0, 1.0, 0], "device (column 1) must be a string, got null"),
        ([4, "pump-1", "t1", "noon", 1.0, 0], "ts (column 3) must be a number"),
        ([4, "pump-1", "t1", True, 1.0, 0], "ts (column 3) must be a number, got bool"),
        ([4, "pump-1", "t1", 1.0, 1.0, 0.5], "quality (column 5) must be an integer"),
        ([4, "pump-1", "t1", 1.0, [1, 2], 0], "value (column 4)"),
    ],
)
async def test_bad_sample_row_is_422_naming_the_first_bad_row(
    client: httpx.AsyncClient, row: list[Any], fragment: str
) -> None:
    rows = sample_rows(1, 10)
    rows[3] = row
    rows[6] = [7, "pump-1", 99, 1.0, 1.0, 0]  # also bad, but not the first
    problem = only_problem(await post(client, batch_dict(first=1, last=10, rows=rows)))
    assert problem["field"] == "rows[3]"
    assert fragment in problem["message"]
    assert await stats_of(client) == {"gateways": {}}


async def test_bad_event_row_is_422(client: httpx.AsyncClient) -> None:
    batch = batch_dict(stream="events", first=1, last=3)
    batch["rows"][2][5] = "not an object"
    problem = only_problem(await post(client, batch))
    assert problem["field"] == "rows[2]"
    assert "attributes (column 5) must be an object" in problem["message"]


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ([4, "pump\x00-1", "t1", 1.0, 1.0, 0], "device (column 1) must not contain NUL"),
        ([4, "pump-1", "t1", 1.0, "a\x00b", 0], "value (column 4) must not contain NUL"),
        ([4, "pump-1", "t1", 2**64 - 1, 1.0, 0], "ts (column 3) is an integer outside the 64-bit range"),
        ([4, "pump-1", "t1", 1.0, 2**63, 0], "value (column 4) is an integer outside the 64-bit range"),
        ([3, "pump-1", "t1", 1.0, 1.0, 0], "seq 3 does not follow seq 3"),
    ],
)
async def test_rows_every_backend_cannot_keep_are_422(client: httpx.AsyncClient, row: list[Any], fragment: str) -> None:
    rows = sample_rows(1, 10)
    rows[3] = row
    problem = only_problem(await post(client, batch_dict(first=1, last=10, rows=rows)))
    assert problem["field"] == "rows[3]"
    assert fragment in problem["message"]
    assert await stats_of(client) == {"gateways": {}}


@pytest.mark.parametrize(
    ("attributes", "fragment"),
    [
        ({"a": {"b": "x\x00"}}, "NUL"),
        ({"k\x00": 1}, "NUL"),
        ({"deep": orjson.loads("[" * 40 + "]" * 40)}, "nested deeper than 32"),
        ({"n": [1, 2**64 - 1]}, "64-bit"),
    ],
)
async def test_event_attributes_every_backend_cannot_keep_are_422(
    client: httpx.AsyncClient, attributes: dict[str, Any], fragment: str
) -> None:
    batch = batch_dict(stream="events", first=1, last=3)
    batch["rows"][1][5] = attributes
    problem = only_problem(await post(client, batch))
    assert problem["field"] == "rows[1]"
    assert fragment in problem["message"]


async def test_unordered_rows_are_422(client: httpx.AsyncClient) -> None:
    rows = sample_rows(1, 10)
    rows[4], rows[5] = rows[5], rows[4]
    problem = only_problem(await post(client, batch_dict(first=1, last=10, rows=rows)))
    assert problem == {
        "field": "rows[5]",
        "message": "seq 5 does not follow seq 6: rows must be in increasing seq order",
    }


async def test_row_that_is_not_a_list_is_422(client: httpx.AsyncClient) -> None:
    batch = batch_dict(first=1, last=3)
    batch["rows"][1] = {"seq": 2}
    problem = only_problem(await post(client, batch))
    assert problem["field"] == "rows[1]"


async def test_body_that_is_not_an_object_is_422(client: httpx.AsyncClient) -> None:
    problem = only_problem(await post(client, [1, 2, 3]))
    assert problem["field"] == "body"


@pytest.fixture
async def small_client(store: Store) -> Any:
    app = create_app(store, KEYS, max_body=2_000, max_decoded=20_000)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
        yield c


async def test_oversize_compressed_body_is_413(small_client: httpx.AsyncClient) -> None:
    body = gzip.compress(orjson.dumps(batch_dict(first=1, last=100)), compresslevel=0)
    assert len(body) > 2_000
    r = await small_client.post(URL, content=body, headers=headers())
    assert r.status_code == 413
    assert "2000 bytes" in r.json()["detail"]


async def test_oversize_streamed_body_without_length_is_413(small_client: httpx.AsyncClient) -> None:
    async def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 500

    r = await small_client.post(URL, content=chunks(), headers=headers())
    assert r.status_code == 413


async def test_gzip_bomb_is_413_within_the_decoded_limit(small_client: httpx.AsyncClient) -> None:
    body = gzip.compress(b" " * 1_000_000)  # ~1 kB on the wire, 1 MB inflated
    assert len(body) < 2_000
    r = await small_client.post(URL, content=body, headers=headers())
    assert r.status_code == 413
    assert "decompressed" in r.json()["detail"]


async def test_declared_length_over_the_default_limit_is_413(client: httpx.AsyncClient) -> None:
    assert (MAX_BODY, MAX_DECODED) == (32 * 1024 * 1024, 256 * 1024 * 1024)
    body = b"\0" * (MAX_BODY + 1)
    r = await client.post(URL, content=body, headers=headers())
    assert r.status_code == 413


async def test_small_limits_still_accept_a_small_batch(small_client: httpx.AsyncClient) -> None:
    r = await small_client.post(URL, content=gz(batch_dict(first=1, last=10)), headers=headers())
    assert r.status_code == 200, r.text


async def test_stats_contract(client: httpx.AsyncClient) -> None:
    await post(client, batch_dict(gateway="gw1", first=1, last=20))
    await post(client, batch_dict(gateway="gw1", first=1, last=20))
    await post(client, batch_dict(gateway="gw1", stream="events", first=1, last=2))
    await post(client, batch_dict(gateway="gw-2.b", first=1, last=5))
    assert await stats_of(client) == {
        "gateways": {
            "gw1": {"samples": 20, "events": 2, "batches": 2, "duplicate_batches": 1},
            "gw-2.b": {"samples": 5, "events": 0, "batches": 1, "duplicate_batches": 0},
        }
    }


async def test_health(client: httpx.AsyncClient, store: Store) -> None:
    r = await client.get("/health")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    store.close()
    r = await client.get("/health")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable"


async def test_store_failure_is_503_so_gateways_retry(client: httpx.AsyncClient, store: Store) -> None:
    store.close()
    r = await post(client, batch_dict())
    assert r.status_code == 503
    assert "retry" in r.json()["detail"]
    assert r.headers["retry-after"] == "5"
    assert (await client.get("/api/v1/stats")).status_code == 503


async def test_app_without_memory_keys_accepts_only_stored_keys(store: Store) -> None:
    app = create_app(store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
        r = await c.post(URL, content=gz(batch_dict()), headers=headers(key=ANY_KEY))
    assert r.status_code == 401
    with pytest.raises(ValueError, match="empty"):
        create_app(store, {"": None})


class MemorySource:
    """A gateway buffer in memory, for driving the real uploader against the app."""

    def __init__(self, samples: int, events: int) -> None:
        self.rows = {"samples": sample_rows(1, samples), "events": batch_dict(stream="events", last=events)["rows"]}
        self.acked: dict[str, set[int]] = {"samples": set(), "events": set()}

    def unsynced(self, stream: str) -> list[list[Any]]:
        return [r for r in self.rows[stream] if r[0] not in self.acked[stream]]

    async def read(self, stream: str, limit: int, *, newest: bool = False) -> list[list[Any]]:
        rows = self.unsynced(stream)
        return rows[-limit:] if newest else rows[:limit]

    async def ack(self, stream: str, first_seq: int, last_seq: int) -> None:
        self.acked[stream].update(range(first_seq, last_seq + 1))

    async def quarantine(self, refused: Any) -> None:
        raise AssertionError(f"the collector refused a batch of the real uploader: {refused}")

    async def backlog(self) -> dict[str, int]:
        return {s: len(self.unsynced(s)) for s in self.rows}


async def test_the_agents_uploader_is_understood(client: httpx.AsyncClient) -> None:
    from cloud_sync.uploader import Uploader

    source = MemorySource(samples=250, events=3)
    up = Uploader(source, client, gateway_id="gw1", url="http://collector", api_key=BOUND_KEY, batch_size=100)
    assert await up.sync_once() == 253
    assert up.status.last_result == "ok", up.status.last_error
    # the gateway lost its acks: the same batches are re-sent
    source.acked = {"samples": set(range(1, 101)), "events": set()}
    assert await up.sync_once() == 153
    assert await stats_of(client) == {
        "gateways": {"gw1": {"samples": 250, "events": 3, "batches": 4, "duplicate_batches": 3}}
    }
    assert up.status.duplicate_batches == 3


class FlakyStore:
    """A store whose ingest fails while ``down`` is set."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.down = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def ingest(self, batch: Any) -> Any:
        from cloud_sync.collector.store import StoreError

        if self.down:
            raise StoreError("disk on fire")
        return self.store.ingest(batch)


async def test_a_store_outage_is_logged_once_and_its_end_once(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    flaky = FlakyStore(store)
    app = create_app(flaky, KEYS)  # type: ignore[arg-type]
    caplog.set_level("DEBUG", logger="cloud_sync.collector.app")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
        flaky.down = True
        for first in (1, 11, 21):
            r = await c.post(URL, content=gz(batch_dict(first=first, last=first + 9)), headers=headers())
            assert (r.status_code, r.headers["retry-after"]) == (503, "5")
        flaky.down = False
        assert (await post(c, batch_dict(first=1, last=10))).status_code == 200
        assert (await post(c, batch_dict(first=11, last=20))).status_code == 200
    messages = [
        (r.levelname, r.getMessage()) for r in caplog.records if r.getMessage().startswith(("store", "storage"))
    ]
    assert [level for level, _ in messages] == ["ERROR", "DEBUG", "DEBUG", "INFO"], messages
    assert "disk on fire" in messages[0][1]
