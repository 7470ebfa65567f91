"""The agent as a Sparkplug B edge node: its devices' tags and computed figures on a plant broker.

    EdgeNode(group_id, edge_node_id, bdseq)    # state.py: payloads, seq, bdSeq, aliases; no I/O
    EdgeNodePublisher(settings, node_id, ...)  # publisher.py: the MQTT side, run by the agent
    EdgeNodeSettings                           # config.py: the [sparkplug_node] section

``EdgeNode`` and ``Message`` are imported on first use: reading a config needs only the settings, and
the state module brings protobuf, which an agent without ``[sparkplug_node]`` never needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edge_agent.edge_node.config import EdgeNodeSettings

if TYPE_CHECKING:
    from edge_agent.edge_node.state import EdgeNode, Message

__all__ = ["EdgeNode", "EdgeNodeSettings", "Message"]


def __getattr__(name: str) -> Any:
    if name in ("EdgeNode", "Message"):
        from edge_agent.edge_node import state

        return getattr(state, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
