"""Sparkplug B host state: births, aliases, sequence numbers and deaths, without I/O.

:meth:`SparkplugHost.handle` takes one message (topic, payload bytes, arrival time)
and returns an :class:`Outcome`: the samples, the events, and whether to ask the
edge node for a rebirth. The connector does the MQTT side.

Rules (Sparkplug 3.0, chapter 7 and 8, as seen by a host application):

* **NBIRTH** starts a session of an edge node: its ``seq`` (0) and ``bdSeq`` are
  kept, the aliases and datatypes of its metrics are learnt, the devices it had
  are forgotten until their DBIRTH. **DBIRTH** does the same for one device.
* Every later message of the node (NDATA, DBIRTH, DDATA, DDEATH) carries the next
  ``seq`` (0..255, wrapping). A gap means messages were lost: it is reported as a
  ``sparkplug_seq_gap`` event and a rebirth is requested (the data still counts).
* Data from a node whose NBIRTH the host has not seen (the host started later,
  or the node died) also triggers a rebirth request. Rebirth requests to one node
  are at most one per ``rebirth_interval_s``.
* Metrics in DATA messages may carry only an alias; it is resolved with the birth.
  A metric that cannot be resolved or has no sampled datatype is counted in
  ``Outcome.problems`` and skipped.
* **DDEATH** marks a device offline; **NDEATH** (with the ``bdSeq`` of the current
  session; a stale death of an older session is ignored) marks the node and all
  its devices offline. Going offline emits a BAD sample for every metric known
  from the birth, and a ``sparkplug_death`` event.

Samples of node metrics belong to the device ``<edge node id>``, those of device
metrics to ``<edge node id>/<device id>``. The tag is the profile tag that maps the
metric name, or (with ``all_metrics``) the metric name itself. ``bdSeq`` and the
``Node Control/*`` / ``Device Control/*`` metrics are never sampled.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError

from edge_agent.connectors.sparkplug.schema import DataType, Payload
from edge_agent.connectors.sparkplug.values import Unsupported, datatype_name, metric_value, placeholder
from edge_agent.model import Event, Quality, Sample, Value
from edge_agent.profiles import SparkplugTag

NAMESPACE = "spBv1.0"
CONTROL_PREFIXES = ("Node Control/", "Device Control/")
SEQ_MODULO = 256


class MessageError(ValueError):
    """A message that is not a Sparkplug B message a host can use."""


@dataclass
class Scope:
    """What the birth of a node or of a device declared: metric datatypes and aliases."""

    name: str  # the device of its samples
    datatypes: dict[str, int] = field(default_factory=dict)
    aliases: dict[int, str] = field(default_factory=dict)
    online: bool = True


@dataclass
class NodeState:
    """One edge node as the host knows it."""

    scope: Scope
    bdseq: int | None = None
    seq: int | None = None
    devices: dict[str, Scope] = field(default_factory=dict)
    rebirth_requested_at: float | None = None


@dataclass
class Outcome:
    """What one message means: samples, events, an optional rebirth request and what was skipped."""

    samples: list[Sample] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    rebirth: str | None = None  # edge node id to send a rebirth command to
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Topic:
    group: str
    kind: str
    node: str
    device: str | None

    @classmethod
    def parse(cls, topic: str) -> Topic:
        levels = topic.split("/")
        if len(levels) not in (4, 5) or levels[0] != NAMESPACE:
            raise MessageError(f"not a Sparkplug B topic: {topic}")
        return cls(levels[1], levels[2], levels[3], levels[4] if len(levels) == 5 else None)


class SparkplugHost:
    """Tracks the edge nodes of one group and turns their messages into samples and events."""

    def __init__(
        self, group: str, tags: Iterable[SparkplugTag], all_metrics: bool = True, rebirth_interval_s: float = 5.0
    ) -> None:
        self.group = group
        self.tags = {tag.metric: tag for tag in tags}
        self.all_metrics = all_metrics
        self.rebirth_interval_s = rebirth_interval_s
        self.nodes: dict[str, NodeState] = {}

    # -- entry point ----------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes, now: float) -> Outcome:
        """Process one message; raises MessageError for a topic or payload that makes no sense."""
        where = Topic.parse(topic)
        out = Outcome()
        if where.group != self.group or where.kind in ("NCMD", "DCMD"):
            return out
        if (where.kind.startswith("D") and where.device is None) or (where.kind.startswith("N") and where.device):
            raise MessageError(f"{where.kind} on a topic of the wrong length: {topic}")
        message = Payload()
        try:
            message.ParseFromString(payload)
        except DecodeError as exc:
            raise MessageError(f"not a Sparkplug B payload: {exc}") from None
        handler = {
            "NBIRTH": self._nbirth, "NDATA": self._data, "NDEATH": self._ndeath,
            "DBIRTH": self._dbirth, "DDATA": self._data, "DDEATH": self._ddeath,
        }.get(where.kind)
        if handler is None:
            raise MessageError(f"unknown message type {where.kind}")
        handler(where, message, now, out)
        return out

    # -- births and deaths ---------------------------------------------------------------------

    def _nbirth(self, where: Topic, message: Any, now: float, out: Outcome) -> None:
        node = NodeState(Scope(where.node))
        node.seq = message.seq if message.HasField("seq") else 0
        for metric in message.metrics:
            if metric.name == "bdSeq":
                node.bdseq = int(metric.long_value or metric.int_value)
        self.nodes[where.node] = node
        self._learn(node.scope, message, out)
        out.samples.extend(self._samples(node.scope, message, now, out))
        out.events.append(self._event(node.scope, "sparkplug_birth", message, now, bdseq=node.bdseq))

    def _dbirth(self, where: Topic, message: Any, now: float, out: Outcome) -> None:
        node = self._live_node(where, message, now, out)
        assert where.device is not None
        scope = Scope(f"{where.node}/{where.device}")
        self._learn(scope, message, out)
        if node is not None:
            node.devices[where.device] = scope
        out.samples.extend(self._samples(scope, message, now, out))
        out.events.append(self._event(scope, "sparkplug_birth", message, now))

    def _ndeath(self, where: Topic, message: Any, now: float, out: Outcome) -> None:
        node = self.nodes.get(where.node)
        if node is None or not node.scope.online:
            return
        bdseq = next((int(m.long_value or m.int_value) for m in message.metrics if m.name == "bdSeq"), None)
        if bdseq is not None and node.bdseq is not None and bdseq != node.bdseq:
            return  # the will of an older session, delivered after the node was born again
        for scope in node.devices.values():
            if scope.online:
                self._offline(scope, message, now, out, reason="node death")
        self._offline(node.scope, message, now, out, reason="node death", bdseq=bdseq)

    def _ddeath(self, where: Topic, message: Any, now: float, out: Outcome) -> None:
        node = self._live_node(where, message, now, out)
        assert where.device is not None
        scope = node.devices.get(where.device) if node is not None else None
        if scope is not None and scope.online:
            self._offline(scope, message, now, out, reason="device death")

    def _offline(self, scope: Scope, message: Any, now: float, out: Outcome, reason: str, **extra: Any) -> None:
        scope.online = False
        ts = self._ts(message, None, now)
        for name, datatype in scope.datatypes.items():
            tag = self._tag_name(name)
            if tag is not None:
                out.samples.append(Sample(scope.name, tag, ts, placeholder(datatype), Quality.BAD))
        attributes = {"reason": reason, **{k: v for k, v in extra.items() if v is not None}}
        out.events.append(Event(scope.name, "sparkplug_death", attributes, ts))

    # -- data ------------------------------------------------------------------------------------

    def _data(self, where: Topic, message: Any, now: float, out: Outcome) -> None:
        node = self._live_node(where, message, now, out)
        if where.device is None:
            scope = node.scope if node is not None else Scope(where.node, online=False)
        else:
            known = node.devices.get(where.device) if node is not None else None
            if known is None:
                self._ask_rebirth(where.node, now, out, f"data of device {where.device} before its birth")
            scope = known or Scope(f"{where.node}/{where.device}", online=False)
        out.samples.extend(self._samples(scope, message, now, out))

    def _live_node(self, where: Topic, message: Any, now: float, out: Outcome) -> NodeState | None:
        """The node's state if it is born, checking the sequence number; else ask for a rebirth."""
        node = self.nodes.get(where.node)
        if node is None or not node.scope.online:
            self._ask_rebirth(where.node, now, out, f"{where.kind} from an edge node without a birth")
            return None
        if message.HasField("seq"):
            expected = ((node.seq if node.seq is not None else -1) + 1) % SEQ_MODULO
            got = int(message.seq)
            node.seq = got
            if got != expected:
                out.events.append(Event(node.scope.name, "sparkplug_seq_gap",
                                        {"expected": expected, "got": got, "message": where.kind}, now))
                self._ask_rebirth(where.node, now, out, f"seq {got} where {expected} was due")
        return node

    def _ask_rebirth(self, node_id: str, now: float, out: Outcome, why: str) -> None:
        node = self.nodes.get(node_id)
        if node is None:
            node = self.nodes[node_id] = NodeState(Scope(node_id, online=False))
        last = node.rebirth_requested_at
        if last is not None and now - last < self.rebirth_interval_s:
            return
        node.rebirth_requested_at = now
        out.rebirth = node_id
        out.events.append(Event(node_id, "sparkplug_rebirth_requested", {"reason": why}, now))

    # -- metrics ---------------------------------------------------------------------------------

    @staticmethod
    def _learn(scope: Scope, message: Any, out: Outcome) -> None:
        for metric in message.metrics:
            if not metric.name:
                out.problems.append("a birth metric without a name")
                continue
            scope.datatypes[metric.name] = int(metric.datatype)
            if metric.HasField("alias"):
                scope.aliases[int(metric.alias)] = metric.name

    def _samples(self, scope: Scope, message: Any, now: float, out: Outcome) -> list[Sample]:
        samples = []
        for metric in message.metrics:
            name = metric.name
            if not name and metric.HasField("alias"):
                name = scope.aliases.get(int(metric.alias), "")
            if not name:
                out.problems.append(f"{scope.name}: metric with unknown alias {metric.alias} and no name")
                continue
            tag = self._tag_name(name)
            if tag is None:
                continue
            datatype = int(metric.datatype) if metric.HasField("datatype") else scope.datatypes.get(name, 0)
            ts = self._ts(message, metric, now)
            if metric.is_null:
                samples.append(Sample(scope.name, tag, ts, placeholder(datatype), Quality.BAD))
                continue
            try:
                value = self._convert(name, metric_value(metric, datatype))
            except (Unsupported, ValueError) as exc:
                out.problems.append(f"{scope.name}: metric '{name}' ({datatype_name(datatype)}): {exc}")
                continue
            samples.append(Sample(scope.name, tag, ts, value))
        return samples

    def _tag_name(self, metric: str) -> str | None:
        if metric == "bdSeq" or metric.startswith(CONTROL_PREFIXES):
            return None
        tag = self.tags.get(metric)
        if tag is not None:
            return tag.name
        return metric if self.all_metrics else None

    def _convert(self, metric: str, value: Value) -> Value:
        tag = self.tags.get(metric)
        if tag is None:
            return value
        if tag.type == "string":
            return value if isinstance(value, str) else str(value)
        if isinstance(value, str):
            raise Unsupported(f"expected a {tag.type}, got a string")
        if tag.type == "bool":
            return bool(value)
        number: Value = float(value) if tag.type in ("float32", "float64") else value
        converted: Value = tag.convert(number)
        return converted

    @staticmethod
    def _ts(message: Any, metric: Any, now: float) -> float:
        if metric is not None and metric.HasField("timestamp"):
            return int(metric.timestamp) / 1000.0
        if message.HasField("timestamp"):
            return int(message.timestamp) / 1000.0
        return now

    @staticmethod
    def _event(scope: Scope, kind: str, message: Any, now: float, **extra: Any) -> Event:
        attributes: dict[str, Any] = {"metrics": len(message.metrics)}
        attributes.update({k: v for k, v in extra.items() if v is not None})
        return Event(scope.name, kind, attributes, SparkplugHost._ts(message, None, now))


def rebirth_payload(now: float) -> bytes:
    """An NCMD payload asking an edge node to publish its births again (``Node Control/Rebirth``)."""
    message = Payload()
    message.timestamp = int(now * 1000)
    metric = message.metrics.add()
    metric.name = "Node Control/Rebirth"
    metric.timestamp = int(now * 1000)
    metric.datatype = DataType.Boolean
    metric.boolean_value = True
    data: bytes = message.SerializeToString()
    return data
