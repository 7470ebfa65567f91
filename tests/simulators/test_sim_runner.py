"""The whole plant in one event loop, and the edge-sim command line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from asyncua import Client
from pymodbus.client import AsyncModbusTcpClient

import simulators.runner as runner
from simulators.broker import free_port
from simulators.cli import main
from simulators.plant import Plant
from simulators.runner import plant_running
from tests.conftest import free_ports


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def other_tasks() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def read_good_count(port: int, unit: int) -> int:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=3)
    assert await client.connect()
    try:
        rr = await client.read_holding_registers(2, count=2, device_id=unit)
        assert not rr.isError(), rr
        return (rr.registers[0] << 16) | rr.registers[1]
    finally:
        client.close()


async def shows(read: Callable[[], Awaitable[Any]], model: Callable[[], Any], tries: int = 20) -> bool:
    """Whether a server shows the model's value: a read that equals the model's value just before or just
    after it (a tick may step the model while the read is on its way, and the server follows a moment later)."""
    for _ in range(tries):
        before = model()
        value = await read()
        if value in (before, model()):
            return True
        await asyncio.sleep(0.02)
    return False


async def test_plant_runs_on_the_wall_clock_and_shuts_down_cleanly() -> None:
    before = other_tasks()
    mb, ua_port = free_ports(2)
    async with plant_running(
        seed=5, cnc=2, lines=1, sensors=1, modbus_port=mb, opcua_port=ua_port, mqtt_url="auto",
        tick_s=0.1, publish_interval_s=0.2, speed=60.0,
    ) as handle:
        assert handle.modbus_port == mb and handle.modbus_url == f"modbus://127.0.0.1:{mb}"
        assert handle.opcua_url == f"opc.tcp://127.0.0.1:{ua_port}/" and handle.opcua_port == ua_port
        assert handle.mqtt_url is not None and handle.mqtt_host_port is not None
        assert handle.unit_ids == {"cnc-1": 1, "cnc-2": 2}
        assert handle.topics == {"vib-1": "plant/sensors/vib-1/telemetry"}
        assert isinstance(handle.plant, Plant) and handle.plant.seed == 5
        assert await shows(lambda: read_good_count(mb, 2), lambda: handle.plant.cnc[1].good_count)

        loop = asyncio.get_running_loop()
        start, started = handle.plant.t, loop.time()
        await asyncio.sleep(1.0)
        elapsed = loop.time() - started
        # 60 simulated seconds per wall-clock second, give or take a tick (0.1 s) at each end
        assert 60 * (elapsed - 0.25) < handle.plant.t - start < 60 * (elapsed + 0.25)
        assert await shows(lambda: read_good_count(mb, 1), lambda: handle.plant.cnc[0].good_count)

        async with Client(handle.opcua_url, timeout=5) as client:
            node = client.get_node("ns=2;s=pack-1.GoodCount")
            assert await shows(node.read_value, lambda: handle.plant.lines[0].good_count)
        await asyncio.sleep(0.3)
        assert handle.publisher is not None and handle.publisher.published >= 1
        assert handle.error is None
    await asyncio.sleep(0)
    assert other_tasks() <= before
    assert not port_open(mb)  # the servers are closed


async def test_manual_clock() -> None:
    mb = free_port()
    async with plant_running(cnc=1, lines=0, sensors=0, modbus_port=mb, speed=0) as handle:
        assert handle.opcua_url is None and handle.mqtt_url is None and handle.publisher is None
        await asyncio.sleep(0.3)
        assert handle.plant.t == 0.0
        good = await read_good_count(mb, 1)
        await handle.advance(600.0)
        assert handle.plant.t == 600.0
        assert await read_good_count(mb, 1) == handle.plant.cnc[0].good_count > good


async def test_errors_in_the_block_propagate_unchanged() -> None:
    mb = free_port()
    with pytest.raises(KeyError, match="boom"):
        async with plant_running(cnc=1, lines=0, sensors=0, modbus_port=mb):
            raise KeyError("boom")
    assert not port_open(mb)


async def test_auto_starts_an_embedded_broker_without_a_local_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "broker_reachable", lambda *a, **k: False)
    before = other_tasks()
    received: asyncio.Queue[bytes] = asyncio.Queue()
    async with plant_running(cnc=0, lines=0, sensors=1, mqtt_url="auto", publish_interval_s=0.2) as handle:
        assert handle.embedded_broker
        assert handle.mqtt_host_port is not None
        host, port = handle.mqtt_host_port
        assert port != 1883
        loop = asyncio.get_running_loop()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-auto-sub")
        client.on_connect = lambda c, *_: c.subscribe("plant/sensors/vib-1/telemetry", qos=1)

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            loop.call_soon_threadsafe(received.put_nowait, bytes(msg.payload))

        client.on_message = on_message
        client.connect_async(host, port)
        client.loop_start()
        try:
            payload = json.loads(await asyncio.wait_for(received.get(), 5))
        finally:
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)
    assert set(payload) == {"ts", "vibration", "temperature", "battery"}
    assert not port_open(port)
    await asyncio.sleep(0)
    assert other_tasks() <= before


def test_cli_runs_for_a_duration(capsys: pytest.CaptureFixture[str]) -> None:
    mb, ua_port = free_ports(2)
    argv = ["plant", "--modbus-port", str(mb), "--opcua-port", str(ua_port), "--mqtt-url", "none",
            "--duration", "0.5", "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"modbus  modbus://127.0.0.1:{mb}" in out
    assert f"opcua   opc.tcp://127.0.0.1:{ua_port}/" in out
    assert "mqtt" not in out


def test_cli_broker(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert main(["broker", "--port", str(port), "--duration", "0.3"]) == 0
    assert f"mqtt://127.0.0.1:{port}" in capsys.readouterr().out


def test_cli_reports_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        argv = ["plant", "--cnc", "1", "--lines", "0", "--sensors", "0", "--modbus-port", str(port)]
        assert main(argv) == 1
    assert "edge-sim:" in capsys.readouterr().err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_stops_cleanly_on_signals(sig: signal.Signals, project_root: Path) -> None:
    mb = free_port()
    env = {**os.environ, "PYTHONPATH": str(project_root)}
    code = "import sys; from simulators.cli import main; sys.exit(main())"
    argv = ["plant", "--modbus-port", str(mb), "--lines", "0", "--mqtt-url", "none"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=project_root,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # one line per endpoint once all are up
        assert first.startswith("modbus"), first
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
