"""Disk full and read-only file system: writes fail with a clear message and a status flag, nothing
accepted is lost (the bounded queue holds it, producers wait, commit callbacks such as MQTT acks do not
run), the page and the latest values keep being served, and the recovery is logged once.

The failure is made with SQLite's own switches on the live connection (the tests run as root, so a
read-only directory would not stop the writes): ``PRAGMA max_page_count`` makes the file unable to grow
exactly like a full disk (SQLITE_FULL), ``PRAGMA query_only`` refuses writes like a read-only mount
(SQLITE_READONLY).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from pathlib import Path

import httpx
import pytest

from edge_agent.buffer import Buffer
from edge_agent.buffer.writer import Item, WriteQueue, Writer
from edge_agent.model import Event, Sample
from tests.conftest import free_port
from tests.integration.helpers import eventually, running_agent
from tests.store_forward.sf_procs import Plant, agent_config


def batch(start: int, n: int = 50) -> list[Sample]:
    return [Sample("d", "t", float(i), float(i)) for i in range(start, start + n)]


def fill_disk(buffer: Buffer) -> None:
    pages = buffer.conn.execute("PRAGMA page_count").fetchone()[0]
    buffer.conn.execute(f"PRAGMA max_page_count={pages}")


def free_disk(buffer: Buffer) -> None:
    buffer.conn.execute("PRAGMA max_page_count=1073741823")


async def test_writer_holds_batches_and_acks_nothing_until_the_disk_heals(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    buffer = Buffer(tmp_path / "b.sqlite")
    queue = WriteQueue(max_samples=500)
    writer = Writer(buffer, queue, write_batch=100)
    events: list[Event] = []
    writer.on_event = events.append
    acked: list[int] = []
    task = asyncio.create_task(writer.run())
    try:
        await writer.call(fill_disk, buffer)
        caplog.set_level(logging.DEBUG, logger="edge_agent.buffer")
        # more than the queue holds: the producer must be made to wait
        producer = asyncio.create_task(_produce(queue, acked, batches=40))
        await eventually(lambda: writer.health()["state"] == "failing", 5, "the failure to be reported")
        await asyncio.sleep(1.0)
        health = writer.health()
        assert health["kind"] == "disk_full" and "disk full" in (health["error"] or "")
        assert not producer.done() and len(queue) <= 500 + 50  # back-pressure, bounded memory
        on_disk = (await writer.call(buffer.stats)).samples_rows
        assert len(acked) * 50 == on_disk < 40 * 50  # nothing acknowledged that is not on disk
        assert [e.kind for e in events] == ["buffer_write_failed"]
        await writer.call(free_disk, buffer)
        await asyncio.wait_for(producer, 20)
        await eventually(lambda: len(acked) == 40, 10, "every batch committed and acknowledged")
        assert writer.health()["state"] == "ok"
        assert [e.kind for e in events] == ["buffer_write_failed", "buffer_write_recovered"]
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        recoveries = [r for r in caplog.records if "recovered" in r.getMessage()]
        assert len(errors) == 1 and "disk full" in errors[0].getMessage()
        assert len(recoveries) == 1 and recoveries[0].levelno == logging.INFO
        rows = await writer.call(buffer.read_unsynced, "samples", 10_000)
        assert [r[4] for r in rows] == [float(i) for i in range(40 * 50)]  # all of it, in order
    finally:
        writer.stop()
        await task
        writer.close()


async def _produce(queue: WriteQueue, acked: list[int], batches: int) -> None:
    for i in range(batches):
        await queue.put(Item(batch(i * 50), (), functools.partial(acked.append, i)))


async def test_read_only_file_system_is_reported_and_recovers(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite")
    writer = Writer(buffer, WriteQueue(1000), write_batch=100)
    task = asyncio.create_task(writer.run())
    try:
        await writer.call(buffer.conn.execute, "PRAGMA query_only=1")
        await writer.queue.put(Item(batch(0), (), None))
        await eventually(lambda: writer.health()["kind"] == "read_only", 5, "read-only reported")
        assert "read-only" in (writer.health()["error"] or "")
        await writer.call(buffer.conn.execute, "PRAGMA query_only=0")
        await eventually(lambda: writer.health()["state"] == "ok" and writer.committed_samples == 50, 15,
                         "the write to go through")
    finally:
        writer.stop()
        await task
        writer.close()


@pytest.mark.e2e
async def test_agent_with_a_full_disk_keeps_serving_and_loses_nothing(tmp_path: Path) -> None:
    plant = Plant(tmp_path).start()
    http = free_port()
    config = agent_config(tmp_path, modbus_port=plant.modbus_port, http_port=http, collector_url=None,
                          buffer="queue_size = 600\nwrite_batch = 100", poll_s=0.05)
    base = f"http://127.0.0.1:{http}"
    try:
        async with running_agent(config) as agent, httpx.AsyncClient(base_url=base, timeout=5) as client:
            assert agent.writer is not None and agent.buffer is not None
            writer, buffer = agent.writer, agent.buffer
            await eventually(lambda: writer.committed_samples > 300, 20, "samples stored")
            await writer.call(fill_disk, buffer)
            await eventually(lambda: writer.last_error is not None, 10, "the write failure")
            await asyncio.sleep(1.5)
            status = (await client.get("/api/v1/status")).json()
            assert status["buffer"]["write"]["state"] == "failing"
            assert status["buffer"]["write"]["kind"] == "disk_full"
            assert status["buffer"]["queued"] <= 600 + 2 * 15  # bounded: the pollers were slowed down
            accepted = sum(s.status.samples for s in agent.sinks.values())
            await asyncio.sleep(1.0)
            # back-pressure: the pollers wait instead of piling up samples
            assert sum(s.status.samples for s in agent.sinks.values()) - accepted <= 2 * 15
            latest = (await client.get("/api/v1/latest")).json()
            assert set(latest) == {"cnc-1", "cnc-2"} and latest["cnc-1"]["good_count"]["value"] >= 0
            assert (await client.get("/health")).status_code == 200
            await writer.call(free_disk, buffer)
            await eventually(lambda: writer.last_error is None, 15, "recovery")
            committed = writer.committed_samples
            await eventually(lambda: writer.committed_samples > committed + 100, 10, "samples flowing again")
            plant.stop()
            await asyncio.sleep(0.5)
            accepted = sum(s.status.samples for s in agent.sinks.values())
    finally:
        plant.stop()
    with sqlite3.connect(tmp_path / "data" / "buffer.sqlite") as conn:
        stored = conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
        kinds = [k for (k,) in conn.execute("SELECT kind FROM events WHERE device = '_gateway' ORDER BY seq")]
    assert stored == accepted  # every sample a device handed over is on disk
    assert kinds.count("buffer_write_failed") == 1 and kinds.count("buffer_write_recovered") == 1
