"""Crash proof: the agent is SIGKILLed at random points while it syncs, 20 times, and restarted each time;
afterwards the collector holds exactly the rows the agent committed: no gap, no duplicate, no difference."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.store_forward.sf_procs import Agent, Collector, Plant, agent_config, wait_for

# About 60 s on an idle two-core machine (21 agent starts); the timeout leaves room for a busy one.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
KILLS = 20


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[Plant]:
    plant = Plant(tmp_path).start()
    try:
        yield plant
    finally:
        plant.stop()


def test_sigkill_during_sync_twenty_times_loses_nothing_duplicates_nothing(tmp_path: Path, plant: Plant) -> None:
    collector = Collector(tmp_path).start()
    http = free_port()
    config = agent_config(
        tmp_path, modbus_port=plant.modbus_port, http_port=http, collector_url=collector.url, poll_s=0.05,
        buffer="write_batch = 200",
        collector="batch_size = 40\ninterval_s = 0.05\nbackoff_initial_s = 0.05\nbackoff_max_s = 0.3",
    )
    agent = Agent(tmp_path, config, http)
    rng = random.Random(4)
    delivered_before_kill = []
    try:
        for _ in range(KILLS):
            agent.start()
            time.sleep(rng.uniform(0.3, 1.2))  # the first round starts 0.5 s after ready: kill during sync
            agent.kill()
            delivered_before_kill.append(len(collector.rows()))
        # the kills landed while data was flowing to the collector
        assert delivered_before_kill[-1] > delivered_before_kill[0] and delivered_before_kill[-1] > 0
        agent.start()
        plant.stop()  # no new samples: let the agent drain everything it has
        wait_for(lambda: agent.status()["buffer"]["unsynced"] == {"samples": 0, "events": 0}, 30,
                 "the backlog to drain", agent.proc, agent.log)
        assert agent.stop() == 0
        buffered, received = agent.rows(), collector.rows()
        assert received == buffered  # exactly the committed rows, values and all
        seqs = [row[0] for row in received]
        assert seqs == list(range(1, len(seqs) + 1))  # no gap, no duplicate
        assert collector.rows("events") == agent.rows("events")
        assert len(buffered) > 1000
    finally:
        agent.kill()
        collector.stop()
