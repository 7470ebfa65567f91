"""The status page in headless Chromium against the running demo (``edge-agent demo``), as a user runs it.

The demo runs as a child process on free ports with a temporary data dir and its embedded MQTT broker:
the simulated plant (Modbus, OPC UA, MQTT), a collector and the agent. The test stops a running CNC
machine through the simulator's stop command register (a Modbus write, as a PLC's remote stop), then
checks the four acceptance points of the status page: the overview shows every machine in its true
state and the stop within seconds; a machine's detail page draws its live chart; an operator logs in
and acknowledges an alarm, which the API then reports as acknowledged; the disconnected banner appears
once the agent is stopped. Screenshots go to ``test-artifacts/demo-*.png``.

The demo config is examples/plant.toml with one change: a stop raises its breakdown alarm after 3 s
instead of 300 s, so the acknowledgement can be tested within the time budget.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_agent.profiles import load_profile, shipped_profiles_dir
from simulators.registers import STOP_COMMAND_REGISTER
from tests.status.conftest import CHROMIUM_ARGS, chromium_or_skip

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(90)]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
MACHINES = ("cnc-1", "cnc-2", "pack-1", "vib-1", "vib-2", "vibw-1")
SPINDLE_FAULT = 21  # a breakdown reason of the simulated CNC (alarm 751)
CNC_BREAKDOWN = 3  # the cnc_vmc state code of a breakdown
LOGIN = ("operator", "operator")  # the demo config's operator


@dataclass
class Demo:
    proc: subprocess.Popen[bytes]
    url: str
    modbus_port: int
    opcua_url: str
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # Ctrl-C, as the README says
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def demo_options() -> list[str]:
    """Options that turn off anything in the demo acting on alarms by itself (simulated operators)."""
    from edge_agent.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    options = {o for action in commands.choices["demo"]._actions for o in action.option_strings}
    return sorted(o for o in options if o.startswith("--no-") and "operator" in o)  # e.g. --no-mes-operators


@contextlib.contextmanager
def running_demo(tmp_path: Path) -> Iterator[Demo]:
    config = tmp_path / "plant.toml"
    config.write_text((REPO / "examples" / "plant.toml").read_text() + "\n[alarms]\nbreakdown_after_s = 3\n")
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "demo", "--config", str(config), "--data-dir", str(tmp_path / "data"),
             "--broker", "embedded", "--fresh", *demo_options()],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    demo = None
    try:
        deadline = time.monotonic() + 40
        while demo is None:
            text = log.read_text(errors="replace")
            page = re.search(r"status page: (http://127\.0\.0\.1:\d+)/", text)
            plant = re.search(r"modbus tcp://127\.0\.0\.1:(\d+), (opc\.tcp://127\.0\.0\.1:\d+/)", text)
            if page and plant:
                demo = Demo(proc, page.group(1), int(plant.group(1)), plant.group(2), log)
            elif proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the demo did not start:\n{text[-3000:]}")
            else:
                time.sleep(0.2)
        while not answers(demo.url + "/api/v1/status"):  # the URLs are printed before the agent listens
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the demo's agent did not answer:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield demo
    finally:
        if demo is not None:
            demo.stop()
        elif proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def categories(profile: str) -> dict[int, str]:
    oee = load_profile(shipped_profiles_dir() / f"{profile}.toml").oee
    assert oee is not None
    return {int(code): category for code, category in oee.state_codes.items()}


class Plant:
    """The simulated machines' true states, read straight from their servers (not through the agent)."""

    def __init__(self, demo: Demo) -> None:
        from asyncua import Client
        from pymodbus.client import AsyncModbusTcpClient

        self.modbus = AsyncModbusTcpClient("127.0.0.1", port=demo.modbus_port)
        self.opcua = Client(demo.opcua_url, timeout=5)
        self.cnc = categories("cnc_vmc")
        self.line = categories("packaging_line")

    async def __aenter__(self) -> Plant:
        await self.modbus.connect()
        await self.opcua.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.modbus.close()
        await self.opcua.disconnect()

    async def state(self, name: str) -> str:
        if name.startswith("cnc-"):
            result = await self.modbus.read_holding_registers(0, count=1, device_id=int(name.split("-")[1]))
            return self.cnc[result.registers[0]]
        if name.startswith("pack-"):
            code = await self.opcua.get_node(f"ns=2;s={name}.State").read_value()
            return self.line[int(code)]
        return "monitoring"  # the vibration sensors have no machine state

    async def codes(self, name: str) -> tuple[int, int]:
        """A CNC machine's state and reason codes (holding registers 0 and 1)."""
        result = await self.modbus.read_holding_registers(0, count=2, device_id=int(name.split("-")[1]))
        return result.registers[0], result.registers[1]

    async def breakdown(self, reason: int) -> tuple[str, float]:
        """Stop a running CNC machine with a breakdown through its stop command register.

        The command only stops a running machine, and the simulated machines also stop by their own
        schedule (the first short stops come about 22 s after the start): retry until a command took.
        Returns the machine and the monotonic time of the write that stopped it.
        """
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            for name in ("cnc-1", "cnc-2"):
                if await self.state(name) != "running":
                    continue
                unit = int(name.split("-")[1])
                written = time.monotonic()
                assert not (await self.modbus.write_register(STOP_COMMAND_REGISTER, reason, device_id=unit)).isError()
                while time.monotonic() - written < 2.0:
                    if await self.codes(name) == (CNC_BREAKDOWN, reason):
                        return name, written
                    await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
        raise AssertionError("no stop command was taken within 40 s")


