"""Connection settings of a Modbus device ([devices.connection]): TCP, or RTU over a serial line."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edge_agent.profiles import Strict


class ModbusConnection(Strict):
    transport: Literal["tcp", "rtu"] = "tcp"
    host: str | None = Field(default=None, description="TCP: host name or address (required)")
    port: int = Field(default=502, ge=1, le=65535)
    serial_port: str | None = Field(default=None, description="RTU: serial device, e.g. /dev/ttyUSB0 (required)")
    baudrate: int = Field(default=19200, ge=300, le=921_600)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    unit_id: int = Field(default=1, ge=0, le=255)
    poll_interval_s: float = Field(default=1.0, gt=0)
    timeout_s: float = Field(default=3.0, gt=0)
    retries: int = Field(default=1, ge=0, le=10)
    request_pause_s: float = Field(default=0.0, ge=0, le=10, description="pause between two requests of a poll")
    stagger_s: float = Field(default=1.0, ge=0, description="spread of the first poll of devices started together")
    max_gap: int = Field(default=8, ge=0, le=100, description="registers read across to merge two requests")
    max_registers: int = Field(default=125, ge=1, le=125)
    reconnect_delay_s: float = Field(default=1.0, gt=0)
    reconnect_delay_max_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _check_transport(self) -> ModbusConnection:
        if self.transport == "tcp" and self.host is None:
            raise ValueError("host: required with transport 'tcp'")
        if self.transport == "rtu" and self.serial_port is None:
            raise ValueError("serial_port: required with transport 'rtu'")
        return self

    @property
    def endpoint(self) -> str:
        """Where the device is, for messages: ``host:port`` or the serial port."""
        if self.transport == "rtu":
            return f"{self.serial_port} ({self.baudrate} {self.bytesize}{self.parity}{self.stopbits})"
        return f"{self.host}:{self.port}"
