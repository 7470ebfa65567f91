"""After a restart, the live OEE of the current shift includes what was read before it (refilled from the buffer)."""

from __future__ import annotations

from pathlib import Path

from simulators.runner import plant_running
from tests.conftest import free_port
from tests.integration.helpers import cnc_device, eventually, running_agent, write_config


async def test_shift_oee_survives_a_restart(tmp_path: Path) -> None:
    async with plant_running(seed=11, cnc=1, lines=0, sensors=0, modbus_port=free_port(), mqtt_url=None,
                             speed=20.0) as plant:
        path = write_config(tmp_path, cnc_device(plant.modbus_port, poll_interval_s=0.1), http_port=free_port())
        async with running_agent(path, http=False) as agent:
            await eventually(lambda: (r := agent.shift_oee().get("cnc-1")) is not None and r.total_count >= 3
                             and r.run_time_s > 0, 30, "parts counted")
            before = agent.shift_oee()["cnc-1"]
    # the plant is gone: whatever the restarted agent knows of this shift came from its buffer
    async with running_agent(path, http=False) as agent:
        after = agent.shift_oee()["cnc-1"]
    assert after.total_count >= before.total_count
    assert after.good_count >= before.good_count
    assert after.run_time_s >= before.run_time_s - 1.0