@contextlib.asynccontextmanager
async def browser_page() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    executable = chromium_or_skip()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1600, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page
            assert errors == [], errors
        finally:
            await browser.close()


async def shot(page: Any, name: str, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)


async def tile_state(page: Any, name: str) -> str | None:
    state: str | None = await page.get_attribute(f'[data-testid="tile-{name}"]', "data-state")
    return state


async def shows_true_state(page: Any, plant: Plant, name: str, timeout: float = 5.0) -> str:
    """Wait until the tile shows the machine's true state (which may itself change meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        truth, shown = await plant.state(name), await tile_state(page, name)
        if truth == shown:
            return truth
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}: the overview shows {shown!r}, the machine is {truth!r}")
        await asyncio.sleep(0.2)


async def test_status_page_against_the_running_demo(tmp_path: Path) -> None:
    chromium_or_skip()
    with running_demo(tmp_path) as demo:
        async with httpx.AsyncClient(base_url=demo.url, timeout=5) as api, browser_page() as page:
            await page.goto(demo.url + "/")
            for name in MACHINES:
                await page.wait_for_selector(f'[data-testid="tile-{name}"]:not([data-state="offline"])'
                                             f':not([data-state="unknown"])', timeout=20_000)
            await page.wait_for_selector("#link-state.live", timeout=10_000)
            async with Plant(demo) as plant:
                # 1. every machine in its true state; a stop shows within seconds
                for name in MACHINES:
                    await shows_true_state(page, plant, name)
                target, stopped_at = await plant.breakdown(SPINDLE_FAULT)
                await page.wait_for_selector(f'[data-testid="tile-{target}"][data-state="unplanned_stop"]',
                                             timeout=5_000)
                delay = time.monotonic() - stopped_at
                assert await plant.state(target) == "unplanned_stop"
                tile = await page.locator(f'[data-testid="tile-{target}"]').inner_text()
                # the text when the config names the reason ([twin.stop_reasons]), else its code
                assert "spindle fault" in tile or f"reason {SPINDLE_FAULT}" in tile, tile
                for name in MACHINES:
                    await shows_true_state(page, plant, name)
                await shot(page, "demo-overview.png", full_page=True)
                print(f"{target}: stop shown on the overview {delay:.2f} s after the Modbus write")
                assert delay < 5

            # 2. the machine's detail page draws its live chart
            await page.goto(f"{demo.url}/#/device/{target}")
            await page.wait_for_selector('[data-testid="live-chart"] canvas', timeout=15_000)
            await page.wait_for_selector('[data-testid="detail-state"][data-state="unplanned_stop"]', timeout=5_000)
            points = await page.evaluate("S.chart.t.length")
            await page.wait_for_function(f"S.chart.t.length > {points}", timeout=10_000)  # live points arrive
            assert await page.locator("#d-values tr[data-tag]").count() >= 15

            # 3. the stop outlasts breakdown_after_s: an alarm an operator logs in to acknowledge
            alarm_id = f"{target}:state:breakdown"
            row = f'#d-alarms [data-alarm-id="{alarm_id}"]'
            await page.wait_for_selector(f'{row}[data-status="unack"]', timeout=15_000)
            await shot(page, "demo-detail.png", full_page=True)
            await page.click(f"{row} button[data-ack]")
            await page.wait_for_selector("#login-name")
            await page.fill("#login-name", LOGIN[0])
            await page.fill("#login-password", LOGIN[1])
            await page.click("#dialog-ok")
            await page.wait_for_selector("#ack-note")
            await page.fill("#ack-note", "spindle checked")
            await page.click("#dialog-ok")
            await page.wait_for_selector(f'{row}[data-status="acked"]', timeout=5_000)
            alarm = (await api.get(f"/api/v1/alarms/{alarm_id}")).json()
            assert (alarm["state"], alarm["acked_by"], alarm["ack_note"]) == ("acked", "operator", "spindle checked")
            await shot(page, "demo-alarm-acknowledged.png", full_page=True)

            # 4. the agent stops: the page says it is disconnected
            await page.goto(demo.url + "/")
            await page.wait_for_selector("#link-state.live", timeout=10_000)
            assert await page.is_hidden("#banner")
            demo.stop()
            assert demo.proc.returncode == 0, demo.log.read_text()[-3000:]
            await page.wait_for_selector("#banner", state="visible", timeout=10_000)
            assert "Disconnected" in await page.inner_text("#banner")
            await shot(page, "demo-disconnected.png")
