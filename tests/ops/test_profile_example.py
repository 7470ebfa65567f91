"""docs/device-profiles.md: the worked example is true.

The raw register values of the page's first table are served by a real Modbus TCP server; the agent's Modbus
connector reads them with device_profiles/air_compressor.toml and must produce exactly the page's last table.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from edge_agent.connectors.modbus.config import ModbusConnection
from edge_agent.connectors.modbus.connector import ModbusConnector
from edge_agent.profiles import ModbusProfile, load_profile
from tests.conftest import free_port
from tests.connectors.connector_testkit import FakeSink, ModbusTestServer, Ready, make_device, stop_task, wait_until

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "device-profiles.md"
PROFILE = REPO / "device_profiles" / "air_compressor.toml"
TABLES = {"4": "holding", "3": "input", "0": "coil", "1": "discrete"}

pytestmark = pytest.mark.timeout(30)


def rows(header: str) -> list[list[str]]:
    """The cells of the markdown table whose header row starts with ``header``."""
    lines = PAGE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    out = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        out.append([cell.strip() for cell in line.strip("|").split("|")])
    return out


def register_image() -> dict[str, list[int]]:
    """The page's register table as server tables (manual numbers -> 0-based addresses)."""
    tables: dict[str, list[int]] = {"holding": [], "input": [], "coil": [], "discrete": []}
    for cells in rows("| register |"):
        first = cells[0].split("-")[0]
        table, address = TABLES[first[0]], int(first[1:]) - 1
        words = [int(w, 0) for w in cells[-1].strip("`").split()]
        target = tables[table]
        target.extend([0] * (address + len(words) - len(target)))
        target[address:address + len(words)] = words
    return tables


def expected_values() -> dict[str, object]:
    out: dict[str, object] = {}
    for tag, value in rows("| tag | value |"):
        text = value.strip("`")
        out[tag.strip("`")] = {"true": True, "false": False}.get(text, float(text) if "." in text else text)
    return out


def test_the_page_shows_the_profile_and_every_tag() -> None:
    profile = load_profile(PROFILE)
    assert isinstance(profile, ModbusProfile)
    assert list(expected_values()) == [t.name for t in profile.tags]
    page = PAGE.read_text()
    for block in re.findall(r"```toml\n(.*?)```", page, flags=re.S):
        for name in re.findall(r'^name = "([a-z_]+)"', block, flags=re.M):
            assert name in {t.name for t in profile.tags} or name in ("air_compressor", "compressor-1"), name


async def test_the_agent_reads_what_the_page_says() -> None:
    profile = load_profile(PROFILE)
    assert isinstance(profile, ModbusProfile)
    server = ModbusTestServer(free_port())
    await server.start(register_image())
    sink = FakeSink("compressor-1", "modbus")
    connection = ModbusConnection(host="127.0.0.1", port=server.port, poll_interval_s=0.1, timeout_s=1.0)
    task = asyncio.create_task(
        ModbusConnector(make_device("compressor-1", profile, connection), "gw").run(sink, Ready()))
    try:
        await wait_until(lambda: len(sink.latest()) == len(profile.tags), 10, "every tag")
    finally:
        await stop_task(task)
        await server.stop()
    read = {name: sample.value for name, sample in sink.latest().items()}
    for name, value in expected_values().items():
        if isinstance(value, float):
            assert read[name] == pytest.approx(value), name
        elif isinstance(value, bool):
            assert read[name] is value, name
        else:
            assert str(read[name]) == value, name
    assert sink.status.errors == 0
