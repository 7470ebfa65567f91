"""An outage that starts while an earlier backlog is still draining: the live tail jumps to the newest
rows again (a second island), both gaps drain oldest-first, no row is lost or sent twice.

Real buffer and uploader; the collector is an ``httpx.MockTransport`` that can be switched off."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import httpx
import orjson
import pytest

from cloud_sync.uploader import Uploader
from edge_agent.buffer import Buffer
from edge_agent.buffer.ledger import MAX_ISLANDS, NotContiguous
from edge_agent.model import Sample
from tests.unit.test_uploader import BufferSource


def samples(n: int, start: int = 0) -> list[Sample]:
    return [Sample("d", "t", float(start + i), float(start + i)) for i in range(n)]


class Plant:
    """The collector (up or down) and the plant: every request that reaches the collector brings
    ``per_batch`` new rows into the buffer, as live data would."""

    def __init__(self, buffer: Buffer, per_batch: int = 10) -> None:
        self.buffer = buffer
        self.per_batch = per_batch
        self.up = True
        self.received: list[tuple[int, int]] = []
        self.fail_after: int | None = None  # go down after this many batches

    def produce(self, n: int) -> None:
        last = self.buffer.stats().last_seq["samples"]
        self.buffer.append(samples(n, start=last))

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.fail_after is not None and len(self.received) >= self.fail_after:
            self.up, self.fail_after = False, None
        if not self.up:
            raise httpx.ConnectError("collector down", request=request)
        batch = orjson.loads(gzip.decompress(request.content))
        if batch["stream"] == "samples":
            self.received.append((batch["first_seq"], batch["last_seq"]))
        self.produce(self.per_batch)
        return httpx.Response(200, json={"duplicate_batch": False})


def make(buffer: Buffer, plant: Plant) -> Uploader:
    client = httpx.AsyncClient(transport=httpx.MockTransport(plant.handler))
    return Uploader(BufferSource(buffer), client, gateway_id="gw", url="http://c", api_key="k", batch_size=100,
                    drain_threshold=400, live_every_s=0.0, backoff_initial_s=0.0, backoff_max_s=0.0)


async def test_outage_during_a_drain_lets_live_data_jump_ahead_again(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite")
    plant = Plant(buffer)
    up = make(buffer, plant)
    plant.produce(3000)  # the backlog of a first outage
    plant.fail_after = 12  # the second outage starts in the middle of the drain
    await up.sync_once()
    assert up.status.last_result == "failed"
    first_drain = list(plant.received)
    assert first_drain[0] == (2901, 3000)  # the live tail went ahead
    stats = buffer.stats()
    assert stats.live_tail["samples"] is not None and stats.unsynced["samples"] > 2000
    tail_end, acked = stats.live_tail["samples"][1], stats.acked_seq["samples"]
    plant.produce(2000)  # rows of the second outage pile up behind the tail
    newest = buffer.stats().last_seq["samples"]

    plant.up = True
    for _ in range(10):
        await up.sync_once()
    assert up.status.mode == "live"
    plant.per_batch = 0  # the plant stops: the last live rows go out
    await up.sync_once()
    assert buffer.backlog()["samples"] == 0
    second = plant.received[len(first_drain):]
    # after recovery the first batch is the newest rows, not the rows right above the old tail
    assert second[0] == (newest - 99, newest)
    assert second[0][0] > tail_end + 1000
    # no loss, nothing sent twice: every seq in exactly one batch
    sent = sorted(seq for first, last in plant.received for seq in range(first, last + 1))
    assert sent == list(range(1, len(sent) + 1))
    assert len(sent) == buffer.stats().last_seq["samples"]
    # the backlog (rows below the newest at recovery) arrived oldest-first, from the watermark on
    backlog = [b for b in second if b[1] < newest - 99]
    assert all(b[0] > a[1] for a, b in itertools.pairwise(backlog))
    assert backlog[0][0] == acked + 1
    # live batches (above the newest row at recovery) arrived while the second drain went on
    live = [i for i, b in enumerate(second) if b[0] > newest]
    last_backlog = max(i for i, b in enumerate(second) if b[1] < newest - 99)
    assert live and live[0] < last_backlog
    stats = buffer.stats()
    assert stats.islands["samples"] == [] and stats.live_tail["samples"] is None
    assert up.status.rows_sent["samples"] == len(sent)
    buffer.close()


def test_islands_survive_a_restart_and_merge_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buffer = Buffer(path)
    buffer.append(samples(1000))
    assert [r[0] for r in buffer.read_newest("samples", 10)] == list(range(991, 1001))
    buffer.ack("samples", 1000, first_seq=991)  # the first live tail
    buffer.append(samples(100, start=1000))
    # 100 rows above the tail, more than 4 batches of 10: the tail jumps to the newest rows
    assert [r[0] for r in buffer.read_newest("samples", 10)] == list(range(1091, 1101))
    buffer.ack("samples", 1100, first_seq=1091)
    assert buffer.stats().islands["samples"] == [[991, 1000], [1091, 1100]]
    assert buffer.backlog()["samples"] == 990 + 90
    with pytest.raises(NotContiguous):
        buffer.ack("samples", 1050, first_seq=1040)  # would skip 1001..1039
    buffer.close()

    buffer = Buffer(path)
    assert buffer.stats().islands["samples"] == [[991, 1000], [1091, 1100]]
    assert buffer.stats().live_tail["samples"] == [1091, 1100]
    assert buffer.backlog()["samples"] == 1080
    # the backlog reads the oldest gap first, then the next one
    assert buffer.read_unsynced("samples", 5000)[-1][0] == 990
    buffer.ack("samples", 990, first_seq=1)
    assert buffer.stats().acked_seq["samples"] == 1000
    assert [r[0] for r in buffer.read_unsynced("samples", 5000)] == list(range(1001, 1091))
    buffer.ack("samples", 1090, first_seq=1001)
    stats = buffer.stats()
    assert stats.acked_seq["samples"] == 1100 and stats.islands["samples"] == [] and stats.unsynced["samples"] == 0
    buffer.close()


def test_the_number_of_islands_is_bounded(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite")
    buffer.append(samples(10))
    for _ in range(MAX_ISLANDS + 3):
        buffer.append(samples(100))
        rows = buffer.read_newest("samples", 10)
        buffer.ack("samples", rows[-1][0], first_seq=rows[0][0])
    islands = buffer.stats().islands["samples"]
    assert len(islands) == MAX_ISLANDS  # at the bound the tail goes on from the newest island
    assert buffer.read_newest("samples", 10)[0][0] == islands[-1][1] + 1
    # nothing is lost: the gaps drain oldest-first and everything merges
    while rows := buffer.read_unsynced("samples", 1000):
        buffer.ack("samples", rows[-1][0], first_seq=rows[0][0])
    stats = buffer.stats()
    assert stats.unsynced["samples"] == 0 and stats.acked_seq["samples"] == stats.last_seq["samples"]
    assert stats.islands["samples"] == []
    buffer.close()


def test_an_old_single_tail_is_migrated_into_an_island(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buffer = Buffer(path)
    buffer.append(samples(100))
    buffer.conn.execute("DELETE FROM _migrations WHERE name IN ('0006_sync_islands', '0007_quarantine_replay')")
    buffer.conn.execute("DROP TABLE sync_islands")
    for column in ("replayed_at", "replay_status", "replay_answer"):
        buffer.conn.execute(f"ALTER TABLE quarantine DROP COLUMN {column}")
    buffer.conn.execute("UPDATE sync_state SET tail_first = 81, tail_acked = 100 WHERE stream = 'samples'")
    buffer.close()
    buffer = Buffer(path)
    assert buffer.stats().islands["samples"] == [[81, 100]]
    assert buffer.backlog()["samples"] == 80
    buffer.close()
