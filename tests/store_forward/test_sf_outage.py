"""Outage proof: the collector is stopped for a while, then started again; the whole backlog arrives,
oldest-first, while live data keeps arriving during the drain, and nothing is duplicated."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.store_forward.sf_procs import Agent, Collector, Plant, agent_config, wait_for

pytestmark = pytest.mark.e2e


@contextlib.contextmanager
def outage_rig(tmp_path: Path) -> Iterator[tuple[Plant, Collector, Agent]]:
    """The simulated plant, the collector and an agent (not started) syncing small batches to it with a short
    backoff; all three stopped afterwards."""
    plant = Plant(tmp_path).start()
    collector = Collector(tmp_path).start()
    http = free_port()
    config = agent_config(
        tmp_path, modbus_port=plant.modbus_port, http_port=http, collector_url=collector.url, poll_s=0.05,
        collector="batch_size = 10\ninterval_s = 0.2\nbackoff_initial_s = 0.2\nbackoff_max_s = 0.5",
    )
    agent = Agent(tmp_path, config, http)
    try:
        yield plant, collector, agent
    finally:
        agent.kill()
        collector.stop()
        plant.stop()


def test_collector_outage_backlog_drains_in_order_while_live_data_flows(tmp_path: Path) -> None:
    with outage_rig(tmp_path) as (plant, collector, agent):
        agent.start()
        wait_for(lambda: len(collector.rows()) > 100, 20, "live sync", agent.proc, agent.log)
        # start the outage from live sync (no drain going on, no live tail kept apart from the backlog)
        wait_for(lambda: agent.status()["buffer"]["live_tail"]["samples"] is None
                 and agent.status()["sync"]["mode"] == "live", 30, "live mode", agent.proc, agent.log)
        collector.stop()
        before = max(row[0] for row in collector.rows())
        wait_for(lambda: agent.status()["buffer"]["unsynced"]["samples"] > 4000, 30, "a backlog")
        status = agent.status()
        assert status["sync"]["last_result"] == "failed" and status["sync"]["consecutive_failures"] > 0
        backlog_at_restart = status["buffer"]["last_seq"]["samples"]
        collector.start()
        wait_for(lambda: agent.status()["sync"]["backlog_rows_sent"] > 0 and
                 agent.status()["buffer"]["live_tail"]["samples"] is None, 30, "the backlog to drain")
        status = agent.status()
        assert status["sync"]["live_rows_sent"] > 0 and status["sync"]["drain_rate"] > 0
        time.sleep(0.5)
        plant.stop()
        wait_for(lambda: agent.status()["buffer"]["unsynced"]["samples"] == 0, 20, "the last rows")
        assert agent.stop() == 0
        # exactly the buffer's rows, no duplicates
        received = collector.rows()
        assert received == agent.rows()
        assert [r[0] for r in received] == list(range(1, len(received) + 1))
        after = [(first, last) for first, last, _ in collector.batches() if last > before]
        tail_first = after[0][0]
        assert tail_first > before + 1000  # the first batch after the restart was live data, not the backlog
        backlog = [b for b in after if b[1] < tail_first]
        assert backlog[0][0] == before + 1
        # the backlog arrived oldest-first, contiguous
        assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(backlog))
        assert backlog[-1][1] == tail_first - 1
        # live batches kept arriving while the backlog drained
        last_backlog = after.index(backlog[-1])
        live_during = [b for b in after[1:last_backlog] if b[0] > backlog_at_restart]
        assert live_during, "no live batch arrived during the drain"


def test_outage_during_a_drain_live_data_jumps_ahead_again(tmp_path: Path) -> None:
    """Two outages back to back: the second starts while the first backlog is still draining."""
    with outage_rig(tmp_path) as (plant, collector, agent):
        agent.start()
        wait_for(lambda: len(collector.rows()) > 100, 20, "live sync", agent.proc, agent.log)
        collector.stop()
        wait_for(lambda: agent.status()["buffer"]["unsynced"]["samples"] > 15_000, 60, "a first backlog")
        collector.start()
        # the drain is under way: the live tail is ahead of the backlog, most of it still unsent (the collector
        # takes a moment to stop: the uploader goes on meanwhile)
        wait_for(lambda: (s := agent.status())["sync"]["backlog_rows_sent"] > 0
                 and s["buffer"]["live_tail"]["samples"] is not None, 30, "the first drain")
        collector.stop()
        status = agent.status()
        tail = status["buffer"]["live_tail"]["samples"]
        assert tail is not None and status["buffer"]["unsynced"]["samples"] > 1000, status["buffer"]
        wait_for(lambda: agent.status()["buffer"]["last_seq"]["samples"] > tail[1] + 2000, 30, "a second backlog")
        newest_at_restart = agent.status()["buffer"]["last_seq"]["samples"]
        batches_before = len(collector.batches())
        collector.start()
        wait_for(lambda: (s := agent.status())["sync"]["mode"] == "live" and s["buffer"]["live_tail"]["samples"]
                 is None and s["buffer"]["unsynced"]["samples"] < 100, 60, "both backlogs to drain")
        time.sleep(0.5)
        plant.stop()
        wait_for(lambda: agent.status()["buffer"]["unsynced"]["samples"] == 0, 20, "the last rows")
        status = agent.status()
        assert status["sync"]["duplicate_batches"] == 0
        assert agent.stop() == 0
        # no loss and every row sent once: the collector has exactly the buffer's rows, and the rows of
        # its batches add up to the row count (a batch sent twice would be counted as a duplicate)
        received = collector.rows()
        assert received == agent.rows()
        assert [r[0] for r in received] == list(range(1, len(received) + 1))
        batches = collector.batches()
        assert sum(last - first + 1 for first, last, _ in batches) == len(received)
        assert collector.duplicate_batches() == 0
        # after the second restart the first batch is live data: at the newest rows, far above the old tail
        second = [(first, last) for first, last, _ in batches[batches_before:]]
        assert second[0][0] > tail[1] + 1000 and second[0][1] >= newest_at_restart - 50
        # the backlog arrived oldest-first (the rest of the first gap, then the second) ...
        backlog = [b for b in second if b[1] < second[0][0]]
        assert backlog and all(b[0] > a[1] for a, b in itertools.pairwise(backlog))
        # ... while live batches kept arriving
        last_backlog = second.index(backlog[-1])
        assert [b for b in second[1:last_backlog] if b[0] > newest_at_restart], "no live batch during the drain"
