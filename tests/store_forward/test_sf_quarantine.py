"""Quarantined batches: the collector refuses samples batches with 422 (a validation bug), the agent sets
them aside and goes on; ``edge-agent quarantine list`` shows them, ``replay`` while the collector still
refuses records the answer, and after the collector is fixed ``replay --all`` delivers every one: the
collector ends with exactly the buffer's rows, and each replay left a ``batch_replayed`` event."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud_sync.uploader import body_coding, encode_batch
from edge_agent.buffer import Buffer, QuarantineRecord
from edge_agent.buffer.quarantine import QuarantineFile, replay
from edge_agent.model import Sample
from tests.conftest import free_port
from tests.store_forward.sf_procs import API_KEY, Agent, Collector, Plant, agent_config, wait_for


class FlakyCollector(Collector):
    """The real collector app; while ``flag`` exists it answers samples batches with 422."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.flag = tmp / "refuse-samples"
        self.args = [sys.executable, "-m", "tests.store_forward.flaky_collector", "--db", str(self.db),
                     "--port", str(self.port), "--key", API_KEY, "--refuse-flag", str(self.flag)]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_agent", "quarantine", *args], capture_output=True,
                          text=True, timeout=60)


@pytest.mark.e2e
def test_quarantined_batches_are_listed_and_replayed_once_the_collector_is_fixed(tmp_path: Path) -> None:
    plant = Plant(tmp_path).start()
    collector = FlakyCollector(tmp_path)
    collector.flag.touch()
    collector.start()
    http = free_port()
    config = agent_config(tmp_path, modbus_port=plant.modbus_port, http_port=http, collector_url=collector.url,
                          collector="batch_size = 50\ninterval_s = 0.2\nbackoff_initial_s = 0.2")
    agent = Agent(tmp_path, config, http)
    try:
        agent.start()
        wait_for(lambda: agent.status()["sync"]["quarantined_batches"] >= 3, 30, "quarantined batches",
                 agent.proc, agent.log)
        # still refusing: a replay records the answer and fails
        listed = json.loads(cli("list", "--config", str(config), "--json").stdout)
        assert len(listed) >= 3 and all(e["status"] == 422 and e["replayed_at"] is None for e in listed)
        assert "unit 'mm/min' is not known" in listed[0]["answer"]
        done = cli("replay", "--config", str(config), str(listed[0]["id"]))
        assert done.returncode == 1 and "refused 422" in done.stdout, done.stdout + done.stderr
        text = cli("list", "--config", str(config)).stdout
        assert f"{listed[0]['batch_id']}" in text and "refused (422)" in text and "not replayed" in text

        collector.flag.unlink()  # the collector is fixed
        wait_for(lambda: len(collector.rows()) > 100, 30, "samples accepted again")
        plant.stop()
        wait_for(lambda: agent.status()["buffer"]["unsynced"]["samples"] == 0, 30, "the live rows")
        done = cli("replay", "--config", str(config), "--all")
        assert done.returncode == 0, done.stdout + done.stderr
        entries = json.loads(cli("list", "--config", str(config), "--json").stdout)
        assert done.stdout.count("delivered") == len(entries) >= len(listed)
        assert all(e["replay_status"] == 200 for e in entries)
        assert cli("replay", "--config", str(config), "--all").stdout.strip() == "nothing to replay"
        missing = cli("replay", "--config", str(config), "999999")
        assert missing.returncode == 1 and "no quarantined batch with id 999999" in missing.stderr

        # the running agent sends the batch_replayed events; the collector has every row exactly once
        wait_for(lambda: agent.status()["buffer"]["unsynced"]["events"] == 0
                 and sum(1 for e in collector.rows("events") if e[2] == "batch_replayed") == len(entries) + 1,
                 30, "the batch_replayed events")
        assert agent.stop() == 0
        received = collector.rows()
        assert received == agent.rows()
        assert [r[0] for r in received] == list(range(1, len(received) + 1))
        kinds = [e[2] for e in collector.rows("events")]
        assert kinds.count("batch_quarantined") == len(entries)
    finally:
        agent.kill()
        collector.stop()
        plant.stop()


def samples(n: int) -> list[Sample]:
    return [Sample("d", "t", float(i), float(i)) for i in range(n)]


async def test_a_batch_whose_body_was_not_kept_is_rebuilt_from_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    buffer = Buffer(path)
    buffer.append(samples(30))
    for first in (1, 11, 21):
        buffer.quarantine(QuarantineRecord(f"gw:samples:{first}:{first + 9}", "samples", first, first + 9, 10,
                                           422, "bad", 1.0, None))
    buffer.conn.execute("DELETE FROM samples WHERE seq = 25")  # pruned: the third batch cannot be rebuilt
    buffer.close()
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        import gzip

        import orjson

        assert request.headers["content-encoding"] == "gzip"
        bodies.append(orjson.loads(gzip.decompress(request.content)))
        return httpx.Response(200 if len(bodies) == 1 else 409, json={"detail": "conflict"})

    quarantine = QuarantineFile(path)
    entries = quarantine.entries()
    assert [e.body_kept for e in entries] == [False, False, False]
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        results = await replay(quarantine, entries, client, url="http://c", api_key="k", gateway_id="gw")
    assert [r.result for r in results] == ["delivered", "refused", "gone"]
    assert [row[0] for row in bodies[0]["rows"]] == list(range(1, 11)) and bodies[0]["batch_id"] == "gw:samples:1:10"
    after = quarantine.entries()
    assert [(e.replay_status, e.delivered) for e in after] == [(200, True), (409, False), (None, False)]
    events = quarantine.conn.execute("SELECT kind, attributes FROM events ORDER BY seq").fetchall()
    assert [json.loads(a)["result"] for k, a in events if k == "batch_replayed"] == ["delivered", "refused"]
    quarantine.close()


async def test_replay_stops_at_an_unreachable_collector_and_records_nothing(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    buffer = Buffer(path)
    buffer.append(samples(20))
    body = encode_batch("gw", "samples", buffer.read_unsynced("samples", 10), {}, compression="zstd")
    assert body_coding(body) == "zstd"
    for first in (1, 11):
        buffer.quarantine(QuarantineRecord(f"gw:samples:{first}:{first + 9}", "samples", first, first + 9, 10,
                                           422, "bad", 1.0, body))
    buffer.close()

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down", request=request)

    quarantine = QuarantineFile(path)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        results = await replay(quarantine, quarantine.entries(), client, url="http://c", api_key="k",
                               gateway_id="gw")
    assert [r.result for r in results] == ["unreachable"]
    assert all(e.replayed_at is None for e in quarantine.entries())
    assert quarantine.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0
    quarantine.close()


def test_a_missing_buffer_file_is_named(tmp_path: Path) -> None:
    from edge_agent.errors import StoreError

    with pytest.raises(StoreError, match="no buffer file"):
        QuarantineFile(tmp_path / "nothing.sqlite")
