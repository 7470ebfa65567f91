"""Fixtures of the connector tests: real Modbus TCP and OPC UA servers on free loopback ports."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from connector_testkit import FakeSink, ModbusTestServer, OpcuaTestServer, free_port


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
async def modbus_server() -> AsyncIterator[ModbusTestServer]:
    """A stopped Modbus server on a free port; the test starts it with its register image."""
    server = ModbusTestServer(free_port())
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def opcua_server() -> AsyncIterator[OpcuaTestServer]:
    """A running OPC UA server with the packaging line nodes of device id ``pack-1``."""
    server = OpcuaTestServer(free_port())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
