"""Connection settings of a Sparkplug B host ([devices.connection]): a broker plus the group to follow."""

from __future__ import annotations

from pydantic import Field

from edge_agent.connectors.mqtt.config import BrokerSettings

SPARKPLUG_ID = r"^[^/+#]+$"


class SparkplugConnection(BrokerSettings):
    group_id: str = Field(pattern=SPARKPLUG_ID, description="the Sparkplug group whose edge nodes are read")
    edge_node_id: str | None = Field(
        default=None, pattern=SPARKPLUG_ID, description="read only this edge node; none: every node of the group"
    )
    host_id: str | None = Field(
        default=None, pattern=SPARKPLUG_ID,
        description="publish the host application's STATE (birth and will) under this id",
    )
    rebirth_interval_s: float = Field(
        default=5.0, ge=0, description="at most one rebirth request per edge node per this many seconds"
    )
