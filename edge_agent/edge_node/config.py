"""``[sparkplug_node]``: publish the agent's tags to a plant broker as a Sparkplug B edge node."""

from __future__ import annotations

from pydantic import Field

from edge_agent.connectors.mqtt.config import BrokerSettings

SPARKPLUG_ID = r"^[^/+#]+$"


class EdgeNodeSettings(BrokerSettings):
    """The broker (as for MQTT devices), the node's Sparkplug identity, and what it publishes."""

    enabled: bool = True
    group_id: str = Field(pattern=SPARKPLUG_ID, description="the Sparkplug group of this edge node")
    edge_node_id: str | None = Field(
        default=None, pattern=SPARKPLUG_ID, description="the edge node id; default: the gateway_id"
    )
    devices: list[str] = Field(default_factory=list, description="devices to publish; empty: all")
    interval_s: float = Field(default=1.0, gt=0, description="samples are collected into one DDATA per device "
                              "this often")
    computed_interval_s: float = Field(default=5.0, gt=0, description="how often OEE (and health) figures are "
                                       "published as metrics of their device")
    backlog_max: int = Field(default=100_000, ge=0, description="samples kept while the broker is unreachable, "
                             "sent as is_historical after the births; beyond it the oldest are dropped and counted")
