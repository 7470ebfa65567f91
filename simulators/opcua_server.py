"""OPC UA server for the packaging lines, namespace ``urn:edge-sim:packaging`` (index 2).

Address space per line ``pack-i``, under Objects::

    pack-i                  Object    ns=2;s=pack-i
      State                 Int32     ns=2;s=pack-i.State
      StopReason            UInt16    ns=2;s=pack-i.StopReason
      Running               Boolean   ns=2;s=pack-i.Running
      GoodCount             UInt32    ns=2;s=pack-i.GoodCount
      RejectCount           UInt32    ns=2;s=pack-i.RejectCount
      Speed                 Double    ns=2;s=pack-i.Speed
      MotorCurrent          Double    ns=2;s=pack-i.MotorCurrent
      Recipe                String    ns=2;s=pack-i.Recipe
      SealJaw               Object    ns=2;s=pack-i.SealJaw
        Temperature         Double    ns=2;s=pack-i.SealJaw.Temperature

With ``sensors`` (vibration sensors in waveform mode, see :mod:`simulators.bearing`),
each sensor ``vib-i`` is served too::

    vib-i                   Object    ns=2;s=vib-i
      Acceleration          Double[]  ns=2;s=vib-i.Acceleration   (a window at 8192 Hz, g)
      ShaftSpeed            Double    ns=2;s=vib-i.ShaftSpeed     (rpm)

Every browse name is in namespace 2, so the path ``2:pack-i/2:SealJaw/2:Temperature``
resolves from Objects. :meth:`PackagingOpcuaServer.update` writes discrete
values when they change and analog values on every call.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from types import TracebackType
from typing import Any

from asyncua import Server, ua
from asyncua.common.node import Node
from asyncua.crypto.cert_gen import dump_private_key_as_pem, generate_private_key, generate_self_signed_app_certificate
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from simulators.bearing import WAVEFORM_POINTS, VibrationSensor
from simulators.packaging import PackagingLine

NAMESPACE_URI = "urn:edge-sim:packaging"
APPLICATION_URI = "urn:edge-sim:server"

log = logging.getLogger("simulators.opcua")

V = ua.VariantType


@dataclass(frozen=True)
class ServerSecurity:
    """Basic256Sha256 (Sign and SignAndEncrypt) with a server certificate generated in ``pki_dir``;
    with ``users``, clients must log in with one of those names and passwords. ``allow_none`` also
    keeps the unsecured endpoint open."""

    pki_dir: Path
    users: Mapping[str, str] = field(default_factory=dict)
    allow_none: bool = False

    def certificate(self) -> tuple[Path, Path]:
        self.pki_dir.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = self.pki_dir / "server-cert.der", self.pki_dir / "server-key.pem"
        if not (cert_path.is_file() and key_path.is_file()):
            host = socket.gethostname()
            key = generate_private_key()
            cert = generate_self_signed_app_certificate(
                key, "edge-sim", {}, [x509.UniformResourceIdentifier(APPLICATION_URI), x509.DNSName(host),
                                      x509.DNSName("localhost")],
                extended=[ExtendedKeyUsageOID.SERVER_AUTH], days=30,
            )
            key_path.write_bytes(dump_private_key_as_pem(key))
            cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
        return cert_path, key_path


class _Users(UserManager):
    """asyncua user manager: the configured names and passwords, nobody else."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = dict(users)

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        if username is not None and self.users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


@dataclass(frozen=True)
class LineVariable:
    browse_name: str
    variant: ua.VariantType
    read: Callable[[PackagingLine], Any]
    analog: bool = False


LINE_VARIABLES: tuple[LineVariable, ...] = (
    LineVariable("State", V.Int32, lambda m: int(m.state)),
    LineVariable("StopReason", V.UInt16, lambda m: m.reason),
    LineVariable("Running", V.Boolean, lambda m: m.running),
    LineVariable("GoodCount", V.UInt32, lambda m: m.good_count),
    LineVariable("RejectCount", V.UInt32, lambda m: m.scrap_count),
    LineVariable("Speed", V.Double, lambda m: float(m.speed), analog=True),
    LineVariable("MotorCurrent", V.Double, lambda m: float(m.motor_current), analog=True),
    LineVariable("Recipe", V.String, lambda m: m.recipe.name),
)
SEAL_TEMPERATURE = LineVariable("Temperature", V.Double, lambda m: float(m.seal_temp), analog=True)


def _node_id(identifier: str, namespace: int) -> ua.NodeId:
    return ua.NodeId(ua.String(identifier), ua.Int16(namespace))


