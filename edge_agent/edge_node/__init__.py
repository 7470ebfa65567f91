"""The agent as a Sparkplug B edge node: its devices' tags and computed figures on a plant broker.

    EdgeNode(group_id, edge_node_id, bdseq)    # state.py: payloads, seq, bdSeq, aliases; no I/O
    EdgeNodePublisher(settings, node_id, ...)  # publisher.py: the MQTT side, run by the agent
    EdgeNodeSettings                           # config.py: the [sparkplug_node] section
"""

from edge_agent.edge_node.config import EdgeNodeSettings
from edge_agent.edge_node.state import EdgeNode, Message

__all__ = ["EdgeNode", "EdgeNodeSettings", "Message"]
