"""Fixtures of the peer tests: servers and encoders from implementations we did not write.

The node-opcua server starts in several seconds, so one instance serves the whole test run;
a test that must restart a server starts its own on another port.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from peer_testkit import NodeOpcuaServer, install_node_peers, unavailable

from tests.connectors.connector_testkit import FakeSink, free_port


@pytest.fixture(scope="session")
def node_peers() -> Path:
    """tests/peers/node with its node_modules installed."""
    return install_node_peers()


@pytest.fixture(scope="session")
def opcua_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The node-opcua server's PKI folder, kept for the test run so restarts skip key generation."""
    return tmp_path_factory.mktemp("node-opcua-pki")


@pytest.fixture(scope="session")
def node_opcua(node_peers: Path, opcua_pki: Path) -> Iterator[NodeOpcuaServer]:
    """A running node-opcua server (see node/opcua_server.js), shared by the test run."""
    server = NodeOpcuaServer(free_port(), opcua_pki)
    try:
        server.start()
    except AssertionError as exc:
        server.stop()
        unavailable(f"the node-opcua server did not start: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()
