"""Outage proof: the collector is stopped for a while, then started again; the whole backlog arrives,
oldest-first, while live data keeps arriving during the drain, and nothing is duplicated."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.store_forward.sf_procs import Agent, Collector, Plant, agent_config, wait_for

pytestmark = pytest.mark.e2e


def test_collector_outage_backlog_drains_in_order_while_live_data_flows(tmp_path: Path) -> None:
    plant = Plant(tmp_path).start()
    collector = Collector(tmp_path).start()
    http = free_port()
    config = agent_config(
        tmp_path, modbus_port=plant.modbus_port, http_port=http, collector_url=collector.url, poll_s=0.05,
        collector="batch_size = 10\ninterval_s = 0.2\nbackoff_initial_s = 0.2\nbackoff_max_s = 0.5",
    )
    agent = Agent(tmp_path, config, http)
    try:
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
    finally:
        agent.kill()
        collector.stop()
        plant.stop()
