"""OPC UA security: Basic256Sha256 Sign / SignAndEncrypt with the gateway's own certificate, and user logins,
against the simulator's asyncua server with security on."""

from __future__ import annotations

import asyncio
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from connector_testkit import FakeSink, Ready, make_device, shipped, stop_task, wait_until
from cryptography import x509

from edge_agent.config import Device, load_config
from edge_agent.connectors.opcua.config import OpcuaConnection
from edge_agent.connectors.opcua.connector import OpcuaConnector
from edge_agent.connectors.opcua.security import CERT_FILE, KEY_FILE, ensure_certificate
from edge_agent.errors import ConfigError
from edge_agent.profiles import OpcuaProfile
from simulators.broker import free_port
from simulators.opcua_server import PackagingOpcuaServer, ServerSecurity
from simulators.plant import Plant

USERS = {"edge": "s3cret-pass"}
# one secured server for the module: starting one (address space, certificate) takes seconds
module_loop = pytest.mark.asyncio(loop_scope="module")


def secured_device(url: str, pki: Path, **conn: Any) -> Device:
    settings: dict[str, Any] = {
        "url": url, "publishing_interval_ms": 50, "timeout_s": 3.0, "reconnect_delay_s": 0.2,
        "reconnect_delay_max_s": 0.5, "watchdog_interval_s": 1.0, "pki_dir": str(pki),
        "security_policy": "Basic256Sha256", "security_mode": "SignAndEncrypt",
        "username": "edge", "password": USERS["edge"],
    } | conn
    profile = shipped("packaging_line")
    assert isinstance(profile, OpcuaProfile)
    return make_device("pack-1", profile, OpcuaConnection(**settings))


async def run_until_samples(dev: Device, sink: FakeSink, timeout: float = 15.0) -> None:
    task = asyncio.create_task(OpcuaConnector(dev, "gw-test").run(sink, Ready()))
    try:
        await wait_until(lambda: len(sink.samples) >= 5, timeout, "samples over the secured channel")
    finally:
        await stop_task(task)


async def run_until_error(dev: Device, sink: FakeSink, timeout: float = 15.0) -> None:
    task = asyncio.create_task(OpcuaConnector(dev, "gw-test").run(sink, Ready()))
    try:
        await wait_until(lambda: sink.status.errors >= 1, timeout, "a refused connection")
    finally:
        await stop_task(task)
    assert not sink.samples


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def secured_server(tmp_path_factory: pytest.TempPathFactory):
    tmp_path = tmp_path_factory.mktemp("opcua-security")
    plant = Plant(seed=5, cnc=0, lines=1, sensors=0)
    plant.step(5.0)
    server = PackagingOpcuaServer(
        plant.lines, port=free_port(), security=ServerSecurity(tmp_path / "server-pki", USERS),
    )
    async with server:
        await server.update()
        yield server


@module_loop
@pytest.mark.parametrize("mode", ["Sign", "SignAndEncrypt"])
async def test_secured_session_with_the_generated_gateway_certificate(secured_server, tmp_path: Path, mode) -> None:
    pki = tmp_path / "pki"
    sink = FakeSink("pack-1", "opcua")
    await run_until_samples(secured_device(secured_server.url, pki, security_mode=mode), sink)
    assert sink.status.state == "connected"
    key = pki / KEY_FILE
    assert (pki / CERT_FILE).is_file() and key.is_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600, "the private key is readable by the agent's user only"
    cert = x509.load_der_x509_certificate((pki / CERT_FILE).read_bytes())
    uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier)
    assert uris == ["urn:edge-agent:gw-test"]


@module_loop
async def test_the_certificate_is_kept_across_connections(secured_server, tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    await run_until_samples(secured_device(secured_server.url, pki), FakeSink("pack-1", "opcua"))
    first = (pki / CERT_FILE).read_bytes(), (pki / KEY_FILE).read_bytes()
    await run_until_samples(secured_device(secured_server.url, pki), FakeSink("pack-1", "opcua"))
    assert ((pki / CERT_FILE).read_bytes(), (pki / KEY_FILE).read_bytes()) == first


@module_loop
async def test_a_configured_certificate_is_used_as_given(secured_server, tmp_path: Path) -> None:
    own = ensure_certificate(tmp_path / "own", "urn:plant:gw-7", "gw-7")
    dev = secured_device(secured_server.url, tmp_path / "unused", certificate=str(own.certificate),
                         private_key=str(own.private_key), application_uri="urn:plant:gw-7")
    await run_until_samples(dev, FakeSink("pack-1", "opcua"))
    assert not (tmp_path / "unused").exists(), "no certificate is generated when one is configured"


@module_loop
async def test_wrong_password_is_a_clear_connection_error(secured_server, tmp_path: Path) -> None:
    sink = FakeSink("pack-1", "opcua")
    await run_until_error(secured_device(secured_server.url, tmp_path / "pki", password="wrong"), sink)
    assert sink.status.state == "disconnected"
    assert any("cannot connect" in e for e in sink.errors), sink.errors


@module_loop
async def test_no_security_against_a_secured_only_server_is_refused(secured_server, tmp_path: Path) -> None:
    sink = FakeSink("pack-1", "opcua")
    dev = secured_device(secured_server.url, tmp_path / "pki", security_policy="None", security_mode="None")
    await run_until_error(dev, sink)
    assert sink.status.state == "disconnected"


def test_certificate_is_renewed_when_it_no_longer_fits(tmp_path: Path) -> None:
    first = ensure_certificate(tmp_path, "urn:edge-agent:a", "a", host="gw-host")
    assert ensure_certificate(tmp_path, "urn:edge-agent:a", "a", host="gw-host").thumbprint == first.thumbprint
    renamed = ensure_certificate(tmp_path, "urn:edge-agent:b", "b", host="gw-host")
    assert renamed.thumbprint != first.thumbprint, "a new application URI needs a new certificate"
    late = datetime.now(UTC) + timedelta(days=5 * 365 - 10)  # fewer than 30 days of validity left
    assert ensure_certificate(tmp_path, "urn:edge-agent:b", "b", host="gw-host", now=late).thumbprint \
        != renamed.thumbprint


def _config(tmp_path: Path, connection: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        'gateway_id = "gw"\ndata_dir = "data"\n\n[[devices]]\nname = "pack-1"\nprofile = "packaging_line"\n\n'
        f'[devices.connection]\nurl = "opc.tcp://127.0.0.1:4840/"\n{connection}'
    )
    path.chmod(0o600)
    return path


def test_config_policy_and_mode_must_go_together(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, 'security_policy = "Basic256Sha256"\n'))
    text = "\n".join(err.value.problems)
    assert "agent.toml" in text and "devices[0].connection" in text
    assert "security_policy 'Basic256Sha256' and security_mode 'None' do not go together" in text


def test_config_names_a_missing_certificate_file(tmp_path: Path) -> None:
    conn = ('security_policy = "Basic256Sha256"\nsecurity_mode = "Sign"\ncertificate = "pki/gw.der"\n'
            'private_key = "pki/gw.pem"\n')
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, conn))
    text = "\n".join(err.value.problems)
    assert "devices[0].connection.certificate: file 'pki/gw.der' not found" in text
    assert "devices[0].connection.private_key: file 'pki/gw.pem' not found" in text


def test_config_puts_the_generated_certificate_in_the_data_dir(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, 'security_policy = "Basic256Sha256"\nsecurity_mode = "SignAndEncrypt"\n'))
    conn = cfg.devices[0].connection
    assert isinstance(conn, OpcuaConnection)
    assert conn.pki_dir == str(tmp_path / "data" / "pki")
