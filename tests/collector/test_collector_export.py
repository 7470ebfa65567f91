"""``POST /api/v1/export``: formats, filters, the offline OEE reader on the CSV, and streaming (both backends)."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow.parquet as pq
import pytest
import uvicorn
from collector_testkit import ANY_KEY, BOUND_KEY, KEYS, batch_dict, free_port, gz, headers, make_batch

from cloud_sync.collector.app import create_app
from cloud_sync.collector.store import EventQuery, SampleQuery, Store
from edge_agent import cli

T0 = 1763798400.0  # 2025-11-22T08:00:00Z
CHUNK = 50


def machine_hour() -> list[list[Any]]:
    """One hour of cnc-1 (profile cnc_vmc, ideal cycle 12 s) with a 600 s breakdown, plus noise around it.

    run 3000 of 3600 s; good 100 -> 300, scrap 5 -> 10: A = 3000/3600, P = 12 x 205 / 3000, Q = 200/205,
    OEE = 12 x 200 / 3600. A bad-quality reset of the good counter must be skipped by the reader.
    """
    rows: list[tuple[str, str, float, Any, int]] = [
        ("cnc-1", "state", T0, 1, 0),
        ("cnc-1", "good_count", T0, 100, 0),
        ("cnc-1", "scrap_count", T0, 5, 0),
        ("cnc-1", "good_count", T0 + 100.5, 0, 2),  # bad quality: skipped by the reader
        ("cnc-1", "state", T0 + 1800, 3, 0),
        ("cnc-1", "good_count", T0 + 1800, 220, 0),
        ("cnc-1", "state", T0 + 2400, 1, 0),
        ("cnc-1", "good_count", T0 + 3599, 300, 0),
        ("cnc-1", "scrap_count", T0 + 3599, 10, 0),
        ("cnc-1", "mode", T0 + 5, "auto, remote", 0),  # a text value with a comma
        ("cnc-1", "door", T0 + 6, True, 0),
        ("cnc-1", "note", T0 + 7, None, 1),
    ]
    rows += [("cnc-1", "spindle_temp", T0 + 10 * k + 0.25, 40.0 + k / 8, 0) for k in range(360)]
    rows += [("cnc-2", "state", T0 + k, 1, 0) for k in range(0, 3600, 60)]
    rows.sort(key=lambda r: r[2])
    return [[seq, *row] for seq, row in enumerate(rows, start=1)]


@pytest.fixture
async def paged(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    """A collector exporting in pages of CHUNK rows, loaded with machine_hour() on gw1 and a little on gw2."""
    app = create_app(store, KEYS, export_chunk=CHUNK)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://collector") as client:
        rows = machine_hour()
        await send(client, batch_dict(first=1, last=len(rows), rows=rows))
        await send(client, batch_dict(gateway="gw2", first=1, last=2, rows=[
            [1, "cnc-1", "state", T0, 4, 0], [2, "cnc-1", "good_count", T0, 5000, 0],
        ]))
        events = [
            [seq, f"ev-{seq}", T0 + seq, "cnc-1", "state_changed" if seq % 2 else "part_count", {"n": seq, "s": "a,b"}]
            for seq in range(1, 121)
        ]
        await send(client, batch_dict(stream="events", first=1, last=120, rows=events))
        yield client


async def send(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    r = await client.post("/api/v1/batches", content=gz(body), headers=headers())
    assert r.status_code == 200, r.text


async def export(client: httpx.AsyncClient, key: str | None = ANY_KEY, **spec: Any) -> httpx.Response:
    return await client.post("/api/v1/export", json=spec, headers={"x-api-key": key} if key else {})


async def stored(client: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    r = await client.get(path, params={**params, "limit": 10_000}, headers={"x-api-key": ANY_KEY})
    rows: list[dict[str, Any]] = r.json()[path.rsplit("/", 1)[1]]
    return rows


async def test_csv_of_samples_feeds_the_offline_oee_reader(
    paged: httpx.AsyncClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = await export(paged, what="samples", format="csv", gateway="gw1")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="samples-gw1.csv"'
    lines = r.text.splitlines()
    assert lines[0] == "ts,device,tag,value,quality,gateway"
    assert len(lines) == 1 + len(machine_hour())
    assert lines[1] == "2025-11-22T08:00:00+00:00,cnc-1,state,1,0,gw1"
    assert '2025-11-22T08:00:05+00:00,cnc-1,mode,"auto, remote",0,gw1' in lines
    assert "2025-11-22T08:00:10.250000+00:00,cnc-1,spindle_temp,40.125,0,gw1" in lines
    assert any(line.startswith("2025-11-22T08:00:07+00:00,cnc-1,note,,1,") for line in lines)

    path = tmp_path / "export.csv"
    path.write_bytes(r.content)
    argv = ["analyze", "oee", "--samples", str(path), "--profile", "cnc_vmc", "--device", "cnc-1",
            "--from", "2025-11-22T08:00:00Z", "--to", "2025-11-22T09:00:00Z"]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    assert err == ""  # every exported row was readable
    figures = json.loads(out)
    assert (figures["planned_time_s"], figures["run_time_s"], figures["downtime_s"]) == (3600.0, 3000.0, 600.0)
    assert (figures["good_count"], figures["scrap_count"]) == (200, 5)
    assert figures["availability"] == pytest.approx(3000 / 3600)
    assert figures["performance"] == pytest.approx(12 * 205 / 3000)
    assert figures["oee"] == pytest.approx(12 * 200 / 3600)


async def test_jsonl_is_the_rows_of_the_query_api_in_order(paged: httpx.AsyncClient) -> None:
    window: dict[str, Any] = {"from": T0 + 1000, "to": "2025-11-22T08:30:00Z"}
    r = await export(paged, what="samples", format="jsonl", device="cnc-1", **window)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-ndjson"
    got = [orjson.loads(line) for line in r.content.splitlines()]
    want = await stored(paged, "/api/v1/samples", device="cnc-1", **{"from": T0 + 1000, "to": T0 + 1800})
    assert got == want and len(got) > CHUNK  # several pages, nothing lost or repeated at their seams

    r = await export(paged, what="events", format="jsonl", kind="part_count", limit=7)
    got = [orjson.loads(line) for line in r.content.splitlines()]
    assert got == (await stored(paged, "/api/v1/events", kind="part_count"))[:7]

    r = await export(paged, what="samples", format="jsonl", limit=CHUNK * 2)  # a limit on a page boundary
    assert len(r.content.splitlines()) == CHUNK * 2


async def test_csv_of_events_and_parquet(paged: httpx.AsyncClient) -> None:
    r = await export(paged, what="events", format="csv", kind="state_changed")
    lines = r.text.splitlines()
    assert lines[0] == "ts,gateway,device,kind,event_id,attributes"
    assert lines[1] == '2025-11-22T08:00:01+00:00,gw1,cnc-1,state_changed,ev-1,"{""n"":1,""s"":""a,b""}"'
    assert len(lines) == 61

    r = await export(paged, what="samples", format="parquet", gateway="gw1")
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == 'attachment; filename="samples-gw1.parquet"'
    data = pq.ParquetFile(io.BytesIO(r.content))
    rows = len(machine_hour())
    assert data.metadata.num_rows == rows
    assert data.num_row_groups == -(-rows // CHUNK)  # one row group per page
    table = data.read().to_pylist()
    want = await stored(paged, "/api/v1/samples", gateway="gw1")
    assert [(t["seq"], t["device"], t["tag"], t["quality"]) for t in table] == [
        (w["seq"], w["device"], w["tag"], w["quality"]) for w in want
    ]
    assert [t["ts"].timestamp() for t in table] == [w["ts"] for w in want]
    by_tag = {t["tag"]: t for t in table}
    assert (by_tag["mode"]["value"], by_tag["mode"]["value_text"]) == (None, "auto, remote")
    assert (by_tag["door"]["value"], by_tag["door"]["value_text"]) == (1.0, None)

    r = await export(paged, what="events", format="parquet", kind="part_count", device="cnc-1")
    table = pq.read_table(io.BytesIO(r.content)).to_pylist()
    assert len(table) == 60 and json.loads(table[0]["attributes"]) == {"n": 2, "s": "a,b"}

    r = await export(paged, what="samples", format="parquet", tag="no-such-tag")
    assert r.status_code == 200 and pq.read_table(io.BytesIO(r.content)).num_rows == 0
    r = await export(paged, what="samples", format="csv", tag="no-such-tag")
    assert r.text == "ts,device,tag,value,quality,gateway\n"


async def test_bad_requests_and_keys(paged: httpx.AsyncClient) -> None:
    assert (await export(paged, key=None, what="samples")).status_code == 401
    r = await export(paged, key=BOUND_KEY, what="samples", gateway="gw2")
    assert r.status_code == 403
    r = await export(paged, key=BOUND_KEY, what="samples", format="jsonl")
    assert {orjson.loads(line)["gateway_id"] for line in r.content.splitlines()} == {"gw1"}
    for spec, field in (
        ({"what": "rows"}, "what"),
        ({"what": "samples", "format": "xlsx"}, "format"),
        ({"what": "events", "tag": "x"}, "tag"),
        ({"what": "samples", "kind": "x"}, "kind"),
        ({"what": "samples", "from": "yesterday"}, "from"),
        ({"what": "samples", "limit": 0}, "limit"),
        ({"what": "samples", "colour": "red"}, "colour"),
    ):
        r = await export(paged, **spec)
        assert r.status_code == 400, (spec, r.text)
        assert r.json()["errors"][0]["field"] == field, (spec, r.json())


class GatedStore:
    """A store that counts the pages read and holds the third one back until the client has received bytes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pages = 0
        self.largest_page = 0
        self.client_has_bytes = threading.Event()
        self.streamed: bool | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def samples(self, query: SampleQuery) -> list[dict[str, Any]]:
        self.pages += 1
        self.largest_page = max(self.largest_page, query.limit)
        if self.pages == 3:  # had the answer been buffered, nothing would reach the client before the end
            self.streamed = self.client_has_bytes.wait(timeout=10)
        return self.store.samples(query)

    def events(self, query: EventQuery) -> list[dict[str, Any]]:
        return self.store.events(query)


