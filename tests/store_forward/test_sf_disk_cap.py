"""Disk cap proof: a tiny byte cap with the collector down. Drops happen oldest-first, every one is
counted (missing seqs == the dropped counter == the sum over the buffer_overflow events), events are
never dropped, the file stays at the cap, and the agent stays up and reports it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from tests.conftest import free_port
from tests.store_forward.sf_procs import Agent, Plant, agent_config, wait_for

pytestmark = pytest.mark.e2e
CAP = 192 * 1024


def test_tiny_cap_with_collector_down_drops_oldest_counted_exactly(tmp_path: Path) -> None:
    plant = Plant(tmp_path).start()
    http = free_port()
    config = agent_config(
        tmp_path, modbus_port=plant.modbus_port, http_port=http, collector_url=f"http://127.0.0.1:{free_port()}",
        buffer=f"max_bytes = {CAP}\noverflow_event_interval_s = 1.0\nwrite_batch = 100",
        collector="interval_s = 0.5\nbackoff_max_s = 1.0",
    )
    agent = Agent(tmp_path, config, http)
    try:
        agent.start()
        wait_for(lambda: agent.status()["buffer"]["dropped"].get("dropped_oldest", 0) > 3000, 40,
                 "drops at the cap", agent.proc, agent.log)
        status = agent.status()
        assert agent.healthy() and status["buffer"]["overflow_events"] >= 1
        assert status["buffer"]["used_bytes"] <= CAP * 1.1
        assert all(d["state"] == "connected" for d in status["devices"].values())
        latest = status["buffer"]["last_seq"]["samples"]
        wait_for(lambda: agent.status()["buffer"]["last_seq"]["samples"] > latest + 200, 10, "samples still stored")
        plant.stop()
        assert agent.stop() == 0
    finally:
        agent.kill()
        plant.stop()
    seqs = [row[0] for row in agent.rows()]
    dropped = agent.counters()["dropped_oldest"]
    last = seqs[-1]
    # exactly the oldest rows are gone, and each one is counted
    assert seqs == list(range(dropped + 1, last + 1))
    with sqlite3.connect(agent.buffer) as conn:
        events = list(conn.execute("SELECT seq, kind, attributes FROM events ORDER BY seq"))
        pages = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
    assert [e[0] for e in events] == list(range(1, len(events) + 1))  # no event dropped
    overflow = [orjson.loads(attrs) for _, kind, attrs in events if kind == "buffer_overflow"]
    assert len(overflow) >= 2  # aggregated: about one per interval, not one per write
    assert sum(o["dropped_oldest"] for o in overflow) == dropped
    assert overflow[-1]["total_dropped_oldest"] == dropped and overflow[0]["policy"] == "drop_oldest"
    assert pages <= CAP * 1.25  # the file stopped growing at the cap
