"""`edge-agent status` against a running agent."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from edge_agent.cli import main
from tests.conftest import free_port
from tests.integration.helpers import eventually, running_agent, write_config


async def test_status_command_human_and_json(tmp_path: Path, mosquitto: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    http = free_port()
    path = write_config(tmp_path, f"""
    [[devices]]
    name = "vib-status"
    profile = "vibration_sensor"
    [devices.connection]
    broker = "{mosquitto}"
    client_id = "status-{http}"
    """, http_port=http)
    async with running_agent(path) as agent:
        await eventually(lambda: agent.sinks["vib-status"].status.state == "connected")
        assert await asyncio.to_thread(main, ["status", "--config", str(path)]) == 0
        out = capsys.readouterr().out
        assert out.startswith("gateway test-gw (version ")
        assert "vib-status" in out and "connected" in out
        assert "sync: no collector configured" in out
        assert await asyncio.to_thread(main, ["status", "--url", f"http://127.0.0.1:{http}", "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["devices"]["vib-status"]["protocol"] == "mqtt"
        async with httpx.AsyncClient() as client:
            metrics = await client.get(f"http://127.0.0.1:{http}/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        assert 'edge_agent_device_state{device="vib-status",protocol="mqtt",state="connected"} 1.0' in metrics.text
        assert "process_resident_memory_bytes" in metrics.text
    assert await asyncio.to_thread(main, ["status", "--url", f"http://127.0.0.1:{http}"]) == 1
    assert "no agent answering" in capsys.readouterr().err
