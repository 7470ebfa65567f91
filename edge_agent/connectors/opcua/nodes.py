"""Find the nodes of a profile's tags on a server.

``{device}`` in a ``node_id`` or ``browse_path`` is replaced by the device id.
A browse path is a ``/``-separated list of ``ns:BrowseName`` elements relative
to the Objects folder (``2:pack-1/2:SealJaw/2:Temperature``); all browse paths
of a profile are translated in one TranslateBrowsePathsToNodeIds call.

The tags of each node are a :class:`~.values.NodeTags` list; when the profile has
waveform tags, every list shares one :class:`~.values.Waveforms` of the connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from asyncua import Client, ua

from edge_agent.connectors.opcua.values import NodeTags, Waveforms
from edge_agent.profiles import OpcuaTag


@dataclass
class Resolved:
    """Tags grouped by the node they read, and the tags that could not be found."""

    by_node: dict[ua.NodeId, NodeTags] = field(default_factory=dict)
    missing: list[tuple[OpcuaTag, str]] = field(default_factory=list)

    def add(self, node: ua.NodeId, tag: OpcuaTag) -> None:
        tags = self.by_node.get(node)
        if tags is None:
            tags = self.by_node[node] = NodeTags(node.to_string())
        tags.append(tag)


def expand(address: str, device_id: str) -> str:
    return address.replace("{device}", device_id)


def parse_browse_path(path: str) -> list[ua.QualifiedName]:
    """``2:a/2:b`` -> qualified names; an element without ``ns:`` is in namespace 0."""
    parts = [p for p in path.strip().strip("/").split("/") if p]
    if not parts:
        raise ValueError("empty browse path")
    return [ua.QualifiedName.from_string(p) for p in parts]


async def resolve(client: Client, tags: Iterable[OpcuaTag], device_id: str) -> Resolved:
    """Map every tag to its NodeId; browse paths are looked up on the server."""
    tags = list(tags)
    result = Resolved()
    browse: list[tuple[OpcuaTag, list[ua.QualifiedName]]] = []
    for tag in tags:
        try:
            if tag.node_id is not None:
                result.add(ua.NodeId.from_string(expand(tag.node_id, device_id)), tag)
            elif tag.browse_path is not None:
                browse.append((tag, parse_browse_path(expand(tag.browse_path, device_id))))
        except (ValueError, ua.UaError) as exc:
            result.missing.append((tag, f"invalid address: {exc}"))
    if browse:
        objects = client.nodes.objects
        found = await objects.get_children_by_path([path for _, path in browse], raise_on_partial_error=False)
        for (tag, _), targets in zip(browse, found, strict=True):
            if targets:
                node = targets[0]
                if node is not None:
                    result.add(node.nodeid, tag)
                    continue
            result.missing.append((tag, f"browse path {expand(tag.browse_path or '', device_id)} not found"))
    if any(tag.waveform is not None for tag in tags):
        waveforms = Waveforms(tags)
        for bound in result.by_node.values():
            bound.waveforms = waveforms
    return result
