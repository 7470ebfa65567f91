"""``Content-Encoding: zstd``: accepted in one or several frames, with or without a declared size, refused
when damaged (400) or when it inflates past the decoded limit (413); the agent's uploader sends it and
falls back to gzip when a collector answers 415."""

from __future__ import annotations

import io
from typing import Any

import httpx
import orjson
import pytest
import zstandard
from collector_testkit import BOUND_KEY, KEYS, batch_dict, headers

from cloud_sync.collector.app import create_app
from cloud_sync.collector.store import Store
from cloud_sync.uploader import Uploader

URL = "/api/v1/batches"


def zst(obj: Any) -> bytes:
    return zstandard.ZstdCompressor(level=1).compress(orjson.dumps(obj))


def zst_streamed(data: bytes) -> bytes:
    """One frame without its size in the header, as a streaming compressor writes it."""
    out = io.BytesIO()
    writer = zstandard.ZstdCompressor(level=1).stream_writer(out, closefd=False)
    writer.write(data)
    writer.flush(zstandard.FLUSH_FRAME)
    return out.getvalue()


async def test_zstd_batch_is_stored(client: httpx.AsyncClient) -> None:
    r = await client.post(URL, content=zst(batch_dict(first=1, last=5)), headers=headers(encoding="zstd"))
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 5


async def test_zstd_without_declared_size_and_in_several_frames_is_accepted(client: httpx.AsyncClient) -> None:
    raw = orjson.dumps(batch_dict(first=1, last=5))
    assert zstandard.frame_content_size(zst_streamed(raw)) == -1
    r = await client.post(URL, content=zst_streamed(raw), headers=headers(encoding="zstd"))
    assert r.status_code == 200, r.text
    raw = orjson.dumps(batch_dict(first=6, last=9))
    body = zstandard.ZstdCompressor().compress(raw[:40]) + zst_streamed(raw[40:])
    r = await client.post(URL, content=body, headers=headers(encoding="zstd"))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"this is not zstd", "not valid zstd"),
        (zst(batch_dict())[:-8], "truncated"),
        (zst(batch_dict()) + b"trailing junk", "not valid zstd"),
        (b"", "not valid zstd"),
    ],
)
async def test_bad_zstd_is_400(client: httpx.AsyncClient, body: bytes, fragment: str) -> None:
    r = await client.post(URL, content=body, headers=headers(encoding="zstd"))
    assert r.status_code == 400
    assert fragment in r.json()["detail"]


@pytest.fixture
async def small_client(store: Store) -> Any:
    app = create_app(store, KEYS, max_body=2_000, max_decoded=20_000)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
        yield c


@pytest.mark.parametrize("declared", [True, False])
async def test_zstd_bomb_is_413_within_the_decoded_limit(small_client: httpx.AsyncClient, declared: bool) -> None:
    data = b" " * 10_000_000
    body = zstandard.ZstdCompressor().compress(data) if declared else zst_streamed(data)
    assert len(body) < 2_000
    r = await small_client.post(URL, content=body, headers=headers(encoding="zstd"))
    assert r.status_code == 413
    assert "decompressed" in r.json()["detail"]


class Source:
    def __init__(self, samples: int) -> None:
        self.rows = [[i, "cnc-1", "spindle_speed", 1.7e9 + i, float(i), 0] for i in range(1, samples + 1)]
        self.acked: set[int] = set()

    async def read(self, stream: str, limit: int, *, newest: bool = False) -> list[list[Any]]:
        if stream == "events":
            return []
        return [r for r in self.rows if r[0] not in self.acked][:limit]

    async def ack(self, stream: str, first_seq: int, last_seq: int) -> None:
        self.acked.update(range(first_seq, last_seq + 1))

    async def quarantine(self, refused: Any) -> None:
        raise AssertionError(f"refused: {refused}")

    async def backlog(self) -> dict[str, int]:
        return {"samples": len(self.rows) - len(self.acked), "events": 0}


async def test_the_uploader_sends_zstd(client: httpx.AsyncClient) -> None:
    source = Source(250)
    up = Uploader(source, client, gateway_id="gw1", url="http://collector", api_key=BOUND_KEY, batch_size=100,
                  compression="zstd")
    assert await up.sync_once() == 250
    assert up.status.compression == "zstd-1" and up.status.last_result == "ok"


async def test_the_uploader_falls_back_to_gzip_when_the_collector_predates_zstd(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    codings: list[str] = []

    async def older_collector(request: httpx.Request) -> httpx.Response:
        coding = request.headers["content-encoding"]
        codings.append(coding)
        if coding == "zstd":
            return httpx.Response(415, json={"detail": "unsupported content-encoding 'zstd': send gzip or identity"})
        return await client.post(URL, content=request.content, headers=dict(request.headers))

    source = Source(250)
    async with httpx.AsyncClient(transport=httpx.MockTransport(older_collector)) as old:
        up = Uploader(source, old, gateway_id="gw1", url="http://collector", api_key=BOUND_KEY, batch_size=100,
                      compression="zstd")
        assert await up.sync_once() == 250
    assert codings == ["zstd", "gzip", "gzip", "gzip"]
    assert up.status.compression == "gzip-1" and up.status.last_result == "ok"
    assert "does not accept zstd" in caplog.text


def test_an_unknown_compression_is_refused() -> None:
    with pytest.raises(ValueError, match="compression must be one of gzip, zstd"):
        Uploader(Source(1), httpx.AsyncClient(), gateway_id="gw", url="http://c", api_key="k", compression="br")
