"""Connector registry: protocol name -> connector class (explicit, no folder scanning).

Classes are imported on first use so that validating a config (``edge-agent check``)
does not load every protocol library.
"""

from __future__ import annotations

import importlib

from edge_agent.connectors.base import Backoff, Connector, DeviceStatus, Sink

CONNECTORS: dict[str, str] = {
    "modbus": "edge_agent.connectors.modbus.connector:ModbusConnector",
    "opcua": "edge_agent.connectors.opcua.connector:OpcuaConnector",
    "mqtt": "edge_agent.connectors.mqtt.connector:MqttConnector",
    "sparkplug": "edge_agent.connectors.sparkplug.connector:SparkplugConnector",
}


def connector_class(protocol: str) -> type[Connector]:
    module, _, name = CONNECTORS[protocol].partition(":")
    cls: type[Connector] = getattr(importlib.import_module(module), name)
    return cls


__all__ = ["CONNECTORS", "Backoff", "Connector", "DeviceStatus", "Sink", "connector_class"]
