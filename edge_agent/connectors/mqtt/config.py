"""Connection settings of an MQTT device ([devices.connection]).

:class:`BrokerSettings` holds what any MQTT client of the agent needs (broker,
protocol version, TLS, credentials, session); the Sparkplug B connector reuses it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edge_agent.profiles import Strict


class BrokerSettings(Strict):
    """How to reach and log in to an MQTT broker, and the session to keep there."""

    broker: str = Field(default="mqtt://127.0.0.1:1883", pattern=r"^mqtts?://[^:/]+(:\d+)?/?$")
    client_id: str | None = Field(default=None, description="default: <gateway_id>-<device name>")
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    qos: Literal[0, 1] = 1
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    session_expiry_s: int = Field(default=86_400, ge=0, description="MQTT 5: how long the broker keeps the session")
    username: str | None = None
    password: str | None = None
    ca_file: str | None = Field(default=None, description="PEM file of the CA that signed the broker's certificate")
    client_cert: str | None = Field(default=None, description="PEM certificate the agent logs in with")
    client_key: str | None = Field(default=None, description="PEM private key of client_cert")
    tls_insecure: bool = Field(default=False, description="skip the broker host name check")
    max_payload_bytes: int = Field(default=1_048_576, ge=64)
    reconnect_delay_s: float = Field(default=1.0, gt=0)
    reconnect_delay_max_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _check_tls(self) -> BrokerSettings:
        tls_keys = [k for k in ("ca_file", "client_cert", "client_key") if getattr(self, k) is not None]
        if self.tls_insecure:
            tls_keys.append("tls_insecure")
        if tls_keys and not self.tls:
            raise ValueError(f"{tls_keys[0]} needs a TLS broker URL (mqtts://...)")
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together")
        if self.password is not None and self.username is None:
            raise ValueError("password needs username")
        return self

    @property
    def tls(self) -> bool:
        return self.broker.startswith("mqtts://")


class MqttConnection(BrokerSettings):
    device_id: str | None = Field(default=None, description="replaces {device} in topics; default: device name")
