"""The stop command: a reason code written to holding register 30 stops a running CNC machine now."""

from __future__ import annotations

from pymodbus.client import AsyncModbusTcpClient

from simulators.broker import free_port
from simulators.cnc import CNC_ALARMS, CncMachine, CncState
from simulators.modbus_server import CncModbusServer
from simulators.plant import Plant
from simulators.registers import STOP_COMMAND_REGISTER


def running_machine() -> CncMachine:
    machine = CncMachine("cnc-1", seed=42)
    assert machine.state == CncState.RUNNING
    return machine


def test_force_stop_gives_a_short_stop_then_the_schedule_resumes() -> None:
    machine = running_machine()
    machine.step(2.0)
    assert machine.force_stop(12, duration_s=30.0)
    assert (machine.state, machine.reason, machine.spindle_speed) == (CncState.STOPPED, 12, 0.0)
    assert machine.log[-1].start == 2.0
    assert not machine.force_stop(11)  # only a running machine stops
    machine.step(31.0)
    assert machine.state == CncState.RUNNING
    assert [iv.state for iv in machine.log] == [CncState.RUNNING, CncState.STOPPED, CncState.RUNNING]


def test_force_stop_with_a_breakdown_reason_raises_its_alarm() -> None:
    machine = running_machine()
    assert machine.force_stop(21)
    assert (machine.state, machine.alarm_code) == (CncState.BREAKDOWN, CNC_ALARMS[21])
    machine.step(301.0)
    assert machine.alarm_code == 0
    assert not running_machine().force_stop(99)  # not a stop reason


async def test_a_client_stops_a_machine_through_the_command_register() -> None:
    port = free_port()
    plant = Plant(seed=42, cnc=2, lines=0, sensors=0)
    async with CncModbusServer(plant.cnc, port=port) as server:
        await server.update()
        client = AsyncModbusTcpClient("127.0.0.1", port=port)
        await client.connect()
        try:
            result = await client.write_register(STOP_COMMAND_REGISTER, 13, device_id=2)
            assert not result.isError()
            await server.update()
            assert plant.cnc[1].state == CncState.STOPPED and plant.cnc[1].reason == 13
            assert plant.cnc[0].state == CncState.RUNNING  # unit 1 untouched
            regs = (await client.read_holding_registers(0, count=32, device_id=2)).registers
            assert regs[0:2] == [CncState.STOPPED, 13]
            assert regs[STOP_COMMAND_REGISTER] == 0  # the command is consumed
        finally:
            client.close()
