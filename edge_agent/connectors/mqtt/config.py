"""Connection settings of an MQTT device ([devices.connection])."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge_agent.profiles import Strict


class MqttConnection(Strict):
    broker: str = Field(default="mqtt://127.0.0.1:1883", pattern=r"^mqtts?://[^:/]+(:\d+)?/?$")
    device_id: str | None = Field(default=None, description="replaces {device} in topics; default: device name")
    client_id: str | None = Field(default=None, description="default: <gateway_id>-<device name>")
    qos: Literal[0, 1] = 1
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    username: str | None = None
    password: str | None = None
    max_payload_bytes: int = Field(default=1_048_576, ge=64)
    reconnect_delay_s: float = Field(default=1.0, gt=0)
    reconnect_delay_max_s: float = Field(default=30.0, gt=0)
