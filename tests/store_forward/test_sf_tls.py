"""TLS to the collector: the server certificate is verified against ``ca_file`` and the gateway proves
itself with ``client_cert``/``client_key`` (mutual TLS), against a real TLS server on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from cloud_sync.uploader import Uploader, make_client
from edge_agent.config import load_config
from edge_agent.status.app import QuietServer
from edge_agent.supervisor import Agent
from tests.conftest import free_port
from tests.unit.test_uploader import Source


def _issue(name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: ec.EllipticCurvePrivateKey,
           *, ca: bool = False, ip: str | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False), critical=True)
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                        critical=False)
    return builder.sign(signer, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None = None) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    root = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test collector CA")])
    ca = _issue("test collector CA", ca_key, ca_name, ca_key, ca=True)
    _write(root / "ca.pem", ca)
    for name, ip in (("server", "127.0.0.1"), ("client", None)):
        key = ec.generate_private_key(ec.SECP256R1())
        _write(root / f"{name}.pem", _issue(name, key, ca_name, ca_key, ip=ip), key)
    return root


@pytest.fixture
async def tls_collector(pki: Path) -> AsyncIterator[str]:
    """An HTTPS endpoint that requires a client certificate from the test CA and accepts every batch."""
    app = FastAPI()

    @app.post("/api/v1/batches")
    async def batches() -> JSONResponse:
        return JSONResponse({"duplicate_batch": False})

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off",
                            ssl_certfile=str(pki / "server.pem"), ssl_keyfile=str(pki / "server.key"),
                            ssl_ca_certs=str(pki / "ca.pem"), ssl_cert_reqs=ssl.CERT_REQUIRED)
    server = QuietServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def _uploader(client: httpx.AsyncClient, url: str, source: Source) -> Uploader:
    return Uploader(source, client, gateway_id="gw", url=url, api_key="k", batch_size=50)


async def test_mutual_tls_with_ca_file_and_client_certificate(pki: Path, tls_collector: str) -> None:
    source = Source(samples=120)
    async with make_client(ca_file=str(pki / "ca.pem"), client_cert=str(pki / "client.pem"),
                           client_key=str(pki / "client.key")) as client:
        up = _uploader(client, tls_collector, source)
        assert await up.sync_once() == 120
    assert source.all_acked("samples") and up.status.http_version == "HTTP/1.1"


async def test_without_client_certificate_the_collector_refuses_the_connection(
    pki: Path, tls_collector: str
) -> None:
    source = Source(samples=5)
    async with make_client(ca_file=str(pki / "ca.pem")) as client:
        up = _uploader(client, tls_collector, source)
        assert await up.sync_once() == 0
    assert up.status.last_result == "failed" and source.acked["samples"] == set()


async def test_an_unknown_server_certificate_is_not_trusted(pki: Path, tls_collector: str) -> None:
    source = Source(samples=5)
    async with make_client(client_cert=str(pki / "client.pem"), client_key=str(pki / "client.key")) as client:
        up = _uploader(client, tls_collector, source)
        assert await up.sync_once() == 0
    assert "CERTIFICATE_VERIFY_FAILED" in (up.status.last_error or "")
    assert source.acked["samples"] == set()


def test_certificate_paths_are_relative_to_the_config_and_checked_at_start(tmp_path: Path, pki: Path) -> None:
    (tmp_path / "tls").mkdir()
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / "tls" / name).write_bytes((pki / name).read_bytes())
    path = tmp_path / "agent.toml"
    body = """gateway_id = "gw"
    [collector]
    url = "https://127.0.0.1:1"
    ca_file = "tls/ca.pem"
    client_cert = "tls/client.pem"
    client_key = "tls/{key}"
    """
    path.write_text(body.format(key="client.key"))
    Agent(load_config(path))._client()
    path.write_text(body.format(key="missing.key"))
    with pytest.raises(OSError, match=r"collector\.ca_file/client_cert/client_key: cannot load"):
        Agent(load_config(path))._client()