@pytest.fixture
def served(store: Store) -> Iterator[tuple[str, GatedStore]]:
    """The app on a real HTTP server (in a thread), over a GatedStore, exporting in pages of 500 rows."""
    gated = GatedStore(store)
    app = create_app(gated, KEYS, export_chunk=500)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.config.port}", gated
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_large_export_is_streamed_page_by_page(served: tuple[str, GatedStore]) -> None:
    url, gated = served
    for first in (1, 10_001):
        gated.store.ingest(make_batch(first=first, last=first + 9_999))
    received = 0
    pages_at_first_bytes = None
    with httpx.stream(
        "POST", f"{url}/api/v1/export", json={"what": "samples", "format": "jsonl"},
        headers={"x-api-key": ANY_KEY}, timeout=30,
    ) as r:
        assert r.status_code == 200
        seqs = []
        for line in r.iter_lines():
            if pages_at_first_bytes is None:
                pages_at_first_bytes = gated.pages
                gated.client_has_bytes.set()
            received += 1
            seqs.append(orjson.loads(line)["seq"])
    assert gated.streamed is True
    assert pages_at_first_bytes is not None and pages_at_first_bytes <= 3
    assert received == 20_000 and sorted(seqs) == list(range(1, 20_001)) and len(set(seqs)) == 20_000
    assert gated.pages == 41 and gated.largest_page == 500  # 40 full pages and the empty one that ends it
