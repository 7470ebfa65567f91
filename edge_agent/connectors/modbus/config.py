"""Connection settings of a Modbus TCP device ([devices.connection])."""

from __future__ import annotations

from pydantic import Field

from edge_agent.profiles import Strict


class ModbusConnection(Strict):
    host: str
    port: int = Field(default=502, ge=1, le=65535)
    unit_id: int = Field(default=1, ge=0, le=255)
    poll_interval_s: float = Field(default=1.0, gt=0)
    timeout_s: float = Field(default=3.0, gt=0)
    retries: int = Field(default=1, ge=0, le=10)
    max_gap: int = Field(default=8, ge=0, le=100, description="registers read across to merge two requests")
    max_registers: int = Field(default=125, ge=1, le=125)
    reconnect_delay_s: float = Field(default=1.0, gt=0)
    reconnect_delay_max_s: float = Field(default=30.0, gt=0)
