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

Every browse name is in namespace 2, so the path ``2:pack-i/2:SealJaw/2:Temperature``
resolves from Objects. :meth:`PackagingOpcuaServer.update` writes discrete
values when they change and analog values on every call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from types import TracebackType
from typing import Any

from asyncua import Server, ua
from asyncua.common.node import Node

from simulators.packaging import PackagingLine

NAMESPACE_URI = "urn:edge-sim:packaging"
APPLICATION_URI = "urn:edge-sim:server"

log = logging.getLogger("simulators.opcua")

V = ua.VariantType


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
    """asyncua server at ``opc.tcp://<host>:<port>/`` exposing ``lines`` (no security, anonymous)."""

    def __init__(self, lines: Sequence[PackagingLine], host: str = "127.0.0.1", port: int = 4840) -> None:
        if not lines:
            raise ValueError("no lines to serve")
        self.lines = list(lines)
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
        server = Server()
        await server.init()
        server.set_endpoint(self.url)
        server.set_server_name("edge-sim packaging lines")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        server.set_identity_tokens([ua.AnonymousIdentityToken])
        await server.set_application_uri(APPLICATION_URI)
        idx = await server.register_namespace(NAMESPACE_URI)
        if idx != 2:
            raise RuntimeError(f"namespace {NAMESPACE_URI} got index {idx}, expected 2")
        self.namespace_index = idx
        for line in self.lines:
            await self._add_line(server.nodes.objects, line, idx)
        try:
            await server.start()
        except OSError as exc:
            raise OSError(f"OPC UA server cannot listen on {self.host}:{self.port}: {exc}") from exc
        self._server = server
        log.info("OPC UA server on %s, lines %s", self.url, [m.name for m in self.lines])

    async def _add_line(self, objects: Node, line: PackagingLine, idx: int) -> None:
        name = line.name
        obj = await objects.add_object(_node_id(name, idx), ua.QualifiedName(name, idx))
        for var in LINE_VARIABLES:
            await self._add_variable(obj, line, var, f"{name}.{var.browse_name}", idx)
        seal = await obj.add_object(_node_id(f"{name}.SealJaw", idx), ua.QualifiedName("SealJaw", idx))
        await self._add_variable(seal, line, SEAL_TEMPERATURE, f"{name}.SealJaw.Temperature", idx)

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
