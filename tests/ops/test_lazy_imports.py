"""What the agent imports for a plain Modbus config: no library of a feature the config does not use.

Each import costs resident memory for the whole life of the process (numpy about 17 MB, asyncua
about 40 MB, paho and protobuf a few MB; see docs/PERFORMANCE.md "Memory"), so the modules of
predictive maintenance, the other connectors and the Sparkplug edge node are imported where used.
Checked in a fresh interpreter: this test process has imported most of them already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import edge_agent.cli, edge_agent.config, edge_agent.supervisor, edge_agent.status.app
import edge_agent.connectors.modbus.connector
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} | set(sys.modules))))
"""

NOT_FOR_MODBUS = ["numpy", "asyncua", "paho", "google.protobuf", "pyarrow", "edge_agent.maintenance",
                  "edge_agent.edge_node.state", "edge_agent.edge_node.publisher",
                  "edge_agent.connectors.mqtt.connector", "edge_agent.connectors.opcua.connector"]


def loaded() -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_a_modbus_agent_does_not_import_what_it_does_not_use() -> None:
    modules = loaded()
    assert "pymodbus" in modules and "edge_agent.supervisor" in modules  # the probe did import the agent
    assert [name for name in NOT_FOR_MODBUS if name in modules] == []


def test_the_edge_node_package_still_exports_its_state_on_first_use() -> None:
    from edge_agent import edge_node
    from edge_agent.edge_node.state import EdgeNode, Message

    assert edge_node.EdgeNode is EdgeNode and edge_node.Message is Message
    assert sorted(edge_node.__all__) == ["EdgeNode", "EdgeNodeSettings", "Message"]
