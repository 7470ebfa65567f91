"""Connection settings of an OPC UA device ([devices.connection])."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge_agent.profiles import Strict


class OpcuaConnection(Strict):
    url: str = Field(pattern=r"^opc\.tcp://")
    device_id: str | None = Field(default=None, description="replaces {device} in NodeIds; default: device name")
    mode: Literal["subscribe", "poll"] = "subscribe"
    publishing_interval_ms: float = Field(default=500, gt=0)
    poll_interval_s: float = Field(default=1.0, gt=0)
    timeout_s: float = Field(default=5.0, gt=0)
    username: str | None = None
    password: str | None = None
    reconnect_delay_s: float = Field(default=1.0, gt=0)
    reconnect_delay_max_s: float = Field(default=30.0, gt=0)
    watchdog_interval_s: float = Field(
        default=5.0, gt=0, description="how often a live connection is checked by reading the server state"
    )