class PackagingOpcuaServer:
    """asyncua server at ``opc.tcp://<host>:<port>/`` exposing ``lines``; no security and anonymous
    unless ``security`` says otherwise."""

    def __init__(self, lines: Sequence[PackagingLine], host: str = "127.0.0.1", port: int = 4840,
                 security: ServerSecurity | None = None, sensors: Sequence[VibrationSensor] = (),
                 waveform_points: int = WAVEFORM_POINTS) -> None:
        if not lines and not sensors:
            raise ValueError("no lines or sensors to serve")
        self.lines = list(lines)
        self.sensors = list(sensors)
        self.waveform_points = waveform_points
        # (sensor, acceleration node, shaft speed node) of every sensor
        self._sensor_nodes: list[tuple[VibrationSensor, ua.NodeId, ua.NodeId]] = []
        self.security = security
        self.host = host
        self.port = port
        self.namespace_index = -1
        self._server: Server | None = None
        # (line, variable, node id) of every variable, and the last value written to each
        self._nodes: list[tuple[PackagingLine, LineVariable, ua.NodeId]] = []
        self._last: dict[ua.NodeId, Any] = {}

    @property
    def url(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}/"

    async def start(self) -> None:
        sec = self.security
        server = Server(user_manager=_Users(sec.users) if sec is not None and sec.users else None)
        await server.init()
        server.set_endpoint(self.url)
        server.set_server_name("edge-sim packaging lines")
        if sec is None:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
            server.set_identity_tokens([ua.AnonymousIdentityToken])
        else:
            policies = [ua.SecurityPolicyType.Basic256Sha256_Sign, ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt]
            if sec.allow_none:
                policies.insert(0, ua.SecurityPolicyType.NoSecurity)
            server.set_security_policy(policies)
            server.set_identity_tokens([ua.UserNameIdentityToken] if sec.users else [ua.AnonymousIdentityToken])
            cert, key = sec.certificate()
            await server.load_certificate(str(cert))
            await server.load_private_key(str(key))
        await server.set_application_uri(APPLICATION_URI)
        idx = await server.register_namespace(NAMESPACE_URI)
        if idx != 2:
            raise RuntimeError(f"namespace {NAMESPACE_URI} got index {idx}, expected 2")
        self.namespace_index = idx
        for line in self.lines:
            await self._add_line(server.nodes.objects, line, idx)
        for sensor in self.sensors:
            await self._add_sensor(server.nodes.objects, sensor, idx)
        try:
            await server.start()
        except OSError as exc:
            raise OSError(f"OPC UA server cannot listen on {self.host}:{self.port}: {exc}") from exc
        self._server = server
        log.info("OPC UA server on %s, lines %s, sensors %s", self.url, [m.name for m in self.lines],
                 [s.name for s in self.sensors])

    async def _add_line(self, objects: Node, line: PackagingLine, idx: int) -> None:
        name = line.name
        obj = await objects.add_object(_node_id(name, idx), ua.QualifiedName(name, idx))
        for var in LINE_VARIABLES:
            await self._add_variable(obj, line, var, f"{name}.{var.browse_name}", idx)
        seal = await obj.add_object(_node_id(f"{name}.SealJaw", idx), ua.QualifiedName("SealJaw", idx))
        await self._add_variable(seal, line, SEAL_TEMPERATURE, f"{name}.SealJaw.Temperature", idx)

    async def _add_sensor(self, objects: Node, sensor: VibrationSensor, idx: int) -> None:
        name = sensor.name
        obj = await objects.add_object(_node_id(name, idx), ua.QualifiedName(name, idx))
        window = sensor.waveform(0.0, self.waveform_points)
        accel = await obj.add_variable(_node_id(f"{name}.Acceleration", idx), ua.QualifiedName("Acceleration", idx),
                                       ua.Variant(window["accel"], V.Double))
        await accel.write_value_rank(1)
        speed = await obj.add_variable(_node_id(f"{name}.ShaftSpeed", idx), ua.QualifiedName("ShaftSpeed", idx),
                                       ua.Variant(float(window["shaft_rpm"]), V.Double))
        self._sensor_nodes.append((sensor, accel.nodeid, speed.nodeid))

    async def _add_variable(
        self, parent: Node, line: PackagingLine, var: LineVariable, ident: str, idx: int
    ) -> None:
        value = var.read(line)
        node = await parent.add_variable(
            _node_id(ident, idx), ua.QualifiedName(var.browse_name, idx), ua.Variant(value, var.variant)
        )
        self._nodes.append((line, var, node.nodeid))
        self._last[node.nodeid] = value

    async def update(self) -> None:
        """Write the lines' current values (discrete ones only when they changed)."""
        server = self._server
        if server is None:
            return
        now = ua.DateTime.now(UTC)
        for line, var, nodeid in self._nodes:
            value = var.read(line)
            if not var.analog and self._last.get(nodeid) == value:
                continue
            self._last[nodeid] = value
            dv = ua.DataValue(ua.Variant(value, var.variant), SourceTimestamp=now, ServerTimestamp=now)
            await server.write_attribute_value(nodeid, dv)
        for sensor, accel, speed in self._sensor_nodes:
            window = sensor.waveform(now.timestamp(), self.waveform_points)
            for nodeid, variant in ((speed, ua.Variant(float(window["shaft_rpm"]), V.Double)),
                                    (accel, ua.Variant(window["accel"], V.Double))):
                dv = ua.DataValue(variant, SourceTimestamp=now, ServerTimestamp=now)
                await server.write_attribute_value(nodeid, dv)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    async def __aenter__(self) -> PackagingOpcuaServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
