"""OPC UA security: the gateway's own application certificate, and applying a policy to a client.

With ``security_policy = "Basic256Sha256"`` the connector signs (``Sign``) or signs and
encrypts (``SignAndEncrypt``) with the gateway's certificate. Unless the connection names
its own ``certificate`` and ``private_key``, the agent generates a self-signed application
certificate on first use and keeps it in ``pki_dir`` (default ``<data_dir>/pki``):

* ``gateway-cert.der``: the certificate, to add to the server's trusted list;
* ``gateway-key.pem``: its RSA-2048 private key, readable by the agent's user only.

It is issued for the application URI (``urn:edge-agent:<gateway_id>`` unless set) and this
host's name, valid for five years, and generated again when the URI or host name changes or
fewer than 30 days of validity remain. The server's certificate is taken from its endpoint
list unless ``server_certificate`` pins it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import uacrypto
from asyncua.crypto.cert_gen import dump_private_key_as_pem, generate_private_key, generate_self_signed_app_certificate
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from edge_agent.connectors.opcua.config import OpcuaConnection
from edge_agent.errors import ConnectError

log = logging.getLogger("edge_agent.connectors.opcua")

CERT_FILE = "gateway-cert.der"
KEY_FILE = "gateway-key.pem"
VALID_DAYS = 5 * 365
RENEW_BEFORE = timedelta(days=30)
_locks: dict[Path, asyncio.Lock] = {}


@dataclass(frozen=True)
class Identity:
    certificate: Path
    private_key: Path
    application_uri: str
    thumbprint: str


def application_uri(conn: OpcuaConnection, gateway_id: str) -> str:
    return conn.application_uri or f"urn:edge-agent:{gateway_id}"


def _usable(cert_path: Path, uri: str, host: str, now: datetime) -> bool:
    try:
        cert = x509.load_der_x509_certificate(cert_path.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    return (
        uri in names.get_values_for_type(x509.UniformResourceIdentifier)
        and host in names.get_values_for_type(x509.DNSName)
        and cert.not_valid_after_utc - now > RENEW_BEFORE
    )


def ensure_certificate(pki_dir: Path, uri: str, gateway_id: str, *, host: str | None = None,
                       now: datetime | None = None) -> Identity:
    """The gateway's certificate and key in ``pki_dir``, generated when missing or no longer fit."""
    host = host or socket.gethostname()
    now = now or datetime.now(UTC)
    pki_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = pki_dir / CERT_FILE, pki_dir / KEY_FILE
    if key_path.is_file():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    else:
        key = generate_private_key()
        tmp = key_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(dump_private_key_as_pem(key))
        os.replace(tmp, key_path)
        cert_path.unlink(missing_ok=True)  # a new key needs a new certificate
    if not _usable(cert_path, uri, host, now):
        from cryptography.hazmat.primitives.asymmetric import rsa

        assert isinstance(key, rsa.RSAPrivateKey)
        cert = generate_self_signed_app_certificate(
            key, f"edge-agent {gateway_id}", {"organizationName": "edge-agent"},
            [x509.UniformResourceIdentifier(uri), x509.DNSName(host)],
            extended=[ExtendedKeyUsageOID.CLIENT_AUTH], days=VALID_DAYS,
        )
        tmp = cert_path.with_suffix(".tmp")
        tmp.write_bytes(cert.public_bytes(serialization.Encoding.DER))
        os.replace(tmp, cert_path)
        log.info("generated the gateway's OPC UA certificate %s for %s (SHA-1 %s); add it to each server's "
                 "trusted certificates", cert_path, uri, _thumbprint(cert))
    cert = x509.load_der_x509_certificate(cert_path.read_bytes())
    return Identity(cert_path, key_path, uri, _thumbprint(cert))


def _thumbprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA1()).hex()


async def apply_security(client: Client, conn: OpcuaConnection, gateway_id: str) -> None:
    """Set the connection's security on ``client`` before ``connect()`` (a no-op for policy None).

    Without a pinned ``server_certificate`` this asks the server for its endpoints first, over
    an unsecured channel, and takes the certificate of the endpoint with our policy and mode.
    """
    if not conn.secure:
        return
    uri = application_uri(conn, gateway_id)
    client.application_uri = uri
    if conn.certificate is not None and conn.private_key is not None:
        cert, key = Path(conn.certificate), Path(conn.private_key)
    else:
        assert conn.pki_dir is not None, "pki_dir is set when the config is loaded"
        pki = Path(conn.pki_dir)
        lock = _locks.setdefault(pki, asyncio.Lock())
        async with lock:
            identity = await asyncio.to_thread(ensure_certificate, pki, uri, gateway_id)
        cert, key = identity.certificate, identity.private_key
    mode = ua.MessageSecurityMode[conn.security_mode]
    server_cert = None
    if conn.server_certificate is not None:
        server_cert = uacrypto.CertProperties(Path(conn.server_certificate))
    try:
        await client.set_security(SecurityPolicyBasic256Sha256, cert, key, server_certificate=server_cert, mode=mode)
    except ua.UaError as exc:
        raise ConnectError(
            f"server offers no endpoint with {conn.security_policy}/{conn.security_mode}: {exc}"
        ) from exc
