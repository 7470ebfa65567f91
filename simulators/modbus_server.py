"""Modbus TCP server for the CNC machines: machine ``i`` of the list answers as unit id ``i``.

Like a Modbus gateway in front of several PLCs, one port serves every
machine; an unknown unit id gets exception 0x0B (gateway target failed to
respond). The register map is :data:`simulators.registers.CNC_REGISTER_MAP`;
:meth:`CncModbusServer.update` copies the model's values into the registers
(call it after each model step).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simcore import SimCore

from simulators.cnc import CncMachine
from simulators.registers import STOP_COMMAND_REGISTER, TABLE_SIZES, cnc_image, decode, encode

__all__ = ["CncModbusServer", "decode", "encode"]

log = logging.getLogger("simulators.modbus")

# function codes used to write each table through the server's datastore
_WRITE_FC = {"holding": 16, "input": 4, "coil": 15}


class _UnitRouter(SimCore):
    """The server's datastore, answering only the configured unit ids."""

    async def async_getValues(self, device_id: int, func_code: int, address: int, count: int = 1) -> Any:
        self._check(device_id)
        return await super().async_getValues(device_id, func_code, address, count)

    async def async_setValues(self, device_id: int, func_code: int, address: int, values: Any) -> Any:
        self._check(device_id)
        return await super().async_setValues(device_id, func_code, address, values)

    def _check(self, device_id: int) -> None:
        if device_id not in self.devices:
            raise NoSuchIdException(f"unit id {device_id} is not configured")


def _sim_device(unit: int, machine: CncMachine) -> SimDevice:
    image = cnc_image(machine)
    return SimDevice(
        unit,
        simdata=(
            [SimData(0, values=[bool(b) for b in image["coil"]], datatype=DataType.BITS)],
            [SimData(0, values=[False] * TABLE_SIZES["discrete"], datatype=DataType.BITS)],
            [SimData(0, values=image["holding"], datatype=DataType.REGISTERS)],
            [SimData(0, values=image["input"], datatype=DataType.REGISTERS)],
        ),
    )


class CncModbusServer:
    """Async Modbus TCP server exposing ``machines`` as unit ids 1..N.

    Use as ``async with CncModbusServer(plant.cnc, port=5020) as server:``
    (or :meth:`start`/:meth:`stop`); :meth:`update` refreshes the registers.
    """

    def __init__(self, machines: Sequence[CncMachine], host: str = "127.0.0.1", port: int = 5020) -> None:
        if not machines:
            raise ValueError("no machines to serve")
        self.machines = list(machines)
        self.host = host
        self.port = port
        self.unit_ids = {m.name: i for i, m in enumerate(self.machines, start=1)}
        self._server: ModbusTcpServer | None = None

    @property
    def url(self) -> str:
        return f"modbus://{self.host}:{self.port}"

    async def start(self) -> None:
        devices = [_sim_device(self.unit_ids[m.name], m) for m in self.machines]
        server = ModbusTcpServer(context=devices, address=(self.host, self.port))
        server.context = _UnitRouter(devices)
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:
            raise OSError(f"Modbus server cannot listen on {self.host}:{self.port}") from exc
        self._server = server
        log.info("Modbus TCP server on %s:%d, units %s", self.host, self.port, self.unit_ids)

    async def update(self) -> None:
        """Act on stop commands, then copy the machines' current values into their registers and coils.

        A client stops a machine by writing a reason code to holding register
        :data:`~simulators.registers.STOP_COMMAND_REGISTER` (11-13 a short stop, 21-23 a breakdown);
        the write of the new image clears it.
        """
        server = self._server
        if server is None:
            return
        for machine in self.machines:
            unit = self.unit_ids[machine.name]
            command = (await server.async_getValues(unit, 3, STOP_COMMAND_REGISTER, 1))[0]
            if command:
                stopped = machine.force_stop(int(command))
                log.info("%s: stop command %d %s", machine.name, command, "done" if stopped else "ignored")
            image = cnc_image(machine)
            for table, fc in _WRITE_FC.items():
                values: list[int] | list[bool] = image[table]
                if table == "coil":
                    values = [bool(v) for v in values]
                await server.async_setValues(unit, fc, 0, values)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()

    async def __aenter__(self) -> CncModbusServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
