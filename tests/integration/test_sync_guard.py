"""The sync schedule never stops: a lost round is noticed and the schedule restarted."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from apscheduler.jobstores.base import JobLookupError

from edge_agent import supervisor
from simulators.runner import plant_running
from tests.conftest import free_port
from tests.integration.collector_proc import CollectorProcess
from tests.integration.helpers import cnc_device, eventually, running_agent, write_config

GW = "test-gw"


async def test_a_lost_sync_round_is_restarted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="edge_agent")
    monkeypatch.setattr(supervisor, "SYNC_GUARD_S", 0.5)
    collector = CollectorProcess(free_port(), tmp_path / "collector.sqlite").start()
    try:
        async with plant_running(seed=2, cnc=1, lines=0, sensors=0, modbus_port=free_port(), mqtt_url=None) as plant:
            path = write_config(tmp_path, cnc_device(plant.modbus_port), http_port=free_port(),
                                collector=collector.url)
            async with running_agent(path, http=False) as agent:
                await eventually(lambda: collector.stats(GW).get("samples", 0) > 0, 20, "first samples synced")
                scheduler = agent.scheduler
                assert scheduler is not None
                # break the chain between two rounds, as a skipped run would
                for _ in range(50):
                    await eventually(lambda: scheduler.get_job("sync") is not None and not agent._sync_lock.locked(),
                                     10, "a scheduled, not running, round")
                    try:
                        scheduler.remove_job("sync")
                        break
                    except JobLookupError:  # it just started: try between the next two rounds
                        continue
                before = collector.stats(GW).get("samples", 0)
                await eventually(lambda: "restarting the sync schedule" in caplog.text, 10, "the guard's restart")
                await eventually(lambda: collector.stats(GW).get("samples", 0) > before, 15,
                                 "samples synced after the schedule was restarted")
    finally:
        collector.stop()
