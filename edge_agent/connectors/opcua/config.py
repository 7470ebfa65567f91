"""Connection settings of an OPC UA device ([devices.connection])."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from edge_agent.profiles import Strict

SecurityPolicy = Literal["None", "Basic256Sha256"]
SecurityMode = Literal["None", "Sign", "SignAndEncrypt"]


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
    security_policy: SecurityPolicy = Field(
        default="None", description="'Basic256Sha256' signs (and encrypts) with the gateway's own certificate"
    )
    security_mode: SecurityMode = Field(default="None", description="'Sign' or 'SignAndEncrypt' with a policy")
    certificate: str | None = Field(
        default=None, description="the gateway's certificate (DER or PEM); default: generated in pki_dir"
    )
    private_key: str | None = Field(default=None, description="its private key (PEM); default: generated in pki_dir")
    server_certificate: str | None = Field(
        default=None, description="pin the server's certificate; default: taken from the server's endpoint list"
    )
    application_uri: str | None = Field(
        default=None, description="the gateway's application URI; default: urn:edge-agent:<gateway_id>"
    )
    pki_dir: str | None = Field(
        default=None, description="where the generated certificate and key live; default: <data_dir>/pki"
    )

    @model_validator(mode="after")
    def _security_pair(self) -> OpcuaConnection:
        if (self.security_policy == "None") != (self.security_mode == "None"):
            raise ValueError(
                f"security_policy '{self.security_policy}' and security_mode '{self.security_mode}' do not go "
                "together: use both 'None', or 'Basic256Sha256' with 'Sign' or 'SignAndEncrypt'"
            )
        if (self.certificate is None) != (self.private_key is None):
            raise ValueError("give both certificate and private_key, or neither (then both are generated)")
        return self

    @property
    def secure(self) -> bool:
        return self.security_policy != "None"

    def localise(self, base: Path, data_dir: Path) -> tuple[OpcuaConnection, list[str]]:
        """File names made absolute (relative to the config file's folder) and checked; problems by key."""
        problems: list[str] = []
        update: dict[str, str] = {}
        for key in ("certificate", "private_key", "server_certificate"):
            name = getattr(self, key)
            if name is None:
                continue
            path = (base / name).resolve()
            if self.secure and not path.is_file():
                problems.append(f"{key}: file '{name}' not found (looked for {path})")
            update[key] = str(path)
        update["pki_dir"] = str((base / self.pki_dir).resolve() if self.pki_dir else data_dir / "pki")
        return self.model_copy(update=update), problems
